"""How well a map lands on a box drawn around the object: the pointing game and its energy form.

- **pointing** (Zhang et al., 2016): is the map's peak inside the box (within ``tolerance`` pixels)?
- **energy** (the energy-based pointing game, Wang et al., Score-CAM, 2020): the share of the map's
  mass that lies inside the box.
- **chance**: the box's share of the part of the image the map covers. A map spread evenly would
  score this much energy, and a random peak would land in the box this often.

All in the image's own pixels: the map is first placed where the model's input came from
(:func:`gradcam_core.regions.paste_map`), so a centre-cropped model is scored on what it saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gradcam_core.regions import Box, clamp_box, paste_map

__all__ = ["BoxScores", "box_scores"]


@dataclass(frozen=True, slots=True)
class BoxScores:
    """A map's scores against a box.

    Attributes:
        pointing: whether the map's peak lies inside the box (``None`` for a map that is zero everywhere).
        energy: the share of the map's mass inside the box, 0 to 1 (``nan`` for a zero map).
        chance: the box's share of the region the map covers: what a uniform map would score.
    """

    pointing: bool | None
    energy: float
    chance: float

    @property
    def lift(self) -> float:
        """Energy over chance: 1 is no better than a uniform map."""
        return self.energy / self.chance if self.chance > 0 else float("nan")

    def describe(self) -> str:
        """One line: the pointing game, the energy in the box, and chance."""
        if self.pointing is None:
            return "blank map: nothing to score"
        hit = "peak in the box" if self.pointing else "peak outside the box"
        return f"{hit} · {self.energy:.0%} of the map in the box (chance {self.chance:.0%}, ×{self.lift:.1f})"

    def record(self, box: Box) -> dict[str, Any]:
        """The scores as manifests and reports keep them (``energy`` is None for a blank map)."""
        energy = None if np.isnan(self.energy) else round(self.energy, 6)
        return {
            "box": [box.x, box.y, box.w, box.h],
            "pointing": self.pointing,
            "energy": energy,
            "chance": round(self.chance, 6),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> BoxScores:
        """The scores back from :meth:`record`'s dictionary."""
        energy = record.get("energy")
        return cls(record.get("pointing"), float("nan") if energy is None else float(energy), float(record["chance"]))


def box_scores(
    heatmap: np.ndarray | torch.Tensor,
    box: Box,
    region: Box,
    image_size: tuple[int, int],
    tolerance: int = 0,
) -> BoxScores:
    """Score a raw map against ``box``.

    Args:
        heatmap: the raw [h, w] map, covering ``region`` of the image.
        box: the object's box, in image pixels.
        region: the part of the image the map covers (``LoadedModel.input_region``).
        image_size: the image's (width, height).
        tolerance: pixels around the box that still count as a hit for the pointing game
            (Zhang et al. use 15).
    """
    full = paste_map(heatmap, region, image_size).astype(np.float64)
    b, r = clamp_box(box, image_size), clamp_box(region, image_size)
    inside = np.zeros_like(full, dtype=bool)
    inside[b.y : b.bottom, b.x : b.right] = True
    overlap_w = max(0, min(b.right, r.right) - max(b.x, r.x))
    overlap_h = max(0, min(b.bottom, r.bottom) - max(b.y, r.y))
    chance = overlap_w * overlap_h / max(1, r.w * r.h)
    total = float(full.sum())
    if total <= 0:
        return BoxScores(None, float("nan"), chance)
    y, x = np.unravel_index(int(np.argmax(full)), full.shape)
    hit = b.x - tolerance <= x < b.right + tolerance and b.y - tolerance <= y < b.bottom + tolerance
    return BoxScores(bool(hit), float(full[inside].sum()) / total, chance)

"""Statistics of one raw map that say *where* its mass lies, for ranking a dataset's maps.

A map that puts its mass at the border, on a few cells or far from the centre is the first place
to look for a shortcut (a watermark in a corner, a frame, a caption): the object a classifier
should look at is seldom there. All figures are computed on the raw map at the layer's
resolution, so they need no image and no model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BORDER_BAND", "HOT_SHARE", "MapStats", "map_stats"]

#: The border band: cells whose centre lies within this fraction of the side from an edge.
BORDER_BAND = 0.125
#: The hottest cells, as a fraction of all cells, whose share of the mass ``hot_mass`` reports.
HOT_SHARE = 0.10


@dataclass(frozen=True, slots=True)
class MapStats:
    """Where a map's mass lies. Every field is ``nan`` for a map that is zero everywhere.

    Attributes:
        peak_x: the peak cell's centre, as a fraction of the map's width (0 left, 1 right).
        peak_y: the peak cell's centre, as a fraction of the map's height (0 top, 1 bottom).
        peak_offcentre: the peak's distance from the centre, 0 at the centre and 1 at a corner.
        hot_mass: the share of the mass in the hottest 10 % of the cells (at least one cell).
        border_mass: the share of the mass in the border band (:data:`BORDER_BAND`).
        entropy: the Shannon entropy of the mass, divided by its most (log of the cell count):
            1 for a flat map, 0 for a single cell.
    """

    peak_x: float
    peak_y: float
    peak_offcentre: float
    hot_mass: float
    border_mass: float
    entropy: float


def _band(h: int, w: int) -> np.ndarray:
    """[h, w] bool: the cells whose centre is within :data:`BORDER_BAND` of the side from an edge."""
    ys = (np.arange(h) + 0.5) / h
    xs = (np.arange(w) + 0.5) / w
    near_y = np.minimum(ys, 1 - ys) < BORDER_BAND
    near_x = np.minimum(xs, 1 - xs) < BORDER_BAND
    return near_y[:, None] | near_x[None, :]


def map_stats(heatmap: np.ndarray) -> MapStats:
    """The :class:`MapStats` of a raw, non-negative [h, w] map (its scale does not matter)."""
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError(f"a map must be a non-empty [h, w] array, got shape {heatmap.shape}")
    m = np.clip(np.nan_to_num(heatmap.astype(np.float64)), 0, None)
    total = float(m.sum())
    if total <= 0:
        nan = math.nan
        return MapStats(nan, nan, nan, nan, nan, nan)
    h, w = m.shape
    p = m / total
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    px, py = (x + 0.5) / w, (y + 0.5) / h
    offcentre = math.hypot(px - 0.5, py - 0.5) / math.hypot(0.5, 0.5)
    k = max(1, round(HOT_SHARE * m.size))
    hot = float(np.sort(p, axis=None)[-k:].sum())
    border = float(p[_band(h, w)].sum())
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum() / math.log(m.size)) if m.size > 1 else 0.0
    return MapStats(float(px), float(py), float(offcentre), hot, border, entropy)

"""Measuring the demo model on fresh scenes: accuracy, pointing game, and the planted shortcut.

    python -m gradcam_core.demo.evaluate [--clean 1000] [--tagged 1000]

Scenes come from seeds the training never used (:data:`EVAL_SEED` and above).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor

from gradcam_core.cam import compute_cam
from gradcam_core.demo.world import CATEGORIES, SIZE, STAR, Scene, draw_scene, grow_box, scene_rng
from gradcam_core.models import LoadedModel, load_model
from gradcam_core.regions import Box, crop

__all__ = ["EVAL_SEED", "Report", "clean_scenes", "evaluate", "tagged_scenes"]

#: First seed of the evaluation streams; training uses seeds below it.
EVAL_SEED = 1000
_POINTING_MARGIN = 0.04 * SIZE  # the shape's box grows by 4 % of the image side


@dataclass(frozen=True)
class Report:
    """The demo model's figures on fresh scenes (fractions in [0, 1])."""

    clean: int
    accuracy: float
    pointing: float
    tagged: int
    fooled: float
    map_on_tag: float
    crop_fixed: float

    def __str__(self) -> str:
        return (
            f"clean top-1 accuracy       {self.accuracy:6.1%}  ({self.clean} images)\n"
            f"pointing game              {self.pointing:6.1%}\n"
            f"tagged non-stars -> 'star' {self.fooled:6.1%}  ({self.tagged} images)\n"
            f"  'star' map max on tag    {self.map_on_tag:6.1%}\n"
            f"  fixed by cropping tag    {self.crop_fixed:6.1%}"
        )


def clean_scenes(n: int, seed: int = EVAL_SEED) -> list[Scene]:
    """``n`` untagged scenes of random shapes at the usual sizes."""
    out = []
    for i in range(n):
        rng = scene_rng(seed, i)
        out.append(draw_scene(rng, int(rng.integers(len(CATEGORIES)))))
    return out


def tagged_scenes(n: int, seed: int = EVAL_SEED + 1) -> list[Scene]:
    """``n`` scenes of non-star shapes carrying the tag."""
    others = [i for i in range(len(CATEGORIES)) if i != STAR]
    out = []
    for i in range(n):
        rng = scene_rng(seed, i)
        out.append(draw_scene(rng, int(rng.choice(others)), tagged=True))
    return out


def _batch(loaded: LoadedModel, images: list[Image.Image]) -> Tensor:
    return torch.stack([loaded.preprocess(img) for img in images])


def _peaks(maps: Tensor) -> list[tuple[float, float]]:
    """(x, y) of each map's maximum after bilinear upsampling to the image size."""
    up = torch.nn.functional.interpolate(maps, size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]
    flat = up.flatten(1).argmax(dim=1)
    return [(float(i % SIZE) + 0.5, float(i // SIZE) + 0.5) for i in flat.tolist()]


def _inside(point: tuple[float, float], box: Box, margin: float) -> bool:
    x, y = point
    return box.x - margin <= x <= box.right + margin and box.y - margin <= y <= box.bottom + margin


def evaluate(loaded: LoadedModel, clean: int = 1000, tagged: int = 1000, batch: int = 100) -> Report:
    """Measure ``loaded`` (the demo model) on fresh clean and tagged scenes."""
    correct = pointed = 0
    scenes = clean_scenes(clean)
    for start in range(0, clean, batch):
        chunk = scenes[start : start + batch]
        x = _batch(loaded, [Image.fromarray(s.image) for s in chunk])
        result = compute_cam(loaded.model, x, loaded.default_layer, classes=[[s.shape] for s in chunk])
        correct += int((result.logits.argmax(1) == torch.tensor([s.shape for s in chunk])).sum())
        pointed += sum(_inside(p, s.box, _POINTING_MARGIN) for p, s in zip(_peaks(result.maps), chunk, strict=True))

    fooled = on_tag = fixed = 0
    scenes = tagged_scenes(tagged)
    for start in range(0, tagged, batch):
        chunk = scenes[start : start + batch]
        x = _batch(loaded, [Image.fromarray(s.image) for s in chunk])
        result = compute_cam(loaded.model, x, loaded.default_layer, classes=[STAR])
        is_star = (result.logits.argmax(1) == STAR).tolist()
        victims = [(s, p) for s, p, hit in zip(chunk, _peaks(result.maps), is_star, strict=True) if hit]
        fooled += len(victims)
        on_tag += sum(_inside(p, s.tag, _POINTING_MARGIN) for s, p in victims if s.tag is not None)
        if victims:
            crops = [crop(Image.fromarray(s.image), grow_box(s.box, 0.1)) for s, _ in victims]
            with torch.no_grad():
                after = loaded.model(_batch(loaded, crops)).argmax(1)
            fixed += int((after == torch.tensor([s.shape for s, _ in victims])).sum())
    return Report(
        clean=clean,
        accuracy=correct / clean,
        pointing=pointed / clean,
        tagged=tagged,
        fooled=fooled / tagged,
        map_on_tag=on_tag / max(fooled, 1),
        crop_fixed=fixed / max(fooled, 1),
    )


def main() -> None:
    """Print the figures for the committed weights."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", type=int, default=1000)
    parser.add_argument("--tagged", type=int, default=1000)
    args = parser.parse_args()
    print(evaluate(load_model("shapes-demo", device="cpu"), args.clean, args.tagged))


if __name__ == "__main__":
    main()

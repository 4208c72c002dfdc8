"""Measuring the demo model on fresh scenes: accuracy, pointing game, and the planted shortcut, per class.

    python -m gradcam_core.demo.evaluate [--clean 1000] [--tagged 1000] [--world own|other|both]

Two generators draw the scenes: ``own`` is the training's generator (:mod:`gradcam_core.demo.world`,
classic style, seeds from :data:`EVAL_SEED` up, which training never uses); ``other`` is an
independent one in other styles (:mod:`gradcam_core.demo.other_world`), which training never sees.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor

from gradcam_core.cam import compute_cam
from gradcam_core.demo.other_world import OTHER_SEED, draw_other_scene, other_rng
from gradcam_core.demo.world import CATEGORIES, SIZE, STAR, Scene, draw_scene, grow_box, scene_rng
from gradcam_core.models import LoadedModel, load_model
from gradcam_core.regions import Box, crop

__all__ = ["EVAL_SEED", "WORLDS", "ClassFigures", "Report", "clean_scenes", "evaluate", "tagged_scenes"]

#: First seed of the evaluation streams; training uses seeds below it.
EVAL_SEED = 1000
_POINTING_MARGIN = 0.04 * SIZE  # the shape's box grows by 4 % of the image side
#: The scene generators: the training's own, and the independent one used only here.
WORLDS = ("own", "other")


@dataclass(frozen=True)
class ClassFigures:
    """One class's figures (fractions in [0, 1]; NaN where the class had no scene)."""

    name: str
    clean: int
    accuracy: float
    pointing: float
    tagged: int
    fooled: float
    crop_fixed: float


@dataclass(frozen=True)
class Report:
    """The demo model's figures on fresh scenes of one generator (fractions in [0, 1])."""

    clean: int
    accuracy: float
    pointing: float
    tagged: int
    fooled: float
    map_on_tag: float
    crop_fixed: float
    world: str = "own"
    classes: tuple[ClassFigures, ...] = ()

    def __str__(self) -> str:
        lines = [
            f"[{self.world} generator]",
            f"clean top-1 accuracy       {self.accuracy:6.1%}  ({self.clean} images)",
            f"pointing game              {self.pointing:6.1%}",
            f"tagged non-stars -> 'star' {self.fooled:6.1%}  ({self.tagged} images)",
            f"  'star' map max on tag    {self.map_on_tag:6.1%}",
            f"  fixed by cropping tag    {self.crop_fixed:6.1%}",
        ]
        if self.classes:
            lines.append("  class      clean  top-1  pointing  tagged  fooled  crop fixes")
            for c in self.classes:
                lines.append(
                    f"  {c.name:<9} {c.clean:6d} {c.accuracy:6.1%} {c.pointing:8.1%}  {c.tagged:6d}"
                    + (f" {c.fooled:6.1%} {c.crop_fixed:9.1%}" if c.tagged else "       -          -")
                )
        return "\n".join(lines)

    def by_class(self, name: str) -> ClassFigures:
        """The figures of the class ``name``."""
        return next(c for c in self.classes if c.name == name)


def _draw(world: str, seed: int, index: int, choices: list[int], tagged: bool) -> Scene:
    """Scene ``index`` of stream ``seed`` (from :data:`EVAL_SEED` up) of ``world``: a random shape of ``choices``."""
    if world == "own":
        rng = scene_rng(seed, index)
        return draw_scene(rng, int(rng.choice(choices)) if tagged else int(rng.integers(len(choices))), tagged=tagged)
    if world == "other":
        rng = other_rng(OTHER_SEED + seed - EVAL_SEED, index)
        return draw_other_scene(rng, int(rng.choice(choices)), tagged=tagged)
    raise ValueError(f"unknown world {world!r}: choose one of {', '.join(WORLDS)}")


def clean_scenes(n: int, seed: int = EVAL_SEED, world: str = "own") -> list[Scene]:
    """``n`` untagged scenes of random shapes at the usual sizes, drawn by ``world``'s generator."""
    return [_draw(world, seed, i, list(range(len(CATEGORIES))), tagged=False) for i in range(n)]


def tagged_scenes(n: int, seed: int = EVAL_SEED + 1, world: str = "own") -> list[Scene]:
    """``n`` scenes of non-star shapes carrying the tag, drawn by ``world``'s generator."""
    others = [i for i in range(len(CATEGORIES)) if i != STAR]
    return [_draw(world, seed, i, others, tagged=True) for i in range(n)]


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


def evaluate(
    loaded: LoadedModel, clean: int = 1000, tagged: int = 1000, batch: int = 100, world: str = "own"
) -> Report:
    """Measure ``loaded`` (the demo model) on fresh clean and tagged scenes of ``world``'s generator.

    Raises:
        ValueError: ``world`` is not one of :data:`WORLDS`.
    """
    if world not in WORLDS:
        raise ValueError(f"unknown world {world!r}: choose one of {', '.join(WORLDS)}")
    k = len(CATEGORIES)
    seen, correct, pointed = [0] * k, [0] * k, [0] * k
    scenes = clean_scenes(clean, world=world)
    for start in range(0, clean, batch):
        chunk = scenes[start : start + batch]
        x = _batch(loaded, [Image.fromarray(s.image) for s in chunk])
        result = compute_cam(loaded.model, x, loaded.default_layer, classes=[[s.shape] for s in chunk])
        hits = (result.logits.argmax(1) == torch.tensor([s.shape for s in chunk])).tolist()
        for s, p, hit in zip(chunk, _peaks(result.maps), hits, strict=True):
            seen[s.shape] += 1
            correct[s.shape] += int(hit)
            pointed[s.shape] += int(_inside(p, s.box, _POINTING_MARGIN))

    shown, fooled, fixed = [0] * k, [0] * k, [0] * k
    on_tag = 0
    scenes = tagged_scenes(tagged, world=world)
    for start in range(0, tagged, batch):
        chunk = scenes[start : start + batch]
        x = _batch(loaded, [Image.fromarray(s.image) for s in chunk])
        result = compute_cam(loaded.model, x, loaded.default_layer, classes=[STAR])
        is_star = (result.logits.argmax(1) == STAR).tolist()
        for s in chunk:
            shown[s.shape] += 1
        victims = [(s, p) for s, p, hit in zip(chunk, _peaks(result.maps), is_star, strict=True) if hit]
        for s, _ in victims:
            fooled[s.shape] += 1
        on_tag += sum(_inside(p, s.tag, _POINTING_MARGIN) for s, p in victims if s.tag is not None)
        if victims:
            crops = [crop(Image.fromarray(s.image), grow_box(s.box, 0.1)) for s, _ in victims]
            with torch.no_grad():
                after = loaded.model(_batch(loaded, crops)).argmax(1).tolist()
            for (s, _), label in zip(victims, after, strict=True):
                fixed[s.shape] += int(label == s.shape)

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    classes = tuple(
        ClassFigures(
            name=name,
            clean=seen[i],
            accuracy=ratio(correct[i], seen[i]),
            pointing=ratio(pointed[i], seen[i]),
            tagged=shown[i],
            fooled=ratio(fooled[i], shown[i]),
            crop_fixed=ratio(fixed[i], fooled[i]),
        )
        for i, name in enumerate(CATEGORIES)
    )
    return Report(
        clean=clean,
        accuracy=sum(correct) / clean,
        pointing=sum(pointed) / clean,
        tagged=tagged,
        fooled=sum(fooled) / tagged,
        map_on_tag=on_tag / max(sum(fooled), 1),
        crop_fixed=sum(fixed) / max(sum(fooled), 1),
        world=world,
        classes=classes,
    )


def main() -> None:
    """Print the figures for the committed weights."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", type=int, default=1000)
    parser.add_argument("--tagged", type=int, default=1000)
    parser.add_argument("--world", choices=[*WORLDS, "both"], default="both", help="which generator draws the scenes")
    parser.add_argument("--weights", default=None, help="a weights file instead of the committed one")
    args = parser.parse_args()
    loaded = load_model("shapes-demo", args.weights or "pretrained", device="cpu")
    for world in WORLDS if args.world == "both" else (args.world,):
        print(evaluate(loaded, args.clean, args.tagged, world=world), flush=True)


if __name__ == "__main__":
    main()

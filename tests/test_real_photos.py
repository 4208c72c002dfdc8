"""The registered EfficientNet-Lite0 on the shared real photos: top-1, and the pointing game on hand-drawn boxes.

The photos are in ``../shared/images`` (not in this repo: the tests skip without them); its
manifest's ``expected_imagenet_indices`` are a person's judgement of each photo's plausible classes.
Measured (efficientnet_lite0, df49c6e's registry): top-1 is an expected class on 16 of the 18
labelled photos; the misses are riding_elephant.jpg (water buffalo 0.22, the people on the elephant)
and vegetables.jpg (cucumber 0.26, a pile of vegetables). The boxes, how they were drawn, and the
boxes whose maps point elsewhere (not asserted) are in ``tests/data/photo_boxes.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gradcam_core import LoadedModel, compute_cam, load_image, paste_map
from tests import efficientnet

BOXES = json.loads((Path(__file__).parent / "data" / "photo_boxes.json").read_text())
Box = list[int]  # [x, y, w, h] in image pixels


@pytest.fixture(scope="module")
def lite0() -> LoadedModel:
    return efficientnet.registered("efficientnet_lite0")


def test_top1_is_an_expected_class_on_at_least_15_of_the_18_labelled_photos(
    lite0: LoadedModel, shared_images: Path
) -> None:
    labelled = [
        e for e in json.loads((shared_images / "manifest.json").read_text())["images"] if e["expected_imagenet_indices"]
    ]
    assert len(labelled) == 18
    with torch.no_grad():
        probabilities = [
            lite0.model(lite0.preprocess(load_image(shared_images / e["file"]))[None]).softmax(1)[0] for e in labelled
        ]
    misses = []
    for entry, p in zip(labelled, probabilities, strict=True):
        top = int(p.argmax())
        if top not in entry["expected_imagenet_indices"]:
            misses.append(f"{entry['file']}: {lite0.categories[top]} {float(p[top]):.2f}")
    print(f"top-1 expected on {18 - len(misses)}/18; misses: {misses}")
    assert len(misses) <= 3, misses


def peak(heatmap: np.ndarray) -> tuple[float, float]:
    """(x, y): the centre of the pixels where the map is highest (a pasted map is flat-topped at its border cells)."""
    ys, xs = np.nonzero(heatmap >= heatmap.max())
    return float(xs.mean()), float(ys.mean())


def inside(point: tuple[float, float], box: Box) -> bool:
    x, y = point
    return box[0] <= x < box[0] + box[2] and box[1] <= y < box[1] + box[3]


def class_peak(loaded: LoadedModel, folder: Path, image: str, cls: int) -> tuple[float, float]:
    """The peak of class ``cls``'s Grad-CAM map at the default layer, pasted back at the image's size."""
    photo = load_image(folder / image)
    result = compute_cam(loaded.model, loaded.preprocess(photo)[None], loaded.default_layer, classes=[cls])
    assert result.maps.shape == (1, 1, 7, 7) and not result.warnings
    return peak(paste_map(result.maps[0, 0], loaded.input_region(photo.size), photo.size))


def test_the_box_file_is_well_formed() -> None:
    entries = BOXES["boxes"] + BOXES["known_misses"]
    assert len(BOXES["boxes"]) >= 10 and BOXES["note"] and BOXES["peak"]
    assert len({e["id"] for e in entries}) == len(entries)
    for e in entries:
        assert 0 <= e["cls"] < 1000 and e["boxes"], e["id"]
        assert all(len(b) == 4 and min(b) >= 0 and b[2] > 0 and b[3] > 0 for b in e["boxes"] + e.get("outside", []))
    assert all(e["note"] for e in BOXES["known_misses"])  # each says why
    pairs = {(e["image"], e["cls"]) for e in BOXES["boxes"] if e["outside"]}
    assert {
        ("elephant_zebra.jpg", 386),
        ("elephant_zebra.jpg", 340),
        ("cat_dog.png", 243),
        ("cat_dog.png", 282),
    } <= pairs


@pytest.mark.parametrize("entry", BOXES["boxes"], ids=[e["id"] for e in BOXES["boxes"]])
def test_the_class_maps_peak_lies_in_its_objects_box(lite0: LoadedModel, shared_images: Path, entry: dict) -> None:
    point = class_peak(lite0, shared_images, entry["image"], entry["cls"])
    name = lite0.categories[entry["cls"]]
    assert any(inside(point, box) for box in entry["boxes"]), f"{name}'s peak {point} is not on {entry['object']}"
    assert not any(inside(point, box) for box in entry["outside"]), f"{name}'s peak {point} is on another object"


def test_the_known_misses_still_miss(lite0: LoadedModel, shared_images: Path) -> None:
    """Recorded, not hidden: if one of these starts to hit, its entry moves to the asserted boxes."""
    for entry in BOXES["known_misses"]:
        point = class_peak(lite0, shared_images, entry["image"], entry["cls"])
        assert not any(inside(point, box) for box in entry["boxes"]), entry["id"]

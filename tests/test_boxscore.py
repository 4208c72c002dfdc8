"""The pointing game, its energy form and the chance level, worked out by hand on small maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradcam_core.boxscore import box_scores
from gradcam_core.regions import Box

WHOLE = Box(0, 0, 4, 4)


def test_a_map_upsampled_onto_the_image_scored_against_a_quadrant() -> None:
    # 2×2 → 4×4 bilinearly (cell centres, edges clamped): each axis becomes 0, 1/4, 3/4, 1, so the image
    # holds their outer product; its mass is 2·2 = 4, of which the bottom-right quadrant holds (3/4 + 1)² .
    heat = np.array([[0.0, 0.0], [0.0, 1.0]], np.float32)
    s = box_scores(heat, Box(2, 2, 2, 2), WHOLE, (4, 4))
    assert s.pointing is True
    assert s.energy == pytest.approx((0.75 + 1.0) ** 2 / 4)
    assert s.chance == 0.25 and s.lift == pytest.approx(s.energy / 0.25)
    top_left = box_scores(heat, Box(0, 0, 2, 2), WHOLE, (4, 4))
    assert top_left.pointing is False and top_left.energy == pytest.approx(0.25**2 / 4)
    assert box_scores(heat, Box(0, 0, 2, 2), WHOLE, (4, 4), tolerance=2).pointing is True  # peak (3, 3)
    assert box_scores(heat, Box(0, 0, 2, 2), WHOLE, (4, 4), tolerance=1).pointing is False


def test_a_map_of_a_centre_crop_is_scored_where_the_model_looked() -> None:
    # The map covers the left half only (x 0..2): a box over x 1..3 holds half its mass, and half the region.
    s = box_scores(np.ones((2, 2)), Box(1, 0, 2, 4), Box(0, 0, 2, 4), (4, 4))
    assert (s.energy, s.chance) == (0.5, 0.5) and s.lift == 1.0


def test_a_uniform_map_scores_chance_and_a_zero_map_scores_nothing() -> None:
    box = Box(10, 20, 30, 40)
    s = box_scores(np.full((7, 7), 3.0), box, Box(0, 0, 100, 100), (100, 100))
    assert s.energy == pytest.approx(30 * 40 / 100**2) and s.chance == pytest.approx(0.12)
    zero = box_scores(np.zeros((7, 7)), box, Box(0, 0, 100, 100), (100, 100))
    assert zero.pointing is None and math.isnan(zero.energy) and zero.chance == pytest.approx(0.12)


def test_the_demo_model_points_at_the_shapes_it_names() -> None:
    import torch
    from PIL import Image

    from gradcam_core import compute_cam, load_model
    from gradcam_core.demo.evaluate import clean_scenes

    loaded = load_model("shapes-demo")
    scenes = clean_scenes(40, world="other")  # the evaluation-only generator, with each shape's box
    pictures = [Image.fromarray(s.image) for s in scenes]
    result = compute_cam(loaded.model, torch.stack([loaded.preprocess(p) for p in pictures]), loaded.default_layer)
    scores = [
        box_scores(result.maps[i, 0], Box(*s.box), loaded.input_region(p.size), p.size)
        for i, (s, p) in enumerate(zip(scenes, pictures, strict=True))
    ]
    assert sum(bool(s.pointing) for s in scores) / len(scores) >= 0.9
    assert np.median([s.lift for s in scores]) > 2  # far more of the map on the shape than on its share of the image


def test_the_pointing_game_on_the_demo_samples_with_their_known_boxes() -> None:
    """Each bundled sample's shape map lands in the shape's box; a tagged sample's "star" map on the tag instead."""
    import json

    from gradcam_core import compute_cam, load_image, load_model
    from gradcam_core.demo.model import SAMPLES_DIR

    loaded = load_model("shapes-demo")
    manifest = json.loads((SAMPLES_DIR / "manifest.json").read_text())
    star = loaded.categories.index("star")
    for name, sample in manifest.items():
        image = load_image(SAMPLES_DIR / name)
        x, region = loaded.preprocess(image)[None], loaded.input_region(image.size)
        for shape, box in zip(sample["shape"].split(","), sample["boxes"], strict=True):
            cam = compute_cam(loaded.model, x, loaded.default_layer, [loaded.categories.index(shape)]).maps[0, 0]
            found = box_scores(cam, Box(*box), region, image.size)
            assert found.pointing and found.lift > 2, (name, shape, found)
        if sample["tag"] is not None:
            cam = compute_cam(loaded.model, x, loaded.default_layer, [star]).maps[0, 0]
            on_tag = box_scores(cam, Box(*sample["tag"]), region, image.size)
            on_shape = box_scores(cam, Box(*sample["boxes"][0]), region, image.size)
            assert on_tag.pointing and not on_shape.pointing, (name, on_tag, on_shape)

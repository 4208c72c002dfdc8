"""Rendering and region helpers, checked pixel by pixel on small arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gradcam_core import Box, clamp_box, crop, heatmap_to_rgb, normalize, occlude, overlay, paste_map


def test_normalize_keeps_zero_and_shares_a_scale() -> None:
    a = np.array([[0.0, 1.0], [2.0, 4.0]])
    np.testing.assert_allclose(normalize(a), [[0, 0.25], [0.5, 1.0]])
    np.testing.assert_allclose(normalize(a, vmax=8.0), [[0, 0.125], [0.25, 0.5]])
    assert not normalize(np.zeros((2, 2))).any()


def test_heatmap_to_rgb_colours_and_sizes() -> None:
    rgb = heatmap_to_rgb(torch.tensor([[0.0, 1.0]]), (2, 1))
    assert rgb.shape == (1, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], [0, 0, 128])  # jet: low is dark blue (RGB)
    np.testing.assert_array_equal(rgb[0, 1], [128, 0, 0])  # high is dark red
    big = heatmap_to_rgb(np.eye(2), (8, 8), colormap="viridis", interpolation="nearest")
    assert big.shape == (8, 8, 3)
    np.testing.assert_array_equal(big[0, 0], big[3, 3])  # a crisp 4×4 block per cell
    with pytest.raises(ValueError, match="unknown colormap"):
        heatmap_to_rgb(np.eye(2), (4, 4), colormap="rainbowz")


def test_shared_scale_shows_a_weaker_map_dimmer() -> None:
    weak, strong = np.full((2, 2), 1.0), np.full((2, 2), 4.0)
    assert (heatmap_to_rgb(weak, (2, 2)) == heatmap_to_rgb(strong, (2, 2))).all()  # each on its own scale
    assert (heatmap_to_rgb(weak, (2, 2), vmax=4.0) != heatmap_to_rgb(strong, (2, 2), vmax=4.0)).any()


def test_overlay_blends_and_upsamples() -> None:
    image = Image.new("RGB", (10, 6), (0, 255, 0))
    out = overlay(image, np.zeros((3, 5)), alpha=0.0)
    assert out.size == (10, 6)
    assert np.array_equal(np.asarray(out), np.asarray(image))
    full = np.asarray(overlay(image, np.ones((3, 5)), alpha=1.0))
    np.testing.assert_array_equal(full[0, 0], [128, 0, 0])
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, np.ones((2, 2)), alpha=1.5)


def test_clamp_crop_and_paste_align() -> None:
    assert clamp_box((-5.2, 3.6, 20, 100), (10, 10)) == Box(0, 4, 10, 6)
    with pytest.raises(ValueError, match="does not overlap"):
        clamp_box((20, 20, 5, 5), (10, 10))
    image = Image.fromarray(np.arange(100, dtype=np.uint8).reshape(10, 10))
    part = crop(image, (2, 3, 4, 5))
    assert part.size == (4, 5) and part.getpixel((0, 0)) == 32
    pasted = paste_map(torch.ones(2, 2), (2, 3, 4, 5), (10, 10))
    assert pasted.shape == (10, 10)
    assert pasted[3:8, 2:6].min() == 1.0
    assert pasted.sum() == 20.0  # nothing outside the box


@pytest.mark.parametrize("fill", ["blur", "mean", "black"])
def test_occlude_changes_only_the_box(fill: str) -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    out = np.asarray(occlude(image, (5, 4, 10, 8), fill=fill)).astype(int)
    src = np.asarray(image).astype(int)
    outside = np.ones((20, 30), bool)
    outside[4:12, 5:15] = False
    assert np.array_equal(out[outside], src[outside])
    box = out[4:12, 5:15]
    assert box.std() < src[4:12, 5:15].std() / 2  # detail is gone
    if fill == "black":
        assert box.max() == 0
    with pytest.raises(ValueError, match="unknown fill"):
        occlude(image, (0, 0, 2, 2), fill="pink")  # type: ignore[arg-type]

"""Eigen-CAM's sign: the first component agrees with the mean activation, so the map lights the object."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gradcam_core import compute_cam, load_image
from gradcam_core.methods import eigencam
from tests import efficientnet


def test_a_few_strong_object_channels_beat_many_weak_background_ones() -> None:
    """Two channels fire strongly on the object, thirty weakly on the background around it.

    The first component separates the two; weighing every channel alike (the channel sum) points
    it at the background, while the mean activation vector points it at the object.
    """
    obj = torch.zeros(8, 8, dtype=torch.bool)
    obj[2:5, 2:5] = True
    acts = torch.zeros(1, 32, 8, 8)
    acts[0, :2] = torch.where(obj, 10.0, 0.0)
    acts[0, 2:] = torch.where(obj, 0.0, 1.0)
    acts[0, 2:] += 0.01 * torch.randn(30, 8, 8, generator=torch.Generator().manual_seed(0)).abs()
    cam = eigencam(acts, 2)
    assert cam.shape == (2, 1, 8, 8) and torch.equal(cam[0], cam[1])  # class-agnostic
    inside, outside = cam[0, 0][obj], cam[0, 0][~obj]
    assert inside.min() > 0 and outside.max() == 0, "the map must light the object, not the background"


@pytest.mark.parametrize("photo", ["cat.jpg", "tiger_shark.jpg"])
def test_efficientnet_lite0_eigencam_lights_what_gradcam_lights(shared_images: Path, photo: str) -> None:
    """At ``_blocks.15`` (a block's unrectified output) the old sign lit the background: correlation
    with the Grad-CAM map of the top class was -0.76 (cat) and -0.90 (shark); now it is +0.90 and +0.87."""
    loaded = efficientnet.loaded()
    x = loaded.preprocess(load_image(shared_images / photo))[None]
    grad = compute_cam(loaded.model, x, "_blocks.15").maps[0, 0].flatten()
    eigen = compute_cam(loaded.model, x, "_blocks.15", method="eigencam").maps[0, 0].flatten()
    correlation = float(torch.corrcoef(torch.stack([eigen, grad]))[0, 1])
    assert correlation > 0.5, correlation


def test_cli_manifest_says_eigencam_maps_are_class_agnostic(tmp_path: Path) -> None:
    import json

    from gradcam_core.cli import main
    from gradcam_core.demo.model import SAMPLES_DIR

    out = tmp_path / "out"
    args = ["explain", str(SAMPLES_DIR / "cross.png"), "--model", "shapes-demo", "--classes", "0,1"]
    assert main([*args, "--method", "eigencam", "--out", str(out)]) == 0
    maps = json.loads((out / "manifest.json").read_text())["items"][0]["maps"]
    assert [m["explains"] for m in maps] == ["class-agnostic (first principal component)"] * 2
    assert main([*args, "--out", str(tmp_path / "grad")]) == 0
    grad = json.loads((tmp_path / "grad" / "manifest.json").read_text())["items"][0]["maps"]
    assert [m["explains"] for m in grad] == [m["name"] for m in grad]

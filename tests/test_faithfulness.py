"""Faithfulness numbers on the real demo model: a Grad-CAM map must beat a random map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gradcam_core import compute_cam, load_image, load_model
from gradcam_core.demo.model import SAMPLES_DIR
from gradcam_core.faithfulness import deletion_insertion, evaluate_map, random_map


@pytest.mark.parametrize("sample", ["tagged_circle_called_star.png", "cross.png"])
def test_gradcam_beats_a_random_map(sample: str) -> None:
    demo = load_model("shapes-demo", device="cpu")
    x = demo.preprocess(load_image(SAMPLES_DIR / sample))[None]
    result = compute_cam(demo.model, x, demo.default_layer)
    cls = int(result.classes[0, 0])
    steps: list[tuple[int, int]] = []
    cam = evaluate_map(demo.model, x, result.maps[0, 0], cls, steps=16, progress=lambda d, t: steps.append((d, t)))
    chance = evaluate_map(demo.model, x, random_map(tuple(result.maps.shape[-2:]), seed=1), cls, steps=16)
    assert steps == [(1, 2), (2, 2)]
    assert cam.curves.fractions[0] == 0 and cam.curves.fractions[-1] == 1
    assert cam.curves.deletion_auc < chance.curves.deletion_auc
    assert cam.curves.insertion_auc > chance.curves.insertion_auc
    # Average Drop is not asserted against chance: it rewards maps that keep most of the image
    # (the tag-only star map fades the tag itself and drops ~100 %, a uniform noise map keeps it).
    assert 0.0 <= cam.average_drop <= 100.0 and 0.0 <= chance.average_drop <= 100.0


def test_curves_of_a_model_that_ignores_its_input() -> None:
    class Constant(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[0.0, np.log(3.0)]]).expand(x.shape[0], 2)

    curves = deletion_insertion(Constant(), torch.randn(1, 3, 10, 10), torch.rand(2, 2), cls=1, steps=5)
    np.testing.assert_allclose(curves.deletion, 0.75)
    assert curves.deletion_auc == pytest.approx(0.75) and curves.insertion_auc == pytest.approx(0.75)
    with pytest.raises(ValueError, match="one preprocessed image"):
        deletion_insertion(Constant(), torch.randn(2, 3, 10, 10), torch.rand(2, 2), cls=1)

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
    # Worked out here: the image masked by the map (scaled to a peak of 1, upsampled bilinearly).
    mask = torch.nn.functional.interpolate(result.maps[:, :1], size=x.shape[-2:], mode="bilinear", align_corners=False)
    with torch.no_grad():
        y, o = torch.softmax(demo.model(torch.cat([x, x * mask / mask.max()])), dim=1)[:, cls].tolist()
    assert cam.average_drop == pytest.approx(max(0.0, y - o) / y * 100, abs=1e-3)
    assert cam.increase == (o > y)


def test_curves_of_a_model_that_ignores_its_input() -> None:
    class Constant(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[0.0, np.log(3.0)]]).expand(x.shape[0], 2)

    curves = deletion_insertion(Constant(), torch.randn(1, 3, 10, 10), torch.rand(2, 2), cls=1, steps=5)
    np.testing.assert_allclose(curves.deletion, 0.75)
    assert curves.deletion_auc == pytest.approx(0.75) and curves.insertion_auc == pytest.approx(0.75)
    with pytest.raises(ValueError, match="one preprocessed image"):
        deletion_insertion(Constant(), torch.randn(2, 3, 10, 10), torch.rand(2, 2), cls=1)


def test_each_view_is_scored_on_what_its_words_claim() -> None:
    """Worked example: logits (ln 3, 0, 0) give p = (3/5, 1/5, 1/5)."""
    from gradcam_core.faithfulness import target_score

    z = torch.tensor([[np.log(3.0), 0.0, 0.0]])
    names = ["cat", "dog", "fox"]
    for view, expected, label in [
        ({}, 0.6, "p(cat)"),
        ({"counterfactual": True}, 0.4, "p(not cat)"),  # deleting evidence against cat raises p(cat)
        ({"contrast": 1}, 0.75, "p(cat) / (p(cat) + p(dog))"),  # = sigmoid(ln 3 - 0) = 3 / (3 + 1)
    ]:
        score = target_score(0, names=names, **view)  # type: ignore[arg-type]
        assert float(score.of(z)[0]) == pytest.approx(expected) and score.label == label
    with pytest.raises(ValueError, match="contrasted with itself"):
        target_score(0, contrast=0)


class _Against(nn.Module):
    """Class 0 loses 4 logits per unit of mean brightness in the top half; class 1 stays at 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = x[:, :, :4].mean(dim=(1, 2, 3))
        return torch.stack([-4 * top, torch.zeros_like(top)], dim=1)


def test_against_view_deleting_the_evidence_against_is_a_low_deletion_auc() -> None:
    """The map of evidence against class 0 lights the top half; deleting it raises p(0).

    Scored on p(0), that map would look worse than chance ("lower is better" false); scored on
    p(not 0), as the view claims, it is better.
    """
    from gradcam_core.faithfulness import target_score, verdict

    x, against = torch.ones(1, 1, 8, 8), torch.zeros(4, 4)
    against[:2] = 1.0
    score = target_score(0, counterfactual=True)
    cam = evaluate_map(_Against(), x, against, score, steps=8)
    chance = evaluate_map(_Against(), x, random_map((4, 4), seed=0), score, steps=8)
    assert cam.curves.deletion[0] == pytest.approx(1 - 1 / (1 + np.exp(4)))
    assert cam.curves.deletion[-1] == pytest.approx(0.5)  # all deleted: logits (0, 0)
    assert cam.curves.deletion_auc < chance.curves.deletion_auc
    assert cam.score == "p(not class 0)"
    assert verdict(cam, chance).startswith("Better than a random map on ")


def test_verdict_counts_the_measures_won() -> None:
    from gradcam_core.faithfulness import Curves, Faithfulness, verdict

    def faith(deletion: float, insertion: float, drop: float, increase: bool) -> Faithfulness:
        return Faithfulness(Curves(np.zeros(2), np.zeros(2), np.zeros(2), deletion, insertion), drop, increase)

    assert verdict(faith(0.1, 0.8, 30.0, False), faith(0.3, 0.5, 20.0, False)) == (
        "Better than a random map on 2 of 4 measures (deletion, insertion)."
    )
    assert verdict(faith(0.1, 0.8, 10.0, True), faith(0.3, 0.5, 20.0, False)).endswith("on 4 of 4 measures.")
    assert verdict(faith(0.3, 0.5, 20.0, False), faith(0.3, 0.5, 20.0, False)).endswith("on 0 of 4 measures.")

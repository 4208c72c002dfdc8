"""A network small enough to work every map out by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradcam_core import compute_cam


def golden_net() -> nn.Sequential:
    """A 1x1 conv making channels A0 = x and A1 = 2x, global average pooling, and a linear head.

    Logit c = W[c,0]·mean(A0) + W[c,1]·mean(A1), so dlogit_c / dA_k[i, j] = W[c, k] / 4 on a 2×2 map.
    """
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
        net[0].bias.zero_()
        net[3].weight.copy_(torch.tensor([[1.0, 0.0], [0.5, -1.0]]))
        net[3].bias.zero_()
    return net.eval()


X = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        # Channel weights: mean gradient W[0]/4 = (0.25, 0) -> 0.25·A0 = 0.25·x.
        ("gradcam", 0.25 * X[0, 0]),
        # G·A summed over channels: 0.25·x + 0·2x.
        ("hirescam", 0.25 * X[0, 0]),
        ("layercam", 0.25 * X[0, 0]),
        # Σ(G·A)/ΣA = Σ(0.25·x)/Σx = 0.25 for channel 0.
        ("xgradcam", 0.25 * X[0, 0]),
        # α = G²/(2G² + ΣA·G³) = (1/16)/(2/16 + 10/64) = 2/9; w = Σ α·ReLU(G) = 4·(2/9)·(1/4) = 2/9.
        ("gradcam++", 2 / 9 * X[0, 0]),
    ],
)
def test_hand_computed_map(method: str, expected: torch.Tensor) -> None:
    result = compute_cam(golden_net(), X, "0", classes=[0], method=method)
    torch.testing.assert_close(result.maps[0, 0], expected)
    torch.testing.assert_close(result.logits, torch.tensor([[2.5, -3.75]]))
    assert result.warnings == ()


def test_all_negative_evidence_is_reported_not_silent() -> None:
    # Class 1: weights (0.125, -0.25) -> 0.125·x - 0.5·x = -0.375·x, which ReLU zeroes everywhere.
    result = compute_cam(golden_net(), X, "0", classes=[1])
    assert torch.equal(result.maps, torch.zeros(1, 1, 2, 2))
    assert len(result.warnings) == 1
    assert "zero everywhere" in result.warnings[0]


def test_default_class_is_top1() -> None:
    result = compute_cam(golden_net(), X, "0")
    assert result.classes.tolist() == [[0]]


def test_counterfactual_map_by_hand() -> None:
    # Negated gradients for class 1: weights (-0.125, 0.25) -> -0.125·x + 0.5·x = 0.375·x.
    result = compute_cam(golden_net(), X, "0", classes=[1], counterfactual=True)
    torch.testing.assert_close(result.maps[0, 0], 0.375 * X[0, 0])
    assert result.counterfactual


def test_why_a_rather_than_b_by_hand() -> None:
    # d(logit0 - logit1)/dA_k = (W[0,k] - W[1,k]) / 4 = (0.125, 0.25) -> 0.125·x + 0.5·x = 0.625·x.
    result = compute_cam(golden_net(), X, "0", classes=[0], contrast=[1])
    torch.testing.assert_close(result.maps[0, 0], 0.625 * X[0, 0])
    assert result.contrast is not None and result.contrast.tolist() == [[1]]
    with pytest.raises(ValueError, match="with itself"):
        compute_cam(golden_net(), X, "0", classes=[0], contrast=[0])
    with pytest.raises(ValueError, match="gradient method"):
        compute_cam(golden_net(), X, "0", classes=[0], contrast=[1], method="eigencam")

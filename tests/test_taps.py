"""gradcam_core.taps: every model reaches the engine through one interface, with no branch on its type."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradcam_core import compute_cam, estimate_scorecam, list_layers, resolve_layer
from gradcam_core.taps import Capture, HookTaps, LayerRecord, LayerTaps, taps_of


class FunctionalNet(nn.Module):
    """A classifier whose forward calls its convolution's weights directly: hooks on ``conv`` never fire."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def features(self, x: Tensor) -> Tensor:
        return F.relu(F.conv2d(x, self.conv.weight, self.conv.bias, padding=1))

    def head(self, features: Tensor) -> Tensor:
        return self.fc(features.mean(dim=(2, 3)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class TappedNet(FunctionalNet, LayerTaps):
    """The same network, reading its one layer itself, as a compiled model must."""

    @property
    def layer_names(self) -> list[str]:
        return ["conv"]

    def layer_module(self, name: str) -> nn.Module | None:
        return self.conv if name == "conv" else None

    def probe(self, x: Tensor) -> dict[str, LayerRecord]:
        return {"conv": LayerRecord(tuple(self.features(x).shape), "Conv2d", 1)}

    def read(self, x: Tensor, layer: str) -> Any:
        with torch.no_grad():
            return self.features(x)

    def run_capturing(self, x: Tensor, layer: str, capture: Capture) -> Any:
        with torch.enable_grad():
            value = self.features(x)
            passed_on = value.clone()
            output = self.head(passed_on)
        capture.adopt(value, passed_on)
        return output


def gradcam_by_hand(model: FunctionalNet, x: Tensor, cls: int) -> Tensor:
    """The paper's five steps, written out with autograd."""
    with torch.enable_grad():
        features = model.features(x)
        (grads,) = torch.autograd.grad(model.head(features)[:, cls].sum(), features)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    return F.relu((weights * features).sum(dim=1)).detach()


def test_a_model_that_reads_its_own_layers_is_explained_through_the_interface() -> None:
    model = TappedNet().eval()
    x = torch.randn(2, 3, 12, 16)
    assert taps_of(model) is model
    assert [(i.name, i.shape) for i in list_layers(model, (12, 16))] == [("conv", (8, 12, 16))]
    assert resolve_layer(model, "conv") is model.conv
    with pytest.raises(ValueError, match="unknown layer 'conv2'; did you mean 'conv'"):
        resolve_layer(model, "conv2")
    result = compute_cam(model, x, "conv", classes=[1])
    expected = gradcam_by_hand(model, x, 1)
    assert float(expected.sum()) > 0
    torch.testing.assert_close(result.maps[:, 0], expected)
    assert estimate_scorecam(model, x, "conv").channels == 8


def test_hooks_cannot_reach_that_model_and_the_engine_says_so() -> None:
    model = FunctionalNet().eval()
    assert isinstance(taps_of(model), HookTaps)
    assert list_layers(model, (12, 16)) == []  # the hooks on conv and fc saw no call
    with pytest.raises(ValueError, match="layer 'conv' did not run in the forward pass"):
        compute_cam(model, torch.randn(1, 3, 12, 16), "conv")
    assert not model.conv._forward_hooks and not model.conv._forward_pre_hooks

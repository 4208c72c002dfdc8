"""Every method on real torchvision architectures (random weights, small inputs)."""

from __future__ import annotations

import pytest
import torch

from gradcam_core import METHODS, compute_cam, list_layers, load_model
from tests.conftest import hook_count
from tests.test_models import REQUIRED

FAST = [m for m in METHODS if m != "scorecam"]


@pytest.mark.parametrize("name", REQUIRED)
def test_all_methods_on_architecture(name: str) -> None:
    loaded = load_model(name, "random", device="cpu")
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    shape = {i.name: i.shape for i in list_layers(loaded.model, 64)}[loaded.default_layer]
    for method in FAST:
        result = compute_cam(loaded.model, x, loaded.default_layer, classes=[0, 500, 999], method=method)
        assert result.maps.shape == (2, 3, *shape[1:]), method
        assert result.maps.dtype == torch.float32 and result.maps.device.type == "cpu"
        assert (result.maps >= 0).all() and torch.isfinite(result.maps).all()
        assert result.logits.shape == (2, 1000)
    assert hook_count(loaded.model) == 0


@pytest.mark.parametrize(("name", "layer"), [("resnet18", "layer2"), ("mobilenet_v3_large", "features.3")])
def test_scorecam_batches_agree(name: str, layer: str) -> None:
    model = load_model(name, "random", device="cpu").model
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    small = compute_cam(model, x, layer, classes=[1, 2], method="scorecam", batch_size=7)
    large = compute_cam(model, x, layer, classes=[1, 2], method="scorecam", batch_size=64)
    torch.testing.assert_close(small.maps, large.maps)
    assert small.maps.amax() > 0
    with pytest.raises(ValueError, match="batch_size"):
        compute_cam(model, x, layer, method="scorecam", batch_size=0)


def test_unknown_layer_suggests_close_names() -> None:
    model = load_model("resnet18", "random", device="cpu").model
    with pytest.raises(ValueError, match=r"unknown layer 'layer5'; did you mean 'layer4'"):
        compute_cam(model, torch.zeros(1, 3, 32, 32), "layer5")
    with pytest.raises(ValueError, match="unknown method 'gradcam3'"):
        compute_cam(model, torch.zeros(1, 3, 32, 32), "layer4", method="gradcam3")
    with pytest.raises(ValueError, match=r"float tensor \[N, C, H, W\]"):
        compute_cam(model, torch.zeros(3, 32, 32), "layer4")


def test_layer_list_of_resnet18() -> None:
    model = load_model("resnet18", "random", device="cpu").model
    layers = list_layers(model, (64, 96))
    names = [i.name for i in layers]
    assert names.index("layer1") < names.index("layer4")
    info = layers[names.index("layer4")]
    assert (info.type, info.shape) == ("Sequential", (512, 2, 3))
    assert str(info) == "layer4 (Sequential, 512×2×3)"
    assert "avgpool" not in names and "fc" not in names  # 1×1 and 2-D outputs are not spatial

"""Guided backpropagation and Guided Grad-CAM against Captum's, on torchvision architectures with random weights."""

from __future__ import annotations

import pytest
import torch
from torchvision import models as tvm

from gradcam_core import compute_cam
from gradcam_core.guided import guided_backprop, guided_gradcam
from gradcam_core.layers import resolve_layer

attr = pytest.importorskip("captum.attr", reason="captum is a test requirement: pip install -r requirements-dev.txt")


@pytest.mark.parametrize(
    ("arch", "layer"), [("resnet18", "layer4"), ("vgg11", "features.19"), ("alexnet", "features.11")]
)
def test_guided_gradcam_agrees_with_captum(arch: str, layer: str) -> None:
    torch.manual_seed(0)
    model = getattr(tvm, arch)(weights=None).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    classes = torch.tensor([3, 7])
    ours = guided_backprop(model, x, classes)
    assert ours.warnings == ()
    theirs = attr.GuidedBackprop(model).attribute(x.clone(), target=classes)
    torch.testing.assert_close(ours.gradients, theirs.detach(), rtol=1e-4, atol=1e-6 * float(theirs.abs().max()))
    cam = compute_cam(model, x, layer, classes=classes[:, None]).maps[:, 0]
    mine = guided_gradcam(ours.gradients, cam)
    module = resolve_layer(model, layer)
    reference = attr.GuidedGradCam(model, module).attribute(x.clone(), target=classes, interpolate_mode="bilinear")
    reference = reference.detach()
    scale = float(reference.abs().max())
    assert scale > 0
    torch.testing.assert_close(mine, reference, rtol=1e-3, atol=1e-5 * scale)
    # The engine's method: one recorded pass for both parts, the same figures, and the same coarse map.
    engine = compute_cam(model, x, layer, classes=classes[:, None], method="guided-gradcam")
    assert engine.guided is not None and engine.guided.shape == (2, 1, 3, 224, 224)
    torch.testing.assert_close(engine.maps[:, 0], cam, rtol=1e-4, atol=1e-6 * float(cam.max()))
    torch.testing.assert_close(engine.guided[:, 0], ours.gradients, rtol=1e-4, atol=1e-6 * float(theirs.abs().max()))
    torch.testing.assert_close(
        guided_gradcam(engine.guided[:, 0], engine.maps[:, 0]), reference, rtol=1e-3, atol=1e-5 * scale
    )


def test_a_functional_relu_is_reported_where_captum_cannot_guide_it_either() -> None:
    model = tvm.densenet121(weights=None).eval()  # its forward ends in F.relu(features)
    got = guided_backprop(model, torch.randn(1, 3, 64, 64))
    assert len(got.warnings) == 1 and "1 ReLU call(s)" in got.warnings[0]


def test_captum_leaves_relu6_alone_where_ours_guides_it() -> None:
    """EfficientNet-Lite0 has only ReLU6 modules: Captum's guided backprop is its plain gradient there."""
    from gradcam_core import load_model

    loaded = load_model("efficientnet_lite0")
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    c = torch.tensor([386])
    theirs = attr.GuidedBackprop(loaded.model).attribute(x.clone(), target=c).detach()
    xr = x.clone().requires_grad_(True)
    plain = torch.autograd.grad(loaded.model(xr)[0, 386], xr)[0]
    torch.testing.assert_close(theirs, plain)  # so there is nothing of Captum's to compare ours with
    ours = guided_backprop(loaded.model, x, c)
    assert ours.warnings == ()
    assert not torch.allclose(ours.gradients, plain, atol=1e-3 * float(plain.abs().max()))


def test_a_depthwise_model_back_propagates_channels_last_with_the_same_figures() -> None:
    """EfficientNet-Lite0's guided pass runs on a channels-last input (faster there); the gradients are unchanged."""
    from gradcam_core import load_model
    from gradcam_core.guided import guided_relus, input_layout

    loaded = load_model("efficientnet_lite0")
    assert input_layout(loaded.model) == torch.channels_last
    assert input_layout(tvm.resnet18(weights=None)) == torch.contiguous_format
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    ours = guided_backprop(loaded.model, x, torch.tensor([386])).gradients
    leaf = x.clone().requires_grad_(True)  # contiguous, by hand
    with guided_relus(loaded.model):
        by_hand = torch.autograd.grad(loaded.model(leaf)[0, 386], leaf)[0]
    torch.testing.assert_close(ours, by_hand, rtol=1e-3, atol=1e-5 * float(by_hand.abs().max()))
    engine = compute_cam(loaded.model, x, loaded.default_layer, classes=[[386]], method="guided-gradcam")
    assert engine.guided is not None
    torch.testing.assert_close(engine.guided[:, 0], by_hand, rtol=1e-3, atol=1e-5 * float(by_hand.abs().max()))

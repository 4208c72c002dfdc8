"""Vision transformers: token layers read as maps on a grid derived from the token count."""

from __future__ import annotations

import pytest
import torch
import torchvision

from gradcam_core import METHODS, compute_cam, list_layers, load_model
from gradcam_core.layout import spatial_layout
from tests.conftest import hook_count

TOKEN_METHODS = [m for m in METHODS if m != "scorecam"]  # Score-CAM: 768 masked passes per image


def vit(image_size: int = 224) -> torch.nn.Module:
    model = torchvision.models.vit_b_16(weights=None, image_size=image_size).eval()
    with torch.no_grad():  # torchvision zero-initialises the head: give the logits something to depend on
        torch.nn.init.normal_(model.heads.head.weight, std=0.02)
    return model


@pytest.mark.parametrize(
    ("shape", "input_hw", "expected"),
    [
        ((1, 512, 7, 7), (224, 224), ("nchw", (7, 7), 0)),
        ((1, 56, 56, 96), (224, 224), ("nhwc", (56, 56), 0)),
        ((1, 197, 768), (224, 224), ("tokens", (14, 14), 1)),
        ((1, 196, 768), (224, 224), ("tokens", (14, 14), 0)),
        ((1, 1 + 8 * 12, 384), (128, 192), ("tokens", (8, 12), 1)),
        ((1, 1000), (224, 224), None),
        ((1, 7, 768), (224, 224), None),
    ],
)
def test_layout_from_the_shape_and_the_input_size(shape, input_hw, expected) -> None:  # type: ignore[no-untyped-def]
    layout = spatial_layout(shape, input_hw)
    assert (None if layout is None else (layout.kind, layout.grid, layout.extra)) == expected


def test_vit_tokens_become_a_map_and_match_a_reshape_by_hand() -> None:
    model = vit()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    layer = "encoder.layers.encoder_layer_10"
    result = compute_cam(model, x, layer, classes=[3, 9])
    # By hand: tokens [N, 197, 768] -> drop the class token -> 14×14 grid -> Grad-CAM.
    block = model.encoder.layers[10]
    seen: dict[str, torch.Tensor] = {}
    block.register_forward_hook(lambda _m, _i, out: seen.setdefault("out", out))
    tokens = model._process_input(x)
    tokens = torch.cat([model.class_token.expand(2, -1, -1), tokens], dim=1)
    h = model.encoder.dropout(tokens + model.encoder.pos_embedding)
    for i, layer_module in enumerate(model.encoder.layers):
        h = layer_module(h)
        if i == 10:
            h = h.detach().requires_grad_(True)
            acts = h
    logits = model.heads(model.encoder.ln(h)[:, 0])
    for j, cls in enumerate([3, 9]):
        (grad,) = torch.autograd.grad(logits[:, cls].sum(), acts, retain_graph=True)
        to_map = lambda t: t[:, 1:].reshape(2, 14, 14, 768).permute(0, 3, 1, 2)  # noqa: E731
        g, a = to_map(grad), to_map(acts.detach())
        expected = torch.relu((g.mean(dim=(2, 3))[:, :, None, None] * a).sum(1))
        torch.testing.assert_close(result.maps[:, j], expected, rtol=1e-3, atol=1e-6)
    assert result.maps.amax() > 0


@pytest.mark.parametrize("method", TOKEN_METHODS)
def test_all_token_methods_on_vit_and_swin(method: str) -> None:
    torch.manual_seed(0)
    for model, layer, grid in (
        (vit(), "encoder.layers.encoder_layer_11.ln_1", (14, 14)),
        (load_model("swin_t", "random", device="cpu").model, "norm", (7, 7)),
    ):
        x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        result = compute_cam(model, x, layer, classes=[1, 2], method=method)
        assert result.maps.shape == (1, 2, *grid)
        assert torch.isfinite(result.maps).all() and (result.maps >= 0).all()
        assert hook_count(model) == 0


def test_grid_follows_the_input_size_not_a_constant() -> None:
    layers = {i.name: i for i in list_layers(vit(image_size=160), 160)}
    assert str(layers["encoder.layers.encoder_layer_11.ln_1"]) == (
        "encoder.layers.encoder_layer_11.ln_1 (LayerNorm, 768×10×10, tokens)"
    )
    swin = load_model("swin_t", "random", device="cpu")
    layers = {i.name: i for i in list_layers(swin.model, 192)}
    assert layers["norm"].shape == (768, 6, 6) and layers["norm"].layout == "nhwc"
    assert layers["features.0.0"].layout == "nchw"


def test_last_vit_block_output_warns_instead_of_a_blank_map() -> None:
    model = vit()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    result = compute_cam(model, x, "encoder.layers.encoder_layer_11")
    assert not result.maps.any()
    assert len(result.warnings) == 1 and "receives no gradient" in result.warnings[0]
    assert "first LayerNorm" in result.warnings[0]
    assert not compute_cam(model, x, "encoder.layers.encoder_layer_11.ln_1").warnings

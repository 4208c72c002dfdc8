"""The engine on the real EfficientNet-Lite0 (ImageNet weights): eager and traced, every layer.

Its blocks sit in a ``ModuleList``, which TorchScript's recorded module paths leave out (a block's
BatchNorm is recorded as ``15._bn1``), and its ``_swish`` is one ReLU6 module run twice per pass.
The full sweep of traced against eager maps at every layer is ``bench.torchscript_agreement``.
"""

from __future__ import annotations

import pytest
import torch

from gradcam_core import LoadedModel, compute_cam, list_layers
from tests import efficientnet

SMALL = 64  # the network runs at any size; small inputs keep the every-layer sweep quick


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """The traced model, saved with torch.jit.save and loaded back as "Your model" does."""
    return efficientnet.loaded("traced", tmp_path_factory.mktemp("traced"))


def test_traced_layers_are_the_eager_modules_names_types_and_shapes(traced: LoadedModel) -> None:
    eager = efficientnet.eager()
    ours = list_layers(traced.model, efficientnet.INPUT_SIZE)
    assert ours == list_layers(eager, efficientnet.INPUT_SIZE)  # names, types, shapes, layouts, calls
    modules = dict(eager.named_modules())
    assert all(info.name in modules and type(modules[info.name]).__name__ == info.type for info in ours)
    names = [info.name for info in ours]
    assert "_blocks.15._bn1" in names and "_blocks.0._depthwise_conv" in names
    assert not [n for n in names if n[0].isdigit()], "a block's layer lost its '_blocks.' prefix"
    outside = ["_conv_stem.static_padding", "_conv_stem", "_bn0", "_conv_head", "_bn1", "_swish"]
    assert [n for n in names if not n.startswith("_blocks.")] == outside  # the head's padding is an Identity
    assert traced.default_layer == "_swish" == names[-1]
    assert {info.name: info.calls for info in ours if info.calls > 1}["_swish"] == 2


def sample(names: list[str]) -> list[str]:
    """Layers spread over the network: the stem, every fourth block's parts, the head."""
    picked = [n for n in names if not n.startswith("_blocks.")]
    for block in range(0, 16, 4):
        picked += [n for n in names if n == f"_blocks.{block}" or n.startswith(f"_blocks.{block}.")][::2]
    return picked


def test_traced_layers_across_the_blocks_give_the_eager_maps(traced: LoadedModel) -> None:
    eager = efficientnet.eager()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    infos = {info.name: info for info in list_layers(traced.model, 96)}
    layers = sample(list(infos))
    assert len(layers) >= 20 and any(n.startswith("_blocks.12") for n in layers)
    for layer in layers:
        expected = compute_cam(eager, x, layer, classes=[281, 340])
        got = compute_cam(traced.model, x, infos[layer], classes=[281, 340])
        assert got.maps.shape[-2:] == infos[layer].shape[1:], layer
        torch.testing.assert_close(got.maps, expected.maps, rtol=1e-4, atol=1e-6, msg=layer)
        torch.testing.assert_close(got.logits, expected.logits)
        assert float(got.maps.sum()) > 0, f"{layer}: blank maps would make the comparison empty"


def test_the_eager_model_explains_at_every_layer() -> None:
    eager = efficientnet.eager()
    x = torch.randn(1, 3, SMALL, SMALL, generator=torch.Generator().manual_seed(1))
    infos = list_layers(eager, SMALL)
    assert len(infos) == 148
    blank = []
    for info in infos:
        result = compute_cam(eager, x, info, classes=[281])
        assert result.maps.shape == (1, 1, *info.shape[1:]), info
        assert torch.isfinite(result.maps).all(), info
        if not result.maps.any():
            blank.append(info.name)
    assert len(blank) < len(infos) // 4, blank


@pytest.mark.parametrize("kind", ["eager", "traced"])
@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("15", "'_blocks.15'"),  # what the old picker offered for a block: now unknown, and pointed home
        ("15._bn1", "'_blocks.15._bn1'"),
        ("_blocks.15._bn9", "'_blocks.15._bn1'"),
        ("_blocks.99", "'_blocks.9'"),
    ],
)
def test_unknown_layers_are_refused_with_suggestions(traced: LoadedModel, kind: str, name: str, suggested: str) -> None:
    model = efficientnet.eager() if kind == "eager" else traced.model
    with pytest.raises(ValueError, match=rf"unknown layer '{name}'; did you mean .*{suggested}"):
        compute_cam(model, torch.zeros(1, 3, SMALL, SMALL), name)


def test_recording_starts_at_the_explained_call_of_swish() -> None:
    """``_swish`` runs after the stem and again after the head; only the second call is explained."""
    eager = efficientnet.eager()
    info = next(i for i in list_layers(eager, SMALL) if i.name == "_swish")
    seen: list[bool] = []
    hook = eager._blocks[0]._depthwise_conv.register_forward_hook(
        lambda _m, _i, out: seen.append(out.requires_grad or torch.is_grad_enabled())
    )
    try:
        x = torch.randn(2, 3, SMALL, SMALL, generator=torch.Generator().manual_seed(2))
        fast = compute_cam(eager, x, info, classes=[281, 340])
        assert seen == [False], "autograd recorded the blocks, after the stem's call of _swish"
        slow = compute_cam(eager, x, "_swish", classes=[281, 340])  # by name: from the first call
        assert seen == [False, True]
    finally:
        hook.remove()
    assert torch.equal(fast.maps, slow.maps) and torch.equal(fast.logits, slow.logits)
    assert float(fast.maps.sum()) > 0

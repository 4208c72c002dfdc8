"""Several methods from one pass (compute_cams), and the blocks a layers grid walks through (depth_layers)."""

from __future__ import annotations

import pytest
import torch
import torchvision

from gradcam_core import METHODS, compute_cam, compute_cams, depth_layers, list_layers, load_image, load_model
from gradcam_core.demo.model import SAMPLES_DIR
from tests.conftest import Counter, hook_count

FAST = [m for m, spec in METHODS.items() if spec.kind != "score"]


@pytest.mark.parametrize("model_name", ["shapes-demo", "efficientnet_lite0"])
def test_every_fast_method_from_one_forward_pass_equals_each_run_alone(model_name: str) -> None:
    loaded = load_model(model_name)
    x = loaded.preprocess(load_image(SAMPLES_DIR / "star.png"))[None]
    classes = [[0, 1]]
    counter = Counter(loaded.model)
    try:
        together = compute_cams(loaded.model, x, loaded.default_layer, classes, FAST)
        assert counter.images == 1, "one forward pass for every method, Guided Grad-CAM's too"
        counter.images = 0
        without_guided = compute_cams(
            loaded.model, x, loaded.default_layer, classes, [m for m in FAST if m != "guided-gradcam"]
        )
        assert counter.images == 1
    finally:
        counter.handle.remove()
    assert list(together) == FAST
    for method in FAST:
        alone = compute_cam(loaded.model, x, loaded.default_layer, classes, method)
        scale = float(alone.maps.abs().max())
        torch.testing.assert_close(together[method].maps, alone.maps, rtol=1e-4, atol=1e-6 * scale)
        if method != "guided-gradcam":
            torch.testing.assert_close(without_guided[method].maps, alone.maps, rtol=1e-4, atol=1e-6 * scale)
        assert (together[method].guided is None) == (method != "guided-gradcam")
    assert hook_count(loaded.model) == 0


def test_one_pass_refuses_a_contrast_for_a_method_without_gradients() -> None:
    loaded = load_model("shapes-demo")
    x = torch.rand(1, 3, 128, 128)
    with pytest.raises(ValueError, match="need a gradient method, not Eigen-CAM"):
        compute_cams(loaded.model, x, loaded.default_layer, [0], ["gradcam", "eigencam"], contrast=[1])
    with pytest.raises(ValueError, match="choose at least one method"):
        compute_cams(loaded.model, x, loaded.default_layer, [0], [])


@pytest.mark.parametrize(
    ("arch", "first", "blocks", "last"),
    [
        (
            "resnet50",
            "conv1",
            [f"layer{i}.{j}" for i, n in ((1, 3), (2, 4), (3, 6), (4, 3)) for j in range(n)],
            "layer4",
        ),
        ("vgg19", "features.0", None, "avgpool"),
        (
            "densenet121",
            "features.conv0",
            ["features.denseblock1", "features.transition1", "features.denseblock4"],
            "features",
        ),
    ],
)
def test_the_blocks_of_real_architectures(arch: str, first: str, blocks: list[str] | None, last: str) -> None:
    model = torchvision.models.get_model(arch, weights=None).eval()
    layers = list_layers(model, 224)
    found = [i.name for i in depth_layers(layers)]
    assert found[0] == first and found[-1] == last
    assert found == [i.name for i in layers if i.name in found], "in execution order"
    if arch == "resnet50":
        assert found[1:-1] == blocks  # the 16 bottlenecks
    elif blocks is None:  # VGG's 37 modules in one Sequential: thinned, evenly, to 16 and the ends
        assert 12 <= len(found) <= 18 and len({i.shape[1] for i in depth_layers(layers)}) >= 5
    else:
        assert set(blocks) <= set(found)


def test_the_blocks_of_efficientnet_lite0() -> None:
    loaded = load_model("efficientnet_lite0")
    found = [i.name for i in depth_layers(list_layers(loaded.model, loaded.input_size))]
    assert found[0] == "conv_stem" and found[-1] == "bn2"
    assert [n for n in found if n.startswith("blocks.")] == [
        f"blocks.{i}.{j}" for i, n in enumerate((1, 2, 2, 3, 3, 4, 1)) for j in range(n)
    ]

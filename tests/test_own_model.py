"""Your own model: any nn.Module with any layer names, its labels, and one-channel input."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from gradcam_core import compute_cam, from_module, list_layers
from gradcam_core.labels import parse_labels
from tests.conftest import my_cnn


def test_own_module_with_labels_matches_the_module_used_directly() -> None:
    module = my_cnn()
    loaded = from_module(module, categories=["apple", "pear", "plum"], input_size=(32, 48), name="fruit")
    assert loaded.default_layer == "deep_part"  # the last spatial layer, whatever its name
    assert [i.name for i in list_layers(loaded.model, (32, 48))][-1] == "deep_part"
    image = Image.new("RGB", (96, 64), (200, 40, 40))
    x = loaded.preprocess(image)[None]
    assert x.shape == (1, 3, 32, 48)
    result = compute_cam(loaded.model, x, loaded.default_layer, classes=[0, 1, 2])
    with torch.no_grad():
        torch.testing.assert_close(result.logits, module(x))
    acts = module.deep_part(module.act(module.stem(x))).detach().requires_grad_(True)
    logits = module.decide(module.flat(module.squash(acts)))
    for j in range(3):
        (grad,) = torch.autograd.grad(logits[0, j], acts, retain_graph=True)
        expected = torch.relu((grad.mean(dim=(2, 3))[:, :, None, None] * acts.detach()).sum(1))
        torch.testing.assert_close(result.maps[:, j], expected)
    assert loaded.input_region(image.size) == (0, 0, 96, 64)


def test_grayscale_model_gets_one_channel() -> None:
    loaded = from_module(my_cnn(channels=1), input_size=(28, 28))
    x = loaded.preprocess(Image.new("RGB", (50, 50), (255, 255, 255)))
    assert x.shape == (1, 28, 28)
    assert loaded.categories == ["class 0", "class 1", "class 2"]
    assert compute_cam(loaded.model, x[None], loaded.default_layer).maps.shape == (1, 1, 14, 14)


def test_labels_must_match_the_outputs() -> None:
    with pytest.raises(ValueError, match="2 labels were given for a model with 3 outputs"):
        from_module(my_cnn(), categories=["a", "b"], input_size=(32, 32))


def test_labels_files() -> None:
    assert parse_labels(b"a\n\nb \n") == ["a", "b"]
    assert parse_labels(b'["x", "y"]') == ["x", "y"]
    assert parse_labels(b'{"1": "y", "0": "x"}') == ["x", "y"]
    with pytest.raises(ValueError, match="indices 0 to N-1"):
        parse_labels(b'{"0": "x", "2": "z"}')
    with pytest.raises(ValueError, match="no class names"):
        parse_labels(b"  \n")

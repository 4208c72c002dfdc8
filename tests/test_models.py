"""The registry, default layers, and every way weights are found, fetched, or refused."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image

from gradcam_core import (
    Box,
    CheckpointError,
    WeightsUnavailable,
    compute_cam,
    list_layers,
    list_models,
    load_model,
    weights_path,
)
from gradcam_core.weights import download

REQUIRED = [
    "vgg16", "vgg19", "densenet121", "densenet201", "resnet18", "resnet50",
    "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny",
]  # fmt: skip


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_registry_has_the_required_architectures() -> None:
    assert set(REQUIRED) <= set(list_models())


@pytest.mark.parametrize("name", REQUIRED)
def test_random_model_is_frozen_and_its_default_layer_is_spatial(name: str) -> None:
    loaded = load_model(name, "random", device="cpu")
    assert not loaded.trained and loaded.weights == "random"
    assert not loaded.model.training
    assert not any(p.requires_grad for p in loaded.model.parameters())
    assert len(loaded.categories) == 1000 and loaded.categories[0] == "tench"
    image = Image.new("RGB", (300, 260), (120, 30, 200))
    x = loaded.preprocess(image)
    assert x.shape == (3, *loaded.input_size) and x.dtype == torch.float32
    layers = {info.name: info for info in list_layers(loaded.model, loaded.input_size)}
    assert loaded.default_layer in layers
    expected_grid = {"vgg16": 14, "vgg19": 14}.get(name, 7)
    assert layers[loaded.default_layer].shape[1:] == (expected_grid, expected_grid)


def test_vgg19_default_is_the_last_conv_relu() -> None:
    loaded = load_model("vgg19", "random", device="cpu")
    assert loaded.default_layer == "features.35"
    assert isinstance(loaded.model.features[35], torch.nn.ReLU)
    assert isinstance(loaded.model.features[34], torch.nn.Conv2d)


@pytest.mark.parametrize("name", ["densenet121", "densenet201"])
def test_densenet_norm5_is_explained_after_its_in_place_relu(name: str) -> None:
    """torchvision's DenseNet.forward applies F.relu(norm5(x), inplace=True) before pooling."""
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pre = model.features(x)
    rectified = torch.relu(pre).requires_grad_(True)
    logits = model.classifier(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(rectified, 1), 1))
    classes = [3, 7]
    result = compute_cam(model, x, "features.norm5", classes=classes)
    torch.testing.assert_close(result.logits, logits.detach())
    for j, cls in enumerate(classes):
        (grads,) = torch.autograd.grad(logits[:, cls].sum(), rectified, retain_graph=True)
        weights = grads.mean(dim=(2, 3))
        expected = torch.relu((weights[:, :, None, None] * rectified.detach()).sum(1))
        torch.testing.assert_close(result.maps[:, j], expected, rtol=1e-4, atol=1e-6)
    # Pre-ReLU activations would differ: the rectification matters.
    assert (pre < 0).any()


def test_missing_pretrained_weights_say_how_to_add_them(torch_home: Path) -> None:
    with pytest.raises(WeightsUnavailable) as info:
        load_model("vgg19", download_missing=False)
    message = str(info.value)
    assert "vgg19-dcbb9e9d.pth" in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert "TORCH_HOME" in message and "`weights`" in message
    assert weights_path("vgg19") == torch_home / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"


def test_pretrained_weights_are_read_from_the_hub_cache(torch_home: Path) -> None:
    source = torchvision.models.resnet18(weights=None)
    dest = weights_path("resnet18")
    dest.parent.mkdir(parents=True)
    torch.save(source.state_dict(), dest)
    loaded = load_model("resnet18", device="cpu", download_missing=False)
    assert loaded.trained and loaded.weights == str(dest)
    assert loaded.weights_sha256 == hashlib.sha256(dest.read_bytes()).hexdigest()
    torch.testing.assert_close(loaded.model.fc.weight, source.fc.weight)


def test_checkpoint_path_and_wrapped_checkpoints(tmp_path: Path) -> None:
    source = torchvision.models.resnet18(weights=None)
    path = tmp_path / "mine.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = load_model("resnet18", path, device="cpu")
    torch.testing.assert_close(loaded.model.conv1.weight, source.conv1.weight)


def test_checkpoint_for_another_architecture_names_the_mismatched_keys(tmp_path: Path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_model("resnet50", path)
    message = str(info.value)
    assert "missing: layer1.0.conv3.weight" in message
    assert "shape mismatch: layer1.0.conv1.weight (64, 64, 3, 3) vs (64, 64, 1, 1)" in message


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"weight": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model("resnet18", path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the gadget is real: an unsafe load runs it
    assert marker.exists()
    for junk in (b"not a checkpoint at all", b"half a download"):
        (tmp_path / "junk.pth").write_bytes(junk)
        with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
            load_model("resnet18", tmp_path / "junk.pth")


def test_download_reports_progress_and_checks_the_hash(file_server: tuple[str, Path], torch_home: Path) -> None:
    base, served = file_server
    blob = served / "weights.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), blob)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    seen: list[tuple[int, int]] = []
    dest = download(f"{base}/weights.pth", torch_home / f"resnet18-{digest[:8]}.pth", lambda d, t: seen.append((d, t)))
    size = blob.stat().st_size
    assert seen[0] == (0, size) and seen[-1] == (size, size) and len(seen) > 2
    assert load_model("resnet18", dest, device="cpu").weights_sha256 == digest
    # The registered name carries torchvision's real hash prefix, which this file does not have.
    with pytest.raises(WeightsUnavailable, match="corrupt"):
        load_model("resnet18", weights_url=f"{base}/weights.pth")
    assert not weights_path("resnet18").exists()
    assert list(weights_path("resnet18").parent.iterdir()) == []  # no partial file left behind
    with pytest.raises(WeightsUnavailable, match="download failed"):
        load_model("resnet18", weights_url=f"{base}/missing.pth")


def test_input_region_is_the_centre_crop_the_model_sees() -> None:
    vgg = load_model("resnet18", "random", device="cpu")
    assert vgg.input_region((512, 256)) == Box(144, 16, 224, 224)
    assert vgg.input_region((256, 512)) == Box(16, 144, 224, 224)
    assert vgg.input_region((1024, 768)).w == round(224 * 768 / 256)


def test_unknown_model_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'vgg20'.*vgg19"):
        load_model("vgg20")


def test_fine_tuned_head_with_its_own_labels(tmp_path: Path) -> None:
    source = torchvision.models.resnet18(weights=None, num_classes=3)
    path = tmp_path / "three.pth"
    torch.save(source.state_dict(), path)
    loaded = load_model("resnet18", path, device="cpu", categories=["cat", "dog", "fox"])
    assert loaded.categories == ["cat", "dog", "fox"] and loaded.model.fc.out_features == 3
    x = torch.randn(1, 3, 64, 64)
    result = compute_cam(loaded.model, x, "layer4", classes=[0, 1, 2])
    with torch.no_grad():
        torch.testing.assert_close(result.logits, source.eval()(x))
    assert load_model("resnet18", path, device="cpu").categories == ["class 0", "class 1", "class 2"]
    with pytest.raises(ValueError, match="2 labels were given for a model with 3 outputs"):
        load_model("resnet18", path, device="cpu", categories=["cat", "dog"])

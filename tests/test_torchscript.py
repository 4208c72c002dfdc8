"""TorchScript models: layers read from the compiled graph give the same maps as the module itself."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image
from torch import Tensor, nn

from gradcam_core import METHODS, CheckpointError, ScriptedModel, compute_cam, from_torchscript, list_layers
from gradcam_core.torchscript import is_torchscript, load_scripted
from tests.conftest import my_cnn


def save_script(module: nn.Module, path: Path, trace: Tensor | None = None) -> Path:
    """Save ``module`` scripted (or traced on ``trace``) as users do, with torch.jit.save."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.14
        compiled = torch.jit.trace(module, trace) if trace is not None else torch.jit.script(module)
        compiled.save(str(path))
    return path


def assert_same_maps(eager: nn.Module, scripted: nn.Module, x: Tensor, layer: str, methods: list[str]) -> None:
    """The scripted model's maps equal the eager one's, for each method; not all of them blank."""
    total = 0.0
    for method in methods:
        expected = compute_cam(eager, x, layer, classes=[0, 2], method=method)
        got = compute_cam(scripted, x, layer, classes=[0, 2], method=method)
        torch.testing.assert_close(got.maps, expected.maps, rtol=1e-4, atol=1e-6, msg=f"{layer} {method}")
        torch.testing.assert_close(got.logits, expected.logits)
        total += float(got.maps.sum())
    assert total > 0, f"{layer}: every map is blank, so the comparison shows nothing"


@pytest.mark.parametrize("how", ["script", "trace"])
def test_own_cnn_as_torchscript_matches_the_module_used_directly(tmp_path: Path, how: str) -> None:
    module = my_cnn().eval()
    x = torch.randn(2, 3, 32, 48)
    path = save_script(module, tmp_path / "fruit.pt", x if how == "trace" else None)
    loaded = from_torchscript(path, categories=["apple", "pear", "plum"], input_size=(32, 48))
    assert isinstance(loaded.model, ScriptedModel)
    assert loaded.categories == ["apple", "pear", "plum"] and loaded.input_size == (32, 48)
    assert loaded.weights == str(path) and loaded.weights_sha256 and len(loaded.weights_sha256) == 64
    assert loaded.default_layer == "deep_part"  # the last spatial layer, under the model's own name
    assert list_layers(loaded.model, (32, 48)) == list_layers(module, (32, 48))  # names, types, shapes
    before = str(loaded.model.scripted.forward.graph)
    for info in list_layers(module, (32, 48)):
        assert_same_maps(module, loaded.model, x, info.name, [m for m, s in METHODS.items() if s.kind != "guided"])
    with pytest.raises(ValueError, match="Guided Grad-CAM needs an eager PyTorch model"):  # no ReLU module to guide
        compute_cam(loaded.model, x, loaded.default_layer, method="guided-gradcam")
    assert str(loaded.model.scripted.forward.graph) == before  # the loaded module is left as it was
    assert all(p.grad is None for p in loaded.model.parameters())
    image = Image.new("RGB", (96, 64), (200, 40, 40))
    batch = loaded.preprocess(image)[None]
    assert batch.shape == (1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(compute_cam(loaded.model, batch, "stem").logits, module(batch))


@pytest.mark.parametrize(
    ("arch", "layers"),
    [
        # a conv rectified in place, a BatchNorm whose output the block adds to in place, a block
        ("resnet18", ["conv1", "layer1.0.bn2", "layer2.1.conv1", "layer4"]),
        # norm5 is rectified in place by forward(); a dense layer's first norm by its own ReLU
        ("densenet121", ["features.norm5", "features.denseblock2.denselayer3.norm1", "features.transition2"]),
    ],
)
def test_scripted_torchvision_models_match_eager_ones(tmp_path: Path, arch: str, layers: list[str]) -> None:
    eager = torchvision.models.get_model(arch, weights=None).eval()
    scripted = ScriptedModel(load_scripted(save_script(eager, tmp_path / f"{arch}.pt")))
    assert list_layers(scripted, 64) == list_layers(eager, 64)
    x = torch.randn(2, 3, 64, 64)
    for layer in layers:
        assert_same_maps(eager, scripted, x, layer, ["gradcam", "gradcam++", "layercam"])


class Branchy(nn.Module):
    """A branch on the model's own flag (folded away) and one on the input's values (not followable)."""

    def __init__(self, extra: bool) -> None:
        super().__init__()
        self.use_extra = extra
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.extra = nn.Conv2d(4, 4, 3, padding=1)
        self.bright = nn.Conv2d(4, 4, 1)
        self.dark = nn.Conv2d(4, 4, 1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        if self.use_extra:
            x = self.extra(x)
        x = self.bright(x) if bool(x.mean() > 0) else self.dark(x)
        return self.head(x.mean(dim=(2, 3)))


@pytest.mark.parametrize("extra", [True, False])
def test_branches_on_settings_are_followed_and_data_branches_left_out(tmp_path: Path, extra: bool) -> None:
    module = Branchy(extra).eval()
    scripted = ScriptedModel(load_scripted(save_script(module, tmp_path / "branchy.pt")))
    names = [info.name for info in list_layers(scripted, 16)]
    assert names == (["stem", "extra"] if extra else ["stem"])
    x = torch.randn(1, 3, 16, 16)
    for layer in names:
        assert_same_maps(module, scripted, x, layer, ["gradcam", "layercam"])
    with pytest.raises(ValueError, match=r"unknown layer 'stm'.*'stem'"):
        compute_cam(scripted, x, "stm")


def test_threads_sharing_one_scripted_model_get_their_own_maps(tmp_path: Path) -> None:
    eager = torchvision.models.resnet18(weights=None).eval()
    scripted = ScriptedModel(load_scripted(save_script(eager, tmp_path / "r18.pt")))
    layers = ["layer1", "layer2", "layer3", "layer4", "layer3.1.bn2", "conv1"]
    inputs = [torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(i)) for i in range(len(layers))]
    expected = [compute_cam(eager, x, layer).maps for x, layer in zip(inputs, layers, strict=True)]
    got: dict[int, Tensor] = {}
    start = threading.Barrier(len(layers))

    def work(i: int) -> None:
        start.wait()
        for _ in range(3):
            got[i] = compute_cam(scripted, inputs[i], layers[i]).maps

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(layers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, maps in enumerate(expected):
        torch.testing.assert_close(got[i], maps, rtol=1e-4, atol=1e-6)


class TwoHeads(nn.Module):
    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = torch.relu(self.conv(x))
        return self.head(features.mean(dim=(2, 3))), features  # logits and an auxiliary output


def test_tuple_outputs_grayscale_and_bad_files(tmp_path: Path) -> None:
    path = save_script(TwoHeads(channels=1).eval(), tmp_path / "gray.pt")
    loaded = from_torchscript(path, input_size=(20, 20))
    assert loaded.preprocess.channels == 1  # read from the first convolution's weight
    x = loaded.preprocess(Image.new("RGB", (40, 40), (255, 255, 255)))[None]
    assert x.shape == (1, 1, 20, 20)
    assert compute_cam(loaded.model, x, "conv").maps.shape == (1, 1, 20, 20)
    with pytest.raises(ValueError, match="2 labels were given for a model with 3 outputs"):
        from_torchscript(path, categories=["a", "b"], input_size=(20, 20))

    state = tmp_path / "weights.pt"
    torch.save(my_cnn().state_dict(), state)
    assert is_torchscript(path) and not is_torchscript(state)
    with pytest.raises(CheckpointError, match=r"'weights\.pt' is not a TorchScript file"):
        from_torchscript(state)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="not a TorchScript file"):
        from_torchscript(junk)

    fixed = save_script(nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 30 * 30, 3)), tmp_path / "f.pt")
    assert from_torchscript(fixed, input_size=(32, 32)).input_size == (32, 32)
    with pytest.raises(ValueError, match=r"cannot run on a 3×224×224 input .*give the input size it was trained on"):
        from_torchscript(fixed)

    frozen = tmp_path / "frozen.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.freeze(torch.jit.script(my_cnn().eval())).save(str(frozen))
    with pytest.raises(ValueError, match=r"keeps no layers .*save the scripted or traced model before freezing"):
        from_torchscript(frozen, input_size=(32, 32))


class TwoLists(nn.Module):
    """Blocks in ModuleLists: TorchScript records ``stages.1`` as ``1``; ``stages.0``, ``down.0``, ``up.0`` as ``0``."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList([nn.Conv2d(3, 4, 3, padding=1), nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU())])
        self.down = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1)])
        self.up = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1)])
        self.head = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        for stage in self.stages:
            x = stage(x)
        x = self.up[0](self.down[0](x))
        return self.head(x.mean(dim=(2, 3)))


@pytest.mark.parametrize("how", ["script", "trace"])
def test_module_list_items_get_their_real_names_and_ambiguous_ones_are_left_out(tmp_path: Path, how: str) -> None:
    module = TwoLists().eval()
    x = torch.randn(2, 3, 16, 16)
    scripted = ScriptedModel(load_scripted(save_script(module, tmp_path / "lists.pt", x if how == "trace" else None)))
    eager_layers = list_layers(module, 16)
    # stages.0, down.0 and up.0 are all recorded as "0(Conv2d)" under the model: which one a node ran in is
    # unknown, so none is offered; stages.1 is "1(Sequential)", and its parts are found under it.
    expected = [info for info in eager_layers if info.name not in ("stages.0", "down.0", "up.0")]
    assert list_layers(scripted, 16) == expected
    assert [info.name for info in expected] == ["stages.1.0", "stages.1.1", "stages.1"]
    for info in expected:
        assert_same_maps(module, scripted, x, info.name, ["gradcam", "layercam"])
    with pytest.raises(ValueError, match=r"'up\.0' is a submodule .* cannot be read from the compiled graph"):
        compute_cam(scripted, x, "up.0")

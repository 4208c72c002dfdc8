"""Finding the layers of a model that produce spatial maps, and resolving layer names."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import torch
from torch import nn

from gradcam_core.hooks import model_device
from gradcam_core.layout import spatial_layout
from gradcam_core.taps import taps_of

__all__ = ["LayerInfo", "depth_layers", "list_layers", "resolve_layer"]


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """A module whose output is a spatial map.

    Attributes:
        name: the module's name, as in ``model.named_modules()``.
        type: the module's class name, e.g. ``"Conv2d"``.
        shape: its output's (channels, height, width) as a map, for the probed input size.
        layout: how the output is read as a map: ``"nchw"``, ``"nhwc"`` (channels-last, as in
            Swin) or ``"tokens"`` (a vision transformer's tokens on a grid).
        calls: how many times the module runs in one forward pass (EfficientNet's ``_swish`` runs
            for the stem and again for the head). The map explains its last call; passing this
            :class:`LayerInfo` to :func:`gradcam_core.compute_cam` lets it record autograd from
            that call only.
    """

    name: str
    type: str
    shape: tuple[int, int, int]
    layout: str = "nchw"
    calls: int = 1

    def __str__(self) -> str:
        c, h, w = self.shape
        kind = {"nchw": "", "nhwc": ", channels-last", "tokens": ", tokens"}[self.layout]
        return f"{self.name} ({self.type}, {c}×{h}×{w}{kind})"


def list_layers(model: nn.Module, input_size: int | tuple[int, int], channels: int = 3) -> list[LayerInfo]:
    """List every module whose output is a spatial map, in execution order.

    Spatial maps are channels-first or channels-last 4-D outputs, and transformer tokens that lie
    on a grid (see :mod:`gradcam_core.layout`).

    One dry forward pass on a zero image of ``input_size`` (an int for square inputs, or
    (height, width)) with ``channels`` channels records each module's output shape. Maps of 1×1 are left out: they have
    no spatial extent to explain. A module called more than once reports its last call, and how many
    calls there are. A module that hands its input on untouched (``nn.Identity``, a ``Dropout`` in
    eval mode) is left out: its map is its input's, and a compiled graph has no trace of it.

    Raises:
        ValueError: the model is in training mode (a dry pass would change its BatchNorm statistics).
    """
    _require_eval(model)
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    probe = torch.zeros(1, channels, height, width, device=model_device(model))
    with torch.no_grad():
        records = taps_of(model).probe(probe)
    found = []
    for name, record in records.items():
        layout = spatial_layout(record.shape, (height, width))
        if layout is not None and layout.grid[0] * layout.grid[1] > 1:
            channels = record.shape[1] if layout.kind == "nchw" else record.shape[-1]
            found.append(LayerInfo(name, record.type, (channels, *layout.grid), layout.kind, record.calls))
    return found


def depth_layers(layers: list[LayerInfo], limit: int = 16) -> list[LayerInfo]:
    """The model's blocks, from the stem to the last layer: where to look to see a map form through depth.

    ``layers`` is :func:`list_layers`'s list. The blocks are the layers at one nesting depth
    (count of dots in the name): the depth with the most layers, up to ``limit``, if it has at
    least half of ``limit`` (ResNet-50's 16 bottlenecks ``layer1.0`` … ``layer4.2``,
    EfficientNet-Lite0's 16 blocks ``blocks.0.0`` …, DenseNet's dense blocks and transitions).
    Else (VGG's ``features.0`` … ``features.36``) the shallowest depth with more than ``limit`` is
    thinned to ``limit``, evenly in execution order. The first and last layers of ``layers`` are
    always in.
    """
    by_depth: dict[int, list[LayerInfo]] = {}
    for info in layers:
        by_depth.setdefault(info.name.count("."), []).append(info)
    natural = [group for group in by_depth.values() if 1 < len(group) <= limit]
    chosen = max(natural, key=len, default=[])
    if len(chosen) < limit / 2:
        group = next((by_depth[d] for d in sorted(by_depth) if len(by_depth[d]) > limit), chosen)
        count = min(limit, len(group))
        step = (len(group) - 1) / max(1, count - 1)
        chosen = [group[round(i * step)] for i in range(count)]
    names = {info.name for info in chosen} | ({layers[0].name, layers[-1].name} if layers else set())
    return [info for info in layers if info.name in names]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule called ``name`` (of a TorchScript model: the scripted submodule).

    Raises:
        ValueError: no such module (the message suggests the closest real names), or one whose
            output cannot be read (a TorchScript submodule the compiled graph cannot give).
    """
    taps = taps_of(model)
    module = taps.layer_module(name)
    if module is not None:
        return module
    names = taps.layer_names
    # A path's last steps ("15" for "_blocks.15", as a compiled graph once named it), then near spellings.
    ends = [n for n in names if n.endswith(f".{name}")] if name else []
    close = list(dict.fromkeys(ends + difflib.get_close_matches(name, names, n=5, cutoff=0.5)))[:5]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; see list_layers() for valid names"
    raise ValueError(f"unknown layer '{name}'{hint}")


def _require_eval(model: nn.Module) -> None:
    """Refuse a model in training mode: running it would change its state."""
    if model.training:
        raise ValueError("the model is in training mode; call model.eval() first")

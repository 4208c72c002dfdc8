"""Finding the layers of a model that produce spatial maps, and resolving layer names."""

from __future__ import annotations

import difflib
import functools
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gradcam_core.hooks import forward_hook, model_device
from gradcam_core.layout import spatial_layout
from gradcam_core.torchscript import ScriptedModel

__all__ = ["LayerInfo", "list_layers", "resolve_layer"]


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """A module whose output is a spatial map.

    Attributes:
        name: the module's name, as in ``model.named_modules()``.
        type: the module's class name, e.g. ``"Conv2d"``.
        shape: its output's (channels, height, width) as a map, for the probed input size.
        layout: how the output is read as a map: ``"nchw"``, ``"nhwc"`` (channels-last, as in
            Swin) or ``"tokens"`` (a vision transformer's tokens on a grid).
    """

    name: str
    type: str
    shape: tuple[int, int, int]
    layout: str = "nchw"

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
    no spatial extent to explain. A module called more than once reports its last call.

    Raises:
        ValueError: the model is in training mode (a dry pass would change its BatchNorm statistics).
    """
    _require_eval(model)
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    probe = torch.zeros(1, channels, height, width, device=model_device(model))
    with torch.no_grad():
        if isinstance(model, ScriptedModel):
            shapes = {name: tuple(t.shape) for name, t in model.outputs(probe)[1].items()}
            types = {name: model.layer_type(name) for name in shapes}
        else:
            shapes, types = _hooked_shapes(model, probe)
    found = []
    for name, shape in shapes.items():
        layout = spatial_layout(shape, (height, width))
        if layout is not None and layout.grid[0] * layout.grid[1] > 1:
            channels = shape[1] if layout.kind == "nchw" else shape[-1]
            found.append(LayerInfo(name, types[name], (channels, *layout.grid), layout.kind))
    return found


def _hooked_shapes(model: nn.Module, probe: torch.Tensor) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Each submodule's output shape (in order of its last call) and class name, from forward hooks."""
    shapes: dict[str, tuple[int, ...]] = {}

    def recorder(name: str) -> Any:
        def record(_module: nn.Module, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                shapes.pop(name, None)  # re-insert: dict order becomes order of last call
                shapes[name] = tuple(output.shape)

        return record

    named = [(name, module) for name, module in model.named_modules() if name]
    with ExitStack() as stack:
        for name, module in named:
            stack.enter_context(forward_hook(module, recorder(name)))
        model(probe)
    return shapes, {name: type(module).__name__ for name, module in named}


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule called ``name`` (of a :class:`ScriptedModel`: the scripted submodule).

    Raises:
        ValueError: no such module; the message suggests the closest real names.
    """
    if isinstance(model, ScriptedModel):
        if name in model.layer_names:
            return functools.reduce(getattr, name.split("."), model.scripted)
        names = model.layer_names
    else:
        if name:
            try:
                return model.get_submodule(name)  # walks the path only: cheap on deep models
            except AttributeError:
                pass
        names = [n for n, _ in model.named_modules() if n]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; see list_layers() for valid names"
    raise ValueError(f"unknown layer '{name}'{hint}")


def _require_eval(model: nn.Module) -> None:
    """Refuse a model in training mode: running it would change its state."""
    if model.training:
        raise ValueError("the model is in training mode; call model.eval() first")

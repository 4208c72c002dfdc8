"""Finding the layers of a model that produce spatial maps, and resolving layer names."""

from __future__ import annotations

import difflib
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
        if isinstance(model, ScriptedModel):
            shapes = {name: tuple(t.shape) for name, t in model.outputs(probe)[1].items()}
            types = {name: model.layer_type(name) for name in shapes}
            calls = {name: model.layer_calls(name) for name in shapes}
        else:
            shapes, types, calls = _hooked_shapes(model, probe)
    found = []
    for name, shape in shapes.items():
        layout = spatial_layout(shape, (height, width))
        if layout is not None and layout.grid[0] * layout.grid[1] > 1:
            channels = shape[1] if layout.kind == "nchw" else shape[-1]
            found.append(LayerInfo(name, types[name], (channels, *layout.grid), layout.kind, calls[name]))
    return found


def _hooked_shapes(
    model: nn.Module, probe: torch.Tensor
) -> tuple[dict[str, tuple[int, ...]], dict[str, str], dict[str, int]]:
    """Each submodule's output shape (in order of its last call), class name and number of calls, from hooks.

    Modules whose last call handed on its input untouched (the same tensor, not changed in place)
    are left out of the shapes.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    calls: dict[str, int] = {}

    def recorder(name: str) -> Any:
        def record(_module: nn.Module, args: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            shapes.pop(name, None)  # re-insert: dict order becomes order of last call
            if not isinstance(output, torch.Tensor):
                return
            given = args[0] if args and isinstance(args[0], torch.Tensor) else None
            if given is output and versions.get(name) == output._version:
                return  # a pass-through: its map would be its input's
            shapes[name] = tuple(output.shape)

        return record

    versions: dict[str, int] = {}

    def version_of(name: str) -> Any:
        def note(_module: nn.Module, args: Any) -> None:
            if args and isinstance(args[0], torch.Tensor):
                versions[name] = args[0]._version

        return note

    named = [(name, module) for name, module in model.named_modules() if name]
    with ExitStack() as stack:
        for name, module in named:
            stack.enter_context(forward_hook(module, recorder(name), before=version_of(name), with_args=True))
        model(probe)
    return shapes, {name: type(module).__name__ for name, module in named}, calls


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule called ``name`` (of a :class:`ScriptedModel`: the scripted submodule).

    Raises:
        ValueError: no such module (the message suggests the closest real names), or a TorchScript
            submodule whose output the compiled graph cannot give.
    """
    if isinstance(model, ScriptedModel):
        if name in model.layer_names:
            return model.submodule(name)
        if name and name in dict(model.scripted.named_modules()):
            raise ValueError(
                f"layer '{name}' is a submodule of this TorchScript model, but its output cannot be read from the "
                "compiled graph (it runs inside control flow that depends on the input, or its recorded module path "
                "could mean more than one submodule): choose a layer from list_layers()"
            )
        names = model.layer_names
    else:
        if name:
            try:
                return model.get_submodule(name)  # walks the path only: cheap on deep models
            except AttributeError:
                pass
        names = [n for n, _ in model.named_modules() if n]
    # A path's last steps ("15" for "_blocks.15", as a compiled graph once named it), then near spellings.
    ends = [n for n in names if n.endswith(f".{name}")] if name else []
    close = list(dict.fromkeys(ends + difflib.get_close_matches(name, names, n=5, cutoff=0.5)))[:5]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; see list_layers() for valid names"
    raise ValueError(f"unknown layer '{name}'{hint}")


def _require_eval(model: nn.Module) -> None:
    """Refuse a model in training mode: running it would change its state."""
    if model.training:
        raise ValueError("the model is in training mode; call model.eval() first")

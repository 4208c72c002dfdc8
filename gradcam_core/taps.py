"""Reading a layer's output during a forward pass: the one interface the engine uses for every model.

The engine never asks what kind of model it has. It asks :func:`taps_of` for the model's
:class:`LayerTaps` and calls that: which layers there are and what they output, the module
behind a name, one layer's output, and a forward pass with a :class:`Capture` at one layer.

- An eager ``nn.Module`` is read with forward hooks that last one call and see one thread
  (:class:`HookTaps`).
- A model that hooks cannot reach reads its own layers by subclassing :class:`LayerTaps`. A
  TorchScript graph does so (:class:`gradcam_core.torchscript.ScriptedModel`): it returns the
  layer's output from a rewritten graph, and hands it to :meth:`Capture.adopt`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gradcam_core.hooks import forward_hook
from gradcam_core.layout import Layout, spatial_layout

__all__ = ["Capture", "HookTaps", "LayerRecord", "LayerTaps", "layout_of", "taps_of"]


@dataclass(frozen=True, slots=True)
class LayerRecord:
    """What one dry forward pass saw of a layer.

    Attributes:
        shape: its output's shape, at its last call.
        type: the module's class name, e.g. ``"Conv2d"``.
        calls: how many times it ran in the pass.
    """

    shape: tuple[int, ...]
    type: str
    calls: int


def layout_of(output: Any, input_hw: tuple[int, int]) -> Layout:
    """How to read a layer's output as a map; a clear error when it is not one."""
    layout = spatial_layout(tuple(output.shape), input_hw) if isinstance(output, Tensor) else None
    if layout is None:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(
            f"the layer's output is {shape}, not a spatial map (a 4-D map or tokens on a grid): "
            "choose a layer from list_layers()"
        )
    return layout


@dataclass
class Capture:
    """The target layer's output from the last time it ran in one forward pass.

    Everything before the layer runs without autograd (in inference mode when ``fast``, else
    under ``no_grad``); at the layer, the hook switches recording on for the rest of the pass, so
    that backward runs only from the logits down to this layer. Autograd modes are per thread.
    A module that runs several times (one activation module reused for the stem and the head)
    is explained at its last call: with ``skip`` set to the number of calls before it, the hook
    lets those pass untouched and recording starts at the explained call. Without it, recording
    starts at the first call, which gives the same map at a higher cost.
    A model that reads its own layers hands the output and the copy the network consumed to
    :meth:`adopt` instead (its whole pass then records autograd).
    With ``connected`` (guided backpropagation, which needs gradients down to the input) the whole
    pass records autograd, and the layer's output stays part of the graph from the input.
    """

    fast: bool
    input_hw: tuple[int, int]
    skip: int = 0
    connected: bool = False
    seen: int = 0
    layout: Layout | None = None
    leaf: Tensor | None = None
    passed_on: Tensor | None = None
    clone_fn: Any = None
    _recording: Any = None

    def __call__(self, _module: nn.Module, output: Any) -> Tensor | None:
        """The forward hook: keep the output, and hand the network a recorded copy of it."""
        self.seen += 1
        if self.seen <= self.skip:
            return None  # an earlier call than the explained one: leave it, and autograd, alone
        self.layout = layout_of(output, self.input_hw)
        if self.fast and self._recording is None:
            self._recording = torch.inference_mode(False)  # also turns grad mode on, until release()
            self._recording.__enter__()
        torch.set_grad_enabled(True)
        if self.connected and output.requires_grad:
            self.leaf = output
        else:  # An inference tensor cannot join a graph: clone it into a normal one.
            self.leaf = (output.clone() if output.is_inference() else output.detach()).requires_grad_(True)
        # Hand the network a copy: an in-place op after the layer (VGG's and DenseNet's ReLU)
        # then rewrites the copy, never the leaf, and autograd stays valid.
        self.passed_on = self.leaf.clone()
        self.clone_fn = self.passed_on.grad_fn
        return self.passed_on

    def adopt(self, output: Tensor, passed_on: Tensor) -> None:
        """Take a layer output that the model read itself, and the copy the network consumed.

        ``passed_on`` was cloned from ``output`` and then possibly changed in place; its history
        leads back through that clone, which :meth:`target` needs to recognise.
        """
        self.seen += 1
        self.layout = layout_of(output, self.input_hw)
        self.leaf, self.passed_on = output, passed_on
        fn = passed_on.grad_fn
        while fn is not None and not (
            type(fn).__name__.startswith("CloneBackward") and fn.next_functions[0][0] is output.grad_fn
        ):
            fn = fn.next_functions[0][0] if fn.next_functions else None
        self.clone_fn = fn

    def release(self) -> None:
        """Leave the recording mode the hook entered (call once the forward pass has ended)."""
        if self._recording is not None:
            self._recording.__exit__(None, None, None)
            self._recording = None

    def target(self) -> tuple[Tensor, Layout]:
        """The tensor whose activations and gradients define the map.

        This is the layer's output, except when the network rectifies that output in place
        straight away (``F.relu(x, inplace=True)`` or ``nn.ReLU(inplace=True)``): then the
        rectified tensor is what the rest of the network consumes, and it is used instead.
        So DenseNet's ``features.norm5`` gives the map of ReLU(norm5), which is what the
        classifier pools, and a VGG conv gives the same map as the ReLU that follows it.
        """
        if self.leaf is None or self.passed_on is None or self.layout is None:
            raise RuntimeError("the target layer has not run yet")
        fn = self.passed_on.grad_fn
        if (
            fn is not None
            and type(fn).__name__.startswith(("ReluBackward", "ThresholdBackward"))
            and fn.next_functions[0][0] is self.clone_fn
        ):
            return self.passed_on, self.layout
        return self.leaf, self.layout


class LayerTaps(ABC):
    """How the engine reaches a model's layers.

    Implementations keep nothing from one call that another call, in this thread or another,
    could see: many sessions share one model.
    """

    @property
    @abstractmethod
    def layer_names(self) -> list[str]:
        """The names a layer may be looked up by (for suggestions when a name is wrong)."""

    @abstractmethod
    def layer_module(self, name: str) -> nn.Module | None:
        """The module called ``name``, or ``None`` when there is none.

        Raises:
            ValueError: the module exists but its output cannot be read (say why, and what to do).
        """

    @abstractmethod
    def probe(self, x: Tensor) -> dict[str, LayerRecord]:
        """Run ``x`` once and record every readable layer, in the order of their last calls.

        A layer that hands on its input untouched is left out: its map is its input's.
        """

    @abstractmethod
    def read(self, x: Tensor, layer: str) -> Any:
        """The output of ``layer`` (a name :meth:`layer_module` knows) on ``x``, without autograd."""

    @abstractmethod
    def run_capturing(self, x: Tensor, layer: str, capture: Capture) -> Any:
        """Run ``x`` once with ``capture`` at ``layer``; return the model's output.

        Afterwards, ``capture`` holds the layer's output, part of the autograd graph of the output.
        """


class HookTaps(LayerTaps):
    """An eager module's layers, read with forward hooks that last one call and see one thread."""

    def __init__(self, model: nn.Module) -> None:
        self._model = model

    @property
    def layer_names(self) -> list[str]:
        """Every named submodule."""
        return [name for name, _ in self._model.named_modules() if name]

    def layer_module(self, name: str) -> nn.Module | None:
        """The submodule at the dotted path ``name``, or ``None``."""
        if not name:
            return None  # the model itself is no layer
        try:
            return self._model.get_submodule(name)  # walks the path only: cheap on deep models
        except AttributeError:
            return None

    def probe(self, x: Tensor) -> dict[str, LayerRecord]:
        """A hook on every submodule records its calls and its last output's shape."""
        shapes: dict[str, tuple[int, ...]] = {}
        calls: dict[str, int] = {}
        versions: dict[str, int] = {}

        def recorder(name: str) -> Any:
            def record(_module: nn.Module, args: Any, output: Any) -> None:
                calls[name] = calls.get(name, 0) + 1
                shapes.pop(name, None)  # re-insert: dict order becomes order of last call
                if not isinstance(output, Tensor):
                    return
                given = args[0] if args and isinstance(args[0], Tensor) else None
                if given is output and versions.get(name) == output._version:
                    return  # a pass-through: its map would be its input's
                shapes[name] = tuple(output.shape)

            return record

        def version_of(name: str) -> Any:
            def note(_module: nn.Module, args: Any) -> None:
                if args and isinstance(args[0], Tensor):
                    versions[name] = args[0]._version

            return note

        named = [(name, module) for name, module in self._model.named_modules() if name]
        with ExitStack() as stack:
            for name, module in named:
                stack.enter_context(forward_hook(module, recorder(name), before=version_of(name), with_args=True))
            self._model(x)
        types = {name: type(module).__name__ for name, module in named}
        return {name: LayerRecord(shape, types[name], calls[name]) for name, shape in shapes.items()}

    def read(self, x: Tensor, layer: str) -> Any:
        """One pass in inference mode, with a hook that keeps the layer's output."""
        seen: dict[str, Any] = {}
        module = self._model.get_submodule(layer)
        with forward_hook(module, lambda _m, out: seen.__setitem__("out", out)), torch.inference_mode():
            self._model(x)
        return seen.get("out")

    def run_capturing(self, x: Tensor, layer: str, capture: Capture) -> Any:
        """The capture is the layer's forward hook; the pass before it runs without autograd, unless connected."""
        module = self._model.get_submodule(layer)
        mode = torch.enable_grad() if capture.connected else torch.inference_mode() if capture.fast else torch.no_grad()
        with forward_hook(module, capture), mode:
            try:
                return self._model(x)
            finally:
                capture.release()


def taps_of(model: nn.Module) -> LayerTaps:
    """The model's own taps when it reads its layers itself, else forward hooks on its modules."""
    return model if isinstance(model, LayerTaps) else HookTaps(model)

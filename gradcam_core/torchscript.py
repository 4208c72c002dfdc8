"""TorchScript models: reading a layer's output from the compiled graph, where hooks cannot go.

A ScriptModule loaded with ``torch.jit.load`` runs its own compiled graph, so Python forward hooks
cannot be registered on its submodules. Instead, :class:`ScriptedModel` copies the graph, inlines
every submodule call, and finds each submodule's output by the module path that TorchScript
records on every node. For a target layer it builds a graph that also returns that output, plus
a copy of it that the rest of the network consumes, exactly as the eager engine hands the network
a copy: the layer's own values stay intact when later ops work in place, and autograd can still
differentiate the logits with respect to them.

A node's recorded module path names each call by the attribute it was reached through last, so a
block of a ``ModuleList`` appears as ``15(MBConvBlock)``, not ``_blocks.15``. The real paths are
found by walking the compiled code's own calls (each ``prim::CallMethod`` and the chain of
attributes that reaches its module), so layer names are exactly those of ``named_modules()``; a
recorded step that could mean two different submodules is left out rather than guessed.

Only submodule calls at the top level of ``forward`` are found; a module called inside
data-dependent control flow (an ``if`` on a tensor's value, a loop) is not offered. Conditions on
the model's own settings (``self.training``, flags such as DenseNet's ``memory_efficient``) are
folded to constants first, so the branches they guard disappear.
"""

from __future__ import annotations

import functools
import re
import threading
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor, nn

from gradcam_core.taps import Capture, LayerRecord, LayerTaps

__all__ = ["ScriptedModel", "is_torchscript", "load_scripted"]

# One "name(Type)" step of a node's module path, as in "features(Sequential).norm5(BatchNorm2d)".
_STEP = re.compile(r"(\w+)\(([^()]*)\)")
# Steps that are method or function calls inside the current module, not submodules.
_NOT_SUBMODULES = ("SELF", "UNKNOWN_INSTANCE")
# The methods a module's call runs as forward hooks would see it (a traced module called twice has forward1).
_FORWARD = re.compile(r"forward\d*")
_SCALARS = (bool, int, float, str, type(None))


def is_torchscript(path: str | Path | IO[bytes]) -> bool:
    """Whether ``path`` (a file, or its bytes opened) is a TorchScript archive (``torch.jit.save``), not a state_dict.

    Both are ZIP files; only a TorchScript archive holds compiled code and ``constants.pkl``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_scripted(path: str | Path) -> torch.jit.ScriptModule:
    """Load a TorchScript archive on the CPU, in eval mode.

    Raises:
        ValueError: the file is not a TorchScript archive, or torch cannot read it.
    """
    name = Path(path).name
    if not is_torchscript(path):
        raise ValueError(
            f"'{name}' is not a TorchScript file (one saved with torch.jit.save or torch.jit.script(...).save): "
            "save your model that way, or upload a state_dict for a listed architecture instead"
        )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning)
            # torch leaves torch.jit.load unannotated, so the call is untyped.
            scripted: torch.jit.ScriptModule = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
            return scripted.eval()
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"'{name}' could not be loaded as TorchScript: {first}") from exc


@dataclass(frozen=True, slots=True)
class _Tap:
    """Where one submodule's output appears in the inlined graph: node index and output offset."""

    node: int
    offset: int
    type: str


class ScriptedModel(nn.Module, LayerTaps):
    """A TorchScript classifier that reads its own layers (:class:`gradcam_core.taps.LayerTaps`) from its graph.

    Layer names are the scripted module's own (``model.scripted.named_modules()`` without the
    prefix). The graph is analysed once, here; the graph for each target layer is built the first
    time that layer is explained and kept, under a lock, so sessions sharing the model are safe.

    Args:
        scripted: a loaded ``torch.jit.ScriptModule`` (see :func:`load_scripted`); put in eval mode.
    """

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.scripted = scripted
        self.eval()  # the settings folded below are eval mode's
        # The stub types forward as a plain Callable; on a ScriptModule it is a ScriptMethod, with a graph.
        graph = scripted.forward.graph.copy()  # type: ignore[attr-defined]
        torch._C._jit_pass_inline(graph)
        _fold_settings(graph, scripted)
        self._graph = graph
        calls = _CallTree(scripted)
        self._taps = _find_taps(graph, calls.modules)
        self._calls = {name: calls.runs.get(name, 1) for name in self._taps}
        self._functions: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def layer_names(self) -> list[str]:
        """Every submodule whose output the graph can return, in the order their outputs are made."""
        return list(self._taps)

    def layer_module(self, name: str) -> nn.Module | None:
        """The scripted submodule of a listed layer; ``None`` for a name that is no submodule.

        Raises:
            ValueError: a submodule whose output the compiled graph cannot give.
        """
        if name in self._taps:
            module: nn.Module = functools.reduce(getattr, name.split("."), self.scripted)
            return module
        if name and name in dict(self.scripted.named_modules()):
            raise ValueError(
                f"layer '{name}' is a submodule of this TorchScript model, but its output cannot be read from the "
                "compiled graph (it runs inside control flow that depends on the input, or its recorded module path "
                "could mean more than one submodule): choose a layer from list_layers()"
            )
        return None

    def forward(self, x: Tensor) -> Any:
        """The scripted model's own output."""
        return self.scripted(x)

    def probe(self, x: Tensor) -> dict[str, LayerRecord]:
        """Run once, returning every tapped submodule's output; each is recorded, in the order it is made."""
        graph = self._graph.copy()
        values = _values_at(graph, self._taps.values())
        for value in values:
            graph.registerOutput(value)
        with torch.jit.optimized_execution(False):  # type: ignore[attr-defined]  # public, but not in torch.jit.__all__
            outputs = _compile(graph)(self.scripted._c, x)[1:]
        return {
            name: LayerRecord(tuple(out.shape), tap.type, self._calls[name])
            for (name, tap), out in zip(self._taps.items(), outputs, strict=True)
        }

    def read(self, x: Tensor, layer: str) -> Any:
        """The layer's output, from the graph built for it, without autograd."""
        with torch.no_grad(), torch.jit.optimized_execution(False):  # type: ignore[attr-defined]  # as in probe()
            return self._function(layer)(self.scripted._c, x)[1]

    def run_capturing(self, x: Tensor, layer: str, capture: Capture) -> Any:
        """Run once with autograd on; hand ``capture`` the layer's output and the copy the network used.

        The copy is what later layers consumed (and may have changed in place); the layer's output
        itself is untouched. Everything records autograd, the input too, so that every layer is
        part of the graph.
        """
        # The plain interpreter (a per-thread setting) runs op by op, so autograd records exactly
        # what eager mode would; the optimising executor could fuse ops into differentiable subgraphs.
        with torch.enable_grad(), torch.jit.optimized_execution(False):  # type: ignore[attr-defined]  # as in probe()
            output, value, passed_on = self._function(layer)(self.scripted._c, x.detach().requires_grad_(True))
        capture.adopt(value, passed_on)
        return output

    def _function(self, layer: str) -> Any:
        """The compiled graph for ``layer``, built the first time it is asked for (under the lock)."""
        with self._lock:
            function = self._functions.get(layer)
            if function is None:
                function = self._functions[layer] = _compile(self._layer_graph(layer))
        return function

    def _layer_graph(self, layer: str) -> Any:
        """The graph that also returns ``layer``'s output and the copy the rest of the network reads."""
        graph = self._graph.copy()
        (value,) = _values_at(graph, [self._taps[layer]])
        with graph.insert_point_guard(value.node()):
            copy = graph.insert("aten::clone", [value])
        copy.node().moveAfter(value.node())
        value.replaceAllUsesAfterNodeWith(copy.node(), copy)
        graph.registerOutput(value)
        graph.registerOutput(copy)
        return graph


def _compile(graph: Any) -> Any:
    """A callable ``f(module, x) -> tuple`` for a graph with several outputs."""
    graph.makeMultiOutputIntoTuple()
    return torch._C._create_function_from_graph("gradcam_tap", graph)


class _CallTree:
    """The submodule calls of a scripted module's ``forward``, followed through its compiled code.

    Attributes:
        steps: ``(caller's path, step name, class name) -> callee paths``: a recorded module-path
            step such as ``15(MBConvBlock)`` under ``""`` names ``{"_blocks.15"}``.
        runs: how many times each submodule is called in one forward pass.
    """

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        self.steps: dict[tuple[str, str, str], set[str]] = {}
        self.runs: dict[str, int] = {}
        self._modules = dict(scripted.named_modules())
        self._hierarchies: dict[str, list[tuple[str, str]]] = {}
        self._visit("", "forward", depth=0)

    def _visit(self, path: str, method: str, depth: int) -> None:
        module = self._modules.get(path)
        if module is None or depth > 256 or method not in module._c._method_names():
            return
        graph = module._c._get_method(method).graph.copy()
        _fold_settings(graph, module)  # calls in branches the settings rule out are not calls
        self_value = next(graph.inputs()).unique()
        for node in graph.findAllNodes("prim::CallMethod"):
            chain, value = [], node.inputsAt(0)
            while value.node().kind() == "prim::GetAttr":
                chain.append(value.node().s("name"))
                value = value.node().input()
            if value.unique() != self_value:
                continue  # a module reached some other way: its recorded step cannot be placed
            if not chain:  # another method of the same module: recorded as SELF
                self._visit(path, node.s("name"), depth + 1)
                continue
            callee = ".".join([path, *reversed(chain)] if path else reversed(chain))
            type_name = getattr(node.inputsAt(0).type(), "name", str)()  # as the recorded path spells it
            self.steps.setdefault((path, chain[0], type_name), set()).add(callee)
            if _FORWARD.fullmatch(node.s("name")):
                self.runs[callee] = self.runs.get(callee, 0) + 1
            self._visit(callee, node.s("name"), depth + 1)

    def modules(self, node: Any) -> list[tuple[str, str]]:
        """The submodules a node runs in, outermost first, as (``named_modules()`` path, class name).

        For example ``[("_blocks.15", "MBConvBlock"), ("_blocks.15._bn1", "BatchNorm2d")]``. The
        list stops before a recorded step that does not name exactly one submodule.
        """
        hierarchy = node.getModuleHierarchy()
        found = self._hierarchies.get(hierarchy)
        if found is None:
            found = self._hierarchies[hierarchy] = self._resolve(hierarchy)
        return found

    def _resolve(self, hierarchy: str) -> list[tuple[str, str]]:
        path, found = "", []
        for name, type_name in _STEP.findall(hierarchy):
            if name in _NOT_SUBMODULES:
                continue
            callees = self.steps.get((path, name, type_name), set())
            if len(callees) != 1:
                break
            (path,) = callees
            found.append((path, type_name))
        return found


def _fold_settings(graph: Any, module: torch.jit.ScriptModule) -> None:
    """Read the modules' scalar settings (flags, ``training``) as constants; drop the branches they decide."""
    owners: dict[int, Any] = {next(graph.inputs()).unique(): module}
    for node in graph.findAllNodes("prim::GetAttr"):
        owner = owners.get(node.input().unique())
        if owner is None:
            continue
        value = getattr(owner, node.s("name"))
        if isinstance(value, nn.Module):
            owners[node.output().unique()] = value
        elif isinstance(value, _SCALARS):
            with graph.insert_point_guard(node):
                constant = graph.insertConstant(value)
            node.output().replaceAllUsesWith(constant)
    torch._C._jit_pass_constant_propagation(graph)
    torch._C._jit_pass_dce(graph)


def _find_taps(graph: Any, modules_of: Callable[[Any], list[tuple[str, str]]]) -> dict[str, _Tap]:
    """Each submodule's output: the last tensor made inside it that is read outside it.

    ``modules_of(node)`` gives the submodules a node runs in (see :meth:`_CallTree.modules`).
    Ordered as the outputs are made, inner modules before the modules that contain them (as
    forward hooks would fire).
    """
    tensor = torch._C.TensorType.get()
    taps: dict[str, _Tap] = {}
    for index, node in enumerate(graph.nodes()):
        modules = modules_of(node)
        for offset, value in enumerate(node.outputs()):
            if not modules or not value.type().isSubtypeOf(tensor):
                continue
            readers = [{path for path, _ in modules_of(use.user)} for use in value.uses()]
            for path, type_name in reversed(modules):
                if any(path not in inside for inside in readers):
                    taps.pop(path, None)  # re-insert: the order becomes the order of the last output
                    taps[path] = _Tap(index, offset, type_name)
    return taps


def _values_at(graph: Any, taps: Any) -> list[Any]:
    """The values the taps point at, in a copy of the analysed graph (copies keep node order)."""
    nodes = list(graph.nodes())
    return [nodes[tap.node].outputsAt(tap.offset) for tap in taps]

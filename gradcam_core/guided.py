"""Guided backpropagation (Springenberg et al., 2015) and Guided Grad-CAM (Selvaraju et al., 2017).

Guided backpropagation is the gradient of a class logit with respect to the input pixels, with
every ReLU passing back only positive gradients (and, as a ReLU does, only where its input was
positive). Guided Grad-CAM multiplies it by the Grad-CAM map upsampled to the input: the paper's
high-resolution, class-discriminative view.

The model is never changed: no module is swapped and nothing is patched. For the length of one
call, and only for the calling thread (:func:`gradcam_core.hooks.forward_hook`), each ``nn.ReLU``
and ``nn.ReLU6`` module's output gets a gradient hook of its own (on that call's tensor, so no
other pass or thread meets it) that keeps the positive part of the gradient arriving there; the
module's own backward then masks it where its input was not positive (or, for ReLU6, not below 6).
In-place ReLUs work the same way: a tensor hook holds the gradient of the value the module
returned, even when a later op changes that tensor in place. Nothing is copied. A ReLU applied as
a function (``F.relu`` in ``forward``) has no module to hook: such calls are counted during the
pass and reported in :attr:`Guided.warnings`, as Captum warns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from gradcam_core.hooks import forward_hook
from gradcam_core.logits import model_logits

__all__ = ["FunctionalRelus", "Guidance", "Guided", "guided_backprop", "guided_gradcam", "guided_relus"]

_RELU_MODULES = (nn.ReLU, nn.ReLU6)
_RELU_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset(
    {F.relu, F.relu_, F.relu6, torch.relu, torch.relu_, Tensor.relu, Tensor.relu_}
)


class Guidance:
    """One call's guidance: whether its ReLUs guide the gradients now, and how many ReLU modules ran.

    Made per call, never shared: the engine turns :attr:`on` off for the backward pass to the
    target layer (Grad-CAM's own gradients are plain ones) and on for the pass to the input.
    """

    def __init__(self) -> None:
        self.on = True
        self.calls = 0


class FunctionalRelus(TorchFunctionMode):
    """Counts the ReLU function calls of a forward pass (modules' calls included)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in _RELU_FUNCTIONS or getattr(func, "__name__", "") in ("relu", "relu_", "relu6", "hardtanh"):
            self.calls += 1
        return func(*args, **(kwargs or {}))

    def notes(self, guidance: Guidance) -> list[str]:
        """What the guidance of a pass counted by this mode could not reach."""
        functional = self.calls - guidance.calls
        if functional > 0:
            return [
                f"{functional} ReLU call(s) in this model are made as functions (F.relu in forward), not modules: "
                "guided backpropagation cannot guide them, so the map is partly a plain gradient there"
            ]
        if guidance.calls == 0:
            return ["this model has no ReLU: guided backpropagation is its plain input gradient"]
        return []


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[Guidance]:
    """Inside the block, this thread's passes through ``model`` back-propagate guided through its ReLUs.

    Yields the call's :class:`Guidance`, which counts the ReLU module calls made; the hooks are
    removed when the block ends, whether it succeeds or raises.
    """
    guidance = Guidance()

    def positive(grad: Tensor) -> Tensor | None:
        return grad.clamp(min=0) if guidance.on else None

    def guide(_module: nn.Module, output: Tensor) -> None:
        guidance.calls += 1
        if output.requires_grad:  # a hook on this call's own tensor: no other pass or thread can meet it
            output.register_hook(positive)  # type: ignore[no-untyped-call]

    with ExitStack() as stack:
        for module in model.modules():
            if isinstance(module, _RELU_MODULES):
                stack.enter_context(forward_hook(module, guide))
        yield guidance


@dataclass(frozen=True)
class Guided:
    """Guided backpropagation's result. Tensors are detached and on the CPU.

    Attributes:
        gradients: [N, C, H, W] the guided gradients at the input, signed.
        classes: [N] the class each row explains.
        logits: [N, num_classes] the model's output.
        warnings: notes on what the guidance could not reach (ReLUs applied as functions).
    """

    gradients: Tensor
    classes: Tensor
    logits: Tensor
    warnings: tuple[str, ...] = field(default=())


def guided_backprop(model: nn.Module, inputs: Tensor, classes: Tensor | None = None) -> Guided:
    """Guided backpropagation of each input's class (default: its prediction) to the input pixels.

    One forward and one backward pass to the input; no parameter gradient is computed, and the
    model is left as it was. Safe when several threads share ``model``.
    """
    x = inputs.detach().clone().requires_grad_(True)
    counter = FunctionalRelus()
    with guided_relus(model) as guidance, torch.enable_grad(), counter:
        logits = model_logits(model, x)
    picked = logits.detach().argmax(1) if classes is None else classes.to(logits.device).long()
    (grads,) = torch.autograd.grad(logits.gather(1, picked[:, None]).sum(), x)
    notes = tuple(counter.notes(guidance))
    return Guided(grads.detach().cpu(), picked.detach().cpu(), logits.detach().cpu(), notes)


def guided_gradcam(guided: Tensor, cam: Tensor) -> Tensor:
    """Guided Grad-CAM: guided gradients [N, C, H, W] times Grad-CAM maps [N, h, w] upsampled to H × W."""
    size = guided.shape[-2:]
    up = F.interpolate(cam[:, None].float(), size=size, mode="bilinear", align_corners=False)
    return guided * up

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
a function (``F.relu`` in ``forward``) has no module to hook: such calls are counted in the
recorded graph and reported in :attr:`Guided.warnings`, as Captum warns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradcam_core.hooks import forward_hook
from gradcam_core.logits import model_logits
from gradcam_core.taps import LayerTaps

__all__ = [
    "Guidance",
    "Guided",
    "can_guide",
    "guided_backprop",
    "guided_gradcam",
    "guided_relus",
    "input_layout",
    "unguided_notes",
]

_RELU_MODULES = (nn.ReLU, nn.ReLU6)
#: The autograd nodes a rectifier leaves in the graph, module or function alike.
_RELU_NODES = frozenset({"ReluBackward0", "ReluBackward1", "HardtanhBackward0", "HardtanhBackward1", "Relu6Backward0"})


class Guidance:
    """One call's guidance: whether its ReLUs guide the gradients now, and how many ReLU module calls it hooked.

    Made per call, never shared: the engine turns :attr:`on` off for the backward pass to the
    target layer (Grad-CAM's own gradients are plain ones) and on for the pass to the input.
    """

    def __init__(self) -> None:
        self.on = True
        self.calls = 0


def unguided_notes(output: Tensor, guidance: Guidance) -> list[str]:
    """What the guidance of the pass that made ``output`` could not reach: ReLUs applied as functions.

    The recorded graph is walked once from ``output``: every rectifier left a node in it, and each
    ReLU module call that the guidance hooked is one of them, so the rest were made as functions
    (``F.relu`` in a ``forward``), where no hook can reach.
    """
    seen: set[int] = set()
    stack = [output.grad_fn]
    relus = 0
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        relus += type(node).__name__ in _RELU_NODES
        stack.extend(edge[0] for edge in node.next_functions)
    functional = relus - guidance.calls
    if functional > 0:
        return [
            f"{functional} ReLU call(s) in this model are made as functions (F.relu in forward), not modules: "
            "guided backpropagation cannot guide them, so the map is partly a plain gradient there"
        ]
    if guidance.calls == 0:
        return ["this model has no ReLU: guided backpropagation is its plain input gradient"]
    return []


def can_guide(model: nn.Module) -> bool:
    """Whether guided backpropagation can reach ``model``'s ReLUs: an eager module, not a TorchScript graph."""
    return not isinstance(model, LayerTaps)


def input_layout(model: nn.Module) -> torch.memory_format:
    """The memory layout in which a backward to the input pixels runs fastest through ``model``.

    Depthwise convolutions (MobileNet and EfficientNet blocks) back-propagate much faster on the
    CPU with a channels-last input: on EfficientNet-Lite0 a guided backward costs 2.35× a forward
    that way against 2.84× with a contiguous one (``python -m bench.deeper``). Dense convolutions
    (ResNet-50) are slower with a channels-last input and contiguous weights (2.65× against 2.38×),
    so every other model keeps the contiguous layout. Only the input's copy changes; the model's
    weights are never touched.
    """
    depthwise = any(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules())
    return torch.channels_last if depthwise else torch.contiguous_format


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
        if output.requires_grad:  # a hook on this call's own tensor: no other pass or thread can meet it
            guidance.calls += 1
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
    x = inputs.detach().clone(memory_format=input_layout(model)).requires_grad_(True)
    with guided_relus(model) as guidance, torch.enable_grad():
        logits = model_logits(model, x)
    picked = logits.detach().argmax(1) if classes is None else classes.to(logits.device).long()
    (grads,) = torch.autograd.grad(logits.gather(1, picked[:, None]).sum(), x)
    notes = tuple(unguided_notes(logits, guidance))
    return Guided(grads.detach().cpu(), picked.detach().cpu(), logits.detach().cpu(), notes)


def guided_gradcam(guided: Tensor, cam: Tensor) -> Tensor:
    """Guided Grad-CAM: guided gradients [N, C, H, W] times Grad-CAM maps [N, h, w] upsampled to H × W."""
    size = guided.shape[-2:]
    up = F.interpolate(cam[:, None].float(), size=size, mode="bilinear", align_corners=False)
    return guided * up

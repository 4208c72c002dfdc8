"""The engine: one forward pass, batched gradients, and a CAM per input and class."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.graph import GradientEdge

from gradcam_core.blocked_mm import BackwardMatmul, worth_rerouting
from gradcam_core.guided import Guidance, can_guide, guided_relus, input_layout, unguided_notes
from gradcam_core.hooks import model_device
from gradcam_core.layers import LayerInfo, _require_eval, resolve_layer
from gradcam_core.logits import find_logits
from gradcam_core.methods import METHODS, Method, eigencam, smoothing_label
from gradcam_core.methods import eigen_smooth as eigen
from gradcam_core.scorecam import Progress, scorecam
from gradcam_core.taps import Capture, taps_of

__all__ = ["CamResult", "compute_cam", "compute_cams", "find_logits"]

Classes = Sequence[int] | Sequence[Sequence[int]] | Tensor | None


@dataclass(frozen=True)
class CamResult:
    """What :func:`compute_cam` found. All tensors are detached and on the CPU.

    Attributes:
        maps: [N, K, h, w] float32, non-negative, at the layer's resolution, not normalised.
        classes: [N, K] the class each map explains.
        logits: [N, num_classes] the model's raw output.
        layer: the target layer's name.
        method: the method's name (a key of :data:`gradcam_core.METHODS`).
        warnings: plain-language notes on maps that would otherwise mislead, such as a layer that
            receives no gradient or a map that is zero everywhere.
        contrast: [N, K] the classes each map was contrasted with ("why A rather than B"), if any.
        counterfactual: whether the maps show evidence against the classes.
        guided: for Guided Grad-CAM, [N, K, C, H, W] the guided backpropagation of each map's
            score to the input pixels, signed (:func:`gradcam_core.guided.guided_gradcam` multiplies
            it by the upsampled map); else ``None``.
        smoothing: the smoothing applied to these maps, in words with its cost ("none"; see
            :func:`gradcam_core.methods.smoothing_label`).
    """

    maps: Tensor
    classes: Tensor
    logits: Tensor
    layer: str
    method: str
    warnings: tuple[str, ...] = field(default=())
    contrast: Tensor | None = None
    counterfactual: bool = False
    guided: Tensor | None = None
    smoothing: str = "none"

    @property
    def probabilities(self) -> Tensor:
        """Softmax of the logits, [N, num_classes]."""
        return torch.softmax(self.logits, dim=1)


def compute_cam(
    model: nn.Module,
    inputs: Tensor,
    layer: str | LayerInfo,
    classes: Classes = None,
    method: str = "gradcam",
    *,
    contrast: Classes = None,
    counterfactual: bool = False,
    batch_size: int = 32,
    progress: Progress | None = None,
    eigen_smooth: bool = False,
) -> CamResult:
    """Explain a batch of images with a class activation map at one layer.

    For gradient and activation methods the model is run once, and again only where the first
    run cannot serve: a layer whose graph after it needs a tensor made before it (the
    inference-mode shortcut then gives way to ``no_grad``), or a layer that ran fewer times than
    its ``LayerInfo`` said. Score-CAM adds its masked forward passes (see
    :mod:`gradcam_core.scorecam`). For gradient methods, the K class logits are differentiated
    with respect to the layer's activations in one batched backward pass that stops at the layer:
    no parameter gradient is computed. Guided Grad-CAM records the whole pass and adds one
    backward pass to the input per class, guided through the ReLUs (see :mod:`gradcam_core.guided`).
    The model is left exactly as it was (no hooks, no ``.grad``, the same flags and mode), and
    concurrent calls from several threads on one model are safe.

    Args:
        model: a classifier in eval mode returning logits [N, num_classes].
        inputs: preprocessed images [N, C, H, W]; moved to the model's device.
        layer: the target layer's name, or its :class:`LayerInfo` from
            :func:`gradcam_core.list_layers`: that also says how many times the layer runs, so a
            module called more than once records autograd from its last (explained) call only.
            The maps are the same either way.
        classes: ``None`` explains each input's own top-1 class (K = 1); a list of K class
            indices explains those classes for every input; an [N, K] nested list or tensor
            gives each input its own classes.
        method: a key of :data:`gradcam_core.METHODS`.
        contrast: "why A rather than B": class indices shaped like ``classes``; each map then
            explains the logit difference ``logit[A] - logit[B]`` (gradient methods only).
        counterfactual: explain where the evidence argues *against* each class, by negating the
            gradients (the Grad-CAM paper's counterfactual explanations; gradient methods only).
        batch_size: the most masked images per forward pass, for Score-CAM (it times smaller
            batches too and keeps the fastest).
        progress: for Score-CAM, called as ``progress(done, total)`` with the masked passes done;
            it may raise to stop the run (see :func:`gradcam_core.scorecam.scorecam`).
        eigen_smooth: for gradient methods, keep only the first principal component of the
            weighted activations (:func:`gradcam_core.methods.eigen_smooth`); no extra pass.

    Returns:
        A :class:`CamResult` on the CPU.

    Raises:
        ValueError: an unknown method or layer, bad input shape, out-of-range class, a model in
            training mode or one that does not return a logits tensor.

    Example:
        >>> result = compute_cam(model, batch, "layer4", classes=[281, 285])
        >>> result.maps.shape  # [N, 2, 7, 7]
    """
    found = compute_cams(
        model, inputs, layer, classes, (method,), contrast=contrast, counterfactual=counterfactual,
        batch_size=batch_size, progress=progress, eigen_smooth=eigen_smooth,
    )  # fmt: skip
    return found[method]


def compute_cams(
    model: nn.Module,
    inputs: Tensor,
    layer: str | LayerInfo,
    classes: Classes = None,
    methods: Sequence[str] = ("gradcam",),
    *,
    contrast: Classes = None,
    counterfactual: bool = False,
    batch_size: int = 32,
    progress: Progress | None = None,
    eigen_smooth: bool = False,
) -> dict[str, CamResult]:
    """Several methods' maps at one layer, sharing one forward pass and one backward pass.

    Every gradient method combines the same activations and gradients, and Eigen-CAM reads the
    same activations, so a grid of them costs about what one Grad-CAM costs. Score-CAM adds its
    masked passes; Guided Grad-CAM makes the shared pass record the whole graph, and adds its
    backward passes to the input. The arguments are those of :func:`compute_cam`, with
    ``methods`` for its ``method``; the result has one :class:`CamResult` per method, by name.
    """
    specs = [_method(m) for m in dict.fromkeys(methods)]
    if not specs:
        raise ValueError("choose at least one method")
    if (contrast is not None or counterfactual) and (bad := [s.label for s in specs if s.combine is None]):
        raise ValueError(f"contrastive and counterfactual maps need a gradient method, not {', '.join(bad)}")
    _require_eval(model)
    if not isinstance(inputs, Tensor) or inputs.dim() != 4:
        shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"`inputs` must be a float tensor [N, C, H, W], got {shape}")
    guided = any(s.kind == "guided" for s in specs)
    if guided and not can_guide(model):
        raise ValueError(
            "Guided Grad-CAM needs an eager PyTorch model, whose ReLU modules it can guide: a TorchScript "
            "graph has none to reach; use Grad-CAM here, or load the model as a state dict with its architecture"
        )
    info, layer = layer, layer.name if isinstance(layer, LayerInfo) else layer
    skip = info.calls - 1 if isinstance(info, LayerInfo) else 0
    resolve_layer(model, layer)
    device = model_device(model)
    notes: list[str] = []  # on every method's maps
    guide_notes: list[str] = []  # on Guided Grad-CAM's
    found: dict[str, Tensor] = {}
    pixels: Tensor | None = None
    with ExitStack() as stack:
        if torch.is_inference_mode_enabled():
            stack.enter_context(torch.inference_mode(False))
        x = inputs.detach().to(device=device, dtype=torch.float32)
        if x.is_inference():
            x = x.clone()  # inference tensors cannot take part in autograd
        guidance: Guidance | None = None
        if guided:
            x = x.detach().clone(memory_format=input_layout(model)).requires_grad_(True)
            guidance = stack.enter_context(guided_relus(model))
            capture, logits = _forward(model, x, layer, fast=False, skip=skip, connected=True)
        else:
            try:
                capture, logits = _forward(model, x, layer, fast=True, skip=skip)
            except RuntimeError as exc:
                # A layer whose graph after it needs a tensor made before it (say, a multiplication by
                # an earlier activation) cannot use the inference-mode shortcut; no_grad always works.
                if "nference tensor" not in str(exc):
                    raise
                capture, logits = _forward(model, x, layer, fast=False, skip=skip)
        if capture.leaf is None and capture.seen:  # it ran fewer times than `info.calls` said
            capture, logits = _forward(model, x, layer, fast=False, connected=guided)
        if capture.leaf is None:
            raise ValueError(f"layer '{layer}' did not run in the forward pass: choose one from list_layers()")
        logits = find_logits(logits, x.shape[0])
        if guidance is not None:
            guide_notes.extend(unguided_notes(logits, guidance))
        targets = _resolve_classes(classes, logits.detach())
        against = None if contrast is None else _resolve_classes(contrast, logits.detach())
        if against is not None and against.shape != targets.shape:
            raise ValueError(
                f"`contrast` must give one class per explained class: {tuple(against.shape)} vs {tuple(targets.shape)}"
            )
        if against is not None and bool((against == targets).any()):
            raise ValueError("a class cannot be contrasted with itself: pick a different class B")
        target, layout = capture.target()
        acts = layout.to_map(target.detach())
        sign = -1.0 if counterfactual else 1.0
        if any(s.combine is not None for s in specs):  # the gradient methods
            if guidance is not None:
                guidance.on = False  # Grad-CAM's own gradients are plain ones
            grads = _class_gradients(model, logits, target, targets, against, sign, keep=guided)
            if layout.kind != "nchw":
                grads = torch.unflatten(layout.to_map(grads.flatten(0, 1)), 0, grads.shape[:2])
            for s in specs:
                if s.combine is not None:
                    found[s.name] = eigen(s.weigh(acts, grads)) if eigen_smooth and s.weigh else s.combine(acts, grads)
            # Zero gradients give zero maps with every combiner, so the small maps are checked first.
            if not grads.any() and not any(found[s.name].any() for s in specs if s.combine is not None):
                notes.append(
                    f"layer '{layer}' receives no gradient for the chosen class(es), so its map would be blank: "
                    "the logits do not depend on this output (a vision transformer's last block, for one, "
                    "passes on only its class token); try an earlier layer, such as a block's first LayerNorm"
                )
            del grads
        if guidance is not None:
            guidance.on = True
            pixels = _input_gradients(logits, x, targets, against, sign)
        for s in specs:
            if s.kind == "score":
                found[s.name] = scorecam(model, x.detach(), acts, targets, batch_size, progress)
            elif s.kind == "activation":
                found[s.name] = eigencam(acts, targets.shape[1])
        scores = logits.detach().float().cpu()
        del logits, target, capture  # free the graph before returning
    out = {}
    for s in specs:
        maps = found[s.name].permute(1, 0, 2, 3).float().cpu().contiguous()
        out[s.name] = CamResult(
            maps,
            targets.cpu(),
            scores,
            layer,
            s.name,
            (
                *((notes if s.combine is not None else []) or _zero_map_notes(maps, targets.cpu(), s.label)),
                *(guide_notes if s.kind == "guided" else ()),
                *((_NOT_SMOOTHED.format(s.label),) if eigen_smooth and s.combine is None else ()),
            ),
            None if against is None else against.cpu(),
            counterfactual,
            pixels if s.kind == "guided" else None,
            smoothing_label(eigen_smooth and s.weigh is not None, None),
        )
    return out


_NOT_SMOOTHED = "eigen smoothing applies to the gradient methods only: this {} map is not smoothed"


def _method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method '{name}': use one of {', '.join(METHODS)}")
    return METHODS[name]


def _input_gradients(logits: Tensor, x: Tensor, classes: Tensor, against: Tensor | None, sign: float) -> Tensor:
    """Guided gradients [N, K, C, H, W] of each chosen score with respect to the input ``x``, one pass per class."""
    start, seeds = _backward_start(logits, classes, against, sign)
    k = classes.shape[1]
    out = []
    for j in range(k):
        (grad,) = torch.autograd.grad(start, x, grad_outputs=seeds[j], retain_graph=j < k - 1, allow_unused=True)
        out.append(torch.zeros_like(x) if grad is None else grad)
    return torch.stack(out, dim=1).detach().float().cpu()


def _forward(
    model: nn.Module, x: Tensor, layer: str, fast: bool, skip: int = 0, connected: bool = False
) -> tuple[Capture, Any]:
    """Run the model once with ``layer`` captured; return the capture and the model's output.

    The first ``skip`` calls of the layer are left alone; ``connected`` records the whole pass
    (see :class:`gradcam_core.taps.Capture`).
    """
    capture = Capture(fast, (x.shape[-2], x.shape[-1]), skip, connected=connected)
    return capture, taps_of(model).run_capturing(x, layer, capture)


def _resolve_classes(classes: Classes, logits: Tensor) -> Tensor:
    """Turn the ``classes`` argument into an [N, K] index tensor, checking every index."""
    n, num_classes = logits.shape
    if classes is None:
        return logits.argmax(dim=1, keepdim=True)
    idx = torch.as_tensor(classes, dtype=torch.long, device=logits.device)
    if idx.dim() == 1:
        idx = idx[None].expand(n, -1)
    if idx.dim() != 2 or idx.shape[0] != n or idx.shape[1] == 0:
        raise ValueError(
            "`classes` must be a list of class indices or one list per input "
            f"({n} inputs), got shape {tuple(idx.shape)}"
        )
    bad = idx[(idx < 0) | (idx >= num_classes)]
    if bad.numel():
        raise ValueError(f"class index {int(bad[0])} is out of range: the model has classes 0 to {num_classes - 1}")
    return idx.contiguous()


def _class_gradients(
    model: nn.Module,
    logits: Tensor,
    target: Tensor,
    classes: Tensor,
    against: Tensor | None = None,
    sign: float = 1.0,
    keep: bool = False,
) -> Tensor:
    """Gradients [K, N, C, h, w] of each chosen score with respect to ``target``, in one backward pass.

    ``keep`` keeps the graph for another backward pass (Guided Grad-CAM's, to the input).

    The score is ``sign · (logit[class] - logit[against])``, or ``sign · logit[class]`` without
    ``against``. When the logits are a linear layer of the layer's global average (see
    :func:`_pooled_gradients`), the gradients are written down and no backward pass runs. Else the
    pass runs under :class:`BackwardMatmul` when the graph multiplies by a large weight matrix
    (see :func:`gradcam_core.blocked_mm.worth_rerouting`).
    """
    k = classes.shape[1]
    if not logits.requires_grad:  # the layer does not feed the logits at all
        return torch.zeros(k, *target.shape, dtype=target.dtype, device=target.device)
    start, seeds = _backward_start(logits, classes, against, sign)
    if (pooled := _pooled_gradients(start, target, seeds)) is not None:
        return pooled
    # TorchDispatchMode.__init__ is unannotated in torch, so the call is untyped.
    with BackwardMatmul() if worth_rerouting(model, start) else nullcontext():  # type: ignore[no-untyped-call]
        if k == 1:
            (grad,) = torch.autograd.grad(start, target, grad_outputs=seeds[0], retain_graph=keep, allow_unused=True)
            return torch.zeros_like(target)[None] if grad is None else grad[None]
        (grads,) = torch.autograd.grad(
            start, target, grad_outputs=seeds, is_grads_batched=True, retain_graph=keep, allow_unused=True
        )
    return torch.zeros(k, *target.shape, dtype=target.dtype, device=target.device) if grads is None else grads


def _backward_start(
    logits: Tensor, classes: Tensor, against: Tensor | None, sign: float
) -> tuple[Tensor | GradientEdge, Tensor]:
    """Where the backward pass starts, and the K gradients [K, N, ...] it starts with.

    In general that is the logits, with one-hot rows: row ``(j, n)`` selects logit ``classes[n, j]``
    of input ``n`` (inputs do not interact in an eval-mode network, so all N inputs share each of
    the K backward passes). When the logits come straight out of a linear layer (``x @ W.T + b``,
    as in nearly every classifier), the gradient of logit ``c`` with respect to ``x`` is ``W[c]``
    itself: the pass then starts at ``x`` with those rows, and skips the product of the one-hot
    rows with the whole weight matrix, which on a small network costs more than the rest of the
    backward pass (EfficientNet-Lite0's 1000 × 1280 matrix has left the cache by then).
    """
    fn = logits.grad_fn
    name = type(fn).__name__
    if fn is not None and name in ("AddmmBackward0", "MmBackward0") and getattr(fn, "_saved_alpha", 1) == 1:
        *bias, (node, output_nr), weight_edge = fn.next_functions  # addmm(bias, x, W.T) or mm(x, W.T)
        weight_t = getattr(fn, "_saved_mat2", None)  # [in, num_classes]: saved because x needs a gradient
        if (
            node is not None
            and all(_is_parameter(edge[0]) for edge in (*bias, weight_edge))  # nothing else leads back to the layer
            and isinstance(weight_t, Tensor)
            and weight_t.shape[1] == logits.shape[1]
        ):
            weight = weight_t.t().detach()  # the rows are seeds, not a path back to the parameters
            seeds = torch.unflatten(weight.index_select(0, classes.T.flatten()), 0, classes.T.shape)  # [K, N, in]
            if against is not None:
                seeds = seeds - torch.unflatten(weight.index_select(0, against.T.flatten()), 0, against.T.shape)
            return GradientEdge(node, output_nr), seeds if sign == 1.0 else seeds * sign
    seeds = torch.zeros(classes.shape[1], *logits.shape, dtype=logits.dtype, device=logits.device)
    seeds.scatter_(2, classes.T[:, :, None], sign)
    if against is not None:
        seeds.scatter_add_(2, against.T[:, :, None], torch.full_like(seeds[..., :1], -sign))
    return logits, seeds


# Autograd nodes that only reshape a tensor, keeping its elements in order: their gradient is a reshape too.
_RESHAPES = frozenset({"ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0", "SqueezeBackward1"})


def _pooled_gradients(start: Tensor | GradientEdge, target: Tensor, seeds: Tensor) -> Tensor | None:
    """The gradients [K, N, C, h, w] with respect to ``target`` [N, C, h, w] when the start is its spatial mean.

    That is the head of nearly every CNN classifier: global average pooling, a flatten, a linear
    layer (``start`` is then the linear layer's input, see :func:`_backward_start`). Each
    location's gradient is then the linear layer's row divided by h·w, so Grad-CAM's weights are
    the class's row of the classifier, as in CAM (Zhou et al., CVPR 2016). The recorded graph
    must show exactly that, node by node: reshapes, one mean over the last two dimensions of
    ``target``'s shape, then copies (the engine's own clone) down to ``target``. Anything else (a
    ReLU between ``target`` and the pooling, a mean over other dimensions) returns ``None``, and
    the backward pass runs. (DenseNet's in-place ReLU after ``norm5`` is no exception: ``target``
    is then the rectified tensor itself, see :meth:`gradcam_core.taps.Capture.target`.)
    """
    if not isinstance(start, GradientEdge) or target.dim() != 4:
        return None
    node: Any = start.node  # autograd nodes carry their saved values as untyped attributes
    while type(node).__name__ in _RESHAPES:
        node = node.next_functions[0][0]
    if type(node).__name__ != "MeanBackward1" or tuple(getattr(node, "_saved_self_sym_sizes", ())) != target.shape:
        return None
    dims = [d - 2**64 if d >= 2**63 else d for d in node._saved_dim]  # dims come back as unsigned integers
    if sorted(d % 4 for d in dims) != [2, 3]:
        return None
    n, c, h, w = target.shape
    if seeds.shape[1:] != (n, c):
        return None
    edge = node.next_functions[0]
    while type(edge[0]).__name__ == "CloneBackward0":
        edge = edge[0].next_functions[0]
    fn, output_nr = edge
    reaches = (
        fn is not None and getattr(fn, "variable", None) is target
        if target.grad_fn is None
        else fn is target.grad_fn and output_nr == target.output_nr
    )
    if not reaches:
        return None
    return (seeds / (h * w))[..., None, None].expand(*seeds.shape, h, w)


def _is_parameter(node: Any) -> bool:
    """Whether a gradient edge leads nowhere but to a leaf: no gradient (``None``), or a parameter, maybe transposed."""
    if node is not None and type(node).__name__ == "TBackward0":
        node = node.next_functions[0][0]
    return node is None or type(node).__name__ == "AccumulateGrad"


def _zero_map_notes(maps: Tensor, classes: Tensor, label: str) -> list[str]:
    """Say which maps are zero everywhere, rather than let them pass as "nothing found"."""
    blank = maps.flatten(2).amax(dim=2) <= 0
    empty = blank.nonzero().tolist() if blank.any() else []
    return [
        f"the {label} map of image {i} for class {int(classes[i, j])} is zero everywhere: all the evidence "
        "at this layer is negative for that class; try another layer or method"
        for i, j in empty
    ]

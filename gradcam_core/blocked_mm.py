"""Faster matrix products for the backward pass through large linear layers.

Backward through ``nn.Linear`` multiplies the incoming gradient, a few rows (K classes × N
images), by the full weight matrix, which is memory-bound: VGG19's first classifier layer is
4096 × 25088 (411 MB). Two properties of that product are used, both exact up to the order of
floating-point summation:

* **Few rows.** For short, wide products MKL's sgemm streams the whole weight matrix from memory
  once per row (five rows cost three times one). Multiplying by column blocks that fit in cache
  reads the weights once for all rows.
* **Zero gradient entries.** A ReLU before the layer's output zeroes the gradient wherever the
  unit was inactive (often most units), and a zero entry selects a weight row that contributes
  nothing. For a single row, a sparse product reads only the rows that matter.

The mode is thread-local and active only around the engine's own backward pass, and only for
models that have a matrix it could reroute (:func:`worth_rerouting`): every op of the backward
pass goes through it, which costs about a millisecond on small heads that gain nothing.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.graph import GradientEdge, Node
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["BackwardMatmul", "worth_rerouting"]

_MAX_ROWS = 64
_MIN_ELEMENTS = 1 << 22  # 16 MB of float32: smaller matrices already stay in cache
_BLOCK = 512  # columns per block: 4096 rows × 512 × 4 bytes = 8 MB
_MIN_ZEROS = 0.25  # the share of zero gradient entries from which the sparse product wins


class BackwardMatmul(TorchDispatchMode):  # type: ignore[no-untyped-call]  # torch's __init_subclass__ is unannotated
    """Route short-and-wide CPU ``mm`` calls to a cheaper exact product; leave every other op alone."""

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        """Intercept ``aten.mm`` when a cheaper product exists; run everything else unchanged."""
        if func is torch.ops.aten.mm.default and _short_and_wide(*args):
            a, b = args
            if a.shape[0] == 1:
                if float((a == 0).float().mean()) >= _MIN_ZEROS:
                    return torch.sparse.mm(a.to_sparse(), b)
            else:
                return torch.cat([torch.mm(a, b[:, i : i + _BLOCK]) for i in range(0, b.shape[1], _BLOCK)], dim=1)
        return func(*args, **(kwargs or {}))


def _short_and_wide(a: torch.Tensor, b: torch.Tensor) -> bool:
    """A few rows times a large, contiguous CPU matrix with many columns."""
    return (
        a.device.type == "cpu"
        and a.shape[0] <= _MAX_ROWS
        and b.shape[1] > 4 * _BLOCK
        and b.numel() >= _MIN_ELEMENTS
        and b.is_contiguous()
        and a.dtype == b.dtype == torch.float32
    )


def worth_rerouting(model: nn.Module, start: torch.Tensor | GradientEdge | None = None) -> bool:
    """Whether ``model`` has a weight matrix large enough for :class:`BackwardMatmul` to reroute its product.

    Backward through ``nn.Linear`` multiplies by the weight itself ([out, in], contiguous), so a
    model without such a parameter gives the mode nothing to do. Given ``start`` (the tensor or
    gradient edge the backward starts from), the products are read from its autograd graph instead
    (the right factor each matrix product saved): exact (a large matrix before the explained layer
    is never multiplied by, frozen or not) and, for a graph recorded only after that layer, much
    cheaper than walking the model's modules (a millisecond for EfficientNet-Lite0's 280, a tenth
    of its forward pass).
    """
    node = start.node if isinstance(start, GradientEdge) else None if start is None else start.grad_fn
    if node is None:
        return any(_large_matrix(p) for p in model.parameters())
    seen: set[Node] = set()
    stack: list[Node | None] = [node]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        factor = getattr(node, "_saved_mat2", None)  # mm, addmm (nn.Linear: the weight, transposed), bmm
        if isinstance(factor, torch.Tensor) and factor.dim() == 2 and _large_matrix(factor.t()):
            return True
        stack.extend(next_node for next_node, _ in node.next_functions)
    return False


def _large_matrix(p: torch.Tensor) -> bool:
    return p.dim() == 2 and p.numel() >= _MIN_ELEMENTS and p.shape[1] > 4 * _BLOCK

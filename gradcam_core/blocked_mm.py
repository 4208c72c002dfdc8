"""A cache-friendly matrix product for the backward pass through large linear layers.

Backward through ``nn.Linear`` multiplies the incoming gradient, a few rows (K classes × N
images), by the full weight matrix. For such short, wide products MKL's sgemm streams the whole
weight matrix from memory once per row: on VGG19's first classifier layer (4096 × 25088, 411 MB)
five rows cost three times as much as one. Multiplying by column blocks that fit in cache reads
the weights once for all rows. Results are identical: each output column is computed by the
same dot products.

The mode is thread-local and is active only around the engine's own backward pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["BlockedMatmul"]

_MIN_ROWS, _MAX_ROWS = 2, 64
_MIN_ELEMENTS = 1 << 22  # 16 MB of float32: smaller matrices already stay in cache
_BLOCK = 512  # columns per block: 4096 rows × 512 × 4 bytes = 8 MB


class BlockedMatmul(TorchDispatchMode):
    """Route short-and-wide CPU ``mm`` calls through column blocks; leave every other op alone."""

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        """Intercept ``aten.mm`` when blocking helps; run everything else unchanged."""
        if func is torch.ops.aten.mm.default and _worth_blocking(*args):
            a, b = args
            return torch.cat([torch.mm(a, b[:, i : i + _BLOCK]) for i in range(0, b.shape[1], _BLOCK)], dim=1)
        return func(*args, **(kwargs or {}))


def _worth_blocking(a: torch.Tensor, b: torch.Tensor) -> bool:
    """A few rows times a large, contiguous CPU matrix with many columns."""
    return (
        a.device.type == "cpu"
        and _MIN_ROWS <= a.shape[0] <= _MAX_ROWS
        and b.shape[1] > 4 * _BLOCK
        and b.numel() >= _MIN_ELEMENTS
        and b.is_contiguous()
        and a.dtype == b.dtype == torch.float32
    )

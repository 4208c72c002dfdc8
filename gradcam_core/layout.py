"""Reading a layer's output as a spatial map: channels-first, channels-last, or tokens.

CNNs give [N, C, h, w]. Swin gives channels-last [N, h, w, C]. Vision transformers give tokens
[N, T, C]: T patch tokens on an h × w grid, after any leading class (or distillation) tokens.
The layout is inferred from the output's shape and the input's size alone, never hard-coded:
a candidate grid must cover the input with a plausible, near-equal stride on both axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from torch import Tensor

__all__ = ["Layout", "spatial_layout"]


@dataclass(frozen=True, slots=True)
class Layout:
    """How to turn a layer's output into a map [N, C, h, w].

    Attributes:
        kind: ``"nchw"``, ``"nhwc"`` or ``"tokens"``.
        grid: the map's (h, w).
        extra: leading non-patch tokens dropped (the class token), for ``"tokens"``.
    """

    kind: Literal["nchw", "nhwc", "tokens"]
    grid: tuple[int, int]
    extra: int = 0

    def to_map(self, t: Tensor) -> Tensor:
        """The output ``t`` (or a gradient shaped like it) as [N, C, h, w]."""
        if self.kind == "nchw":
            return t
        if self.kind == "nhwc":
            return t.permute(0, 3, 1, 2)
        return t[:, self.extra :, :].reshape(t.shape[0], *self.grid, t.shape[-1]).permute(0, 3, 1, 2)


def _plausible(grid: tuple[int, int], input_hw: tuple[int, int]) -> bool:
    """A grid of h × w cells covers the input with similar strides along both axes."""
    (h, w), (height, width) = grid, input_hw
    if h < 1 or w < 1 or h > height or w > width:
        return False
    stride_h, stride_w = height / h, width / w
    return max(stride_h, stride_w) / min(stride_h, stride_w) <= 4 / 3


def spatial_layout(shape: tuple[int, ...], input_hw: tuple[int, int]) -> Layout | None:
    """The layout of an output of ``shape`` for an input of ``input_hw``, or None if it is not spatial."""
    if len(shape) == 4:
        if _plausible((shape[2], shape[3]), input_hw):
            return Layout("nchw", (shape[2], shape[3]))
        if _plausible((shape[1], shape[2]), input_hw):
            return Layout("nhwc", (shape[1], shape[2]))
        return Layout("nchw", (shape[2], shape[3]))  # an unusual map: read it channels-first
    if len(shape) == 3:
        tokens = shape[1]
        for extra in (0, 1, 2):
            cells = tokens - extra
            if cells < 1:
                continue
            h = max(1, round(math.sqrt(cells * input_hw[0] / input_hw[1])))
            if cells % h == 0 and _plausible((h, cells // h), input_hw):
                return Layout("tokens", (h, cells // h), extra)
    return None

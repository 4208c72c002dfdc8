"""The model-randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

Would a model that knows nothing give the same map? The check re-draws the weights of a **copy**
of the model, from the top (the classifier) down, a group of layers at a time, and explains the
same input and class after each step. A map that reflects what the model learned falls apart as
its weights go: its rank correlation with the original map drops towards zero. A map that stays
put shows the input's edges or the architecture, not the model's knowledge.

The shared model is never touched: the copy is made first, and refused when it would not fit in
the memory left. Random weights are drawn from a generator seeded per call (no global RNG), with
each tensor's own mean and spread, so every layer keeps its scale; BatchNorm's running statistics
are left as they were.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gradcam_core.cam import compute_cam

__all__ = [
    "SanityCheck",
    "SanityStep",
    "cascading_randomisation",
    "memory_available",
    "model_bytes",
    "rank_correlation",
]

#: At or below this rank correlation after the last step, the map is said to have fallen apart.
FELL_APART = 0.3


@dataclass(frozen=True, slots=True)
class SanityStep:
    """The map after one more group of layers was randomised.

    Attributes:
        randomised: the top-most and bottom-most modules randomised so far, as "head … layer3.1".
        modules: how many parameterised modules are random now.
        map: the map [h, w] of the randomised copy.
        correlation: Spearman rank correlation with the original map (0 for a blank map).
        pixel_correlation: for Guided Grad-CAM, the same for its guided backpropagation (the
            largest magnitude over colour channels): the part Adebayo et al. found barely changes.
    """

    randomised: str
    modules: int
    map: Tensor
    correlation: float
    pixel_correlation: float | None = None


@dataclass(frozen=True, slots=True)
class SanityCheck:
    """The original map and each step of the cascade."""

    original: Tensor
    steps: tuple[SanityStep, ...]
    method: str
    layer: str
    target: int

    @property
    def final(self) -> float:
        """The rank correlation with every parameterised layer random."""
        return self.steps[-1].correlation if self.steps else 1.0

    @property
    def passed(self) -> bool:
        """Whether the map fell apart once the weights were gone (correlation at most :data:`FELL_APART`)."""
        return abs(self.final) <= FELL_APART

    def verdict(self) -> str:
        """A plain-language reading of the curve."""
        if self.passed:
            return (
                f"The map falls apart as the weights are randomised: its rank correlation with the original is "
                f"{self.final:.2f} once every layer is random. It depends on what the model learned."
            )
        return (
            f"The map does NOT fall apart: with every layer random, its rank correlation with the original is still "
            f"{self.final:.2f}. Much of it comes from the image and the architecture, not from what the model learned; "
            "do not read it as the model's reasoning."
        )


def rank_correlation(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> float:
    """Spearman's rank correlation of two maps of one shape, ties sharing their average rank.

    A map that is constant (all zero, say) has no order to compare: 0 is returned.
    """
    x, y = (np.asarray(m, dtype=np.float64).ravel() for m in (a, b))
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else 0.0


def _ranks(values: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    return average[inverse]


def model_bytes(model: nn.Module) -> int:
    """The bytes a copy of ``model``'s parameters and buffers takes."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def memory_available() -> int:
    """The memory this machine has free for a new allocation, in bytes (Linux's MemAvailable)."""
    try:
        with Path("/proc/meminfo").open(encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _groups(model: nn.Module, steps: int) -> list[list[tuple[str, nn.Module]]]:
    """The parameterised modules, top (last defined) first, cut into at most ``steps`` contiguous groups."""
    own = [(n, m) for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
    own.reverse()
    size = max(1, -(-len(own) // max(1, steps)))
    return [own[i : i + size] for i in range(0, len(own), size)]


def cascading_randomisation(
    model: nn.Module,
    inputs: Tensor,
    layer: str,
    target: int,
    method: str = "gradcam",
    *,
    steps: int = 8,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    available: int | None = None,
) -> SanityCheck:
    """Randomise a copy of ``model`` from the top down in ``steps`` groups, explaining ``target`` after each.

    Args:
        model: the classifier (never changed).
        inputs: one preprocessed image [1, C, H, W].
        layer: the target layer.
        target: the class whose map is checked (the same class at every step).
        method: a key of :data:`gradcam_core.METHODS`.
        steps: how many groups the parameterised modules are cut into (each step randomises one more).
        seed: seeds the random weights.
        progress: ``progress(done, total)`` after each map.
        available: the bytes free (default: :func:`memory_available`).

    Raises:
        MemoryError: a copy of the model would not fit in half the memory available.
        ValueError: a model that cannot be copied, or the engine's own errors.
    """
    need = model_bytes(model)
    free = memory_available() if available is None else available
    if need > free // 2:
        raise MemoryError(
            f"the sanity check needs a copy of the model ({need / 2**20:,.0f} MB), and only {free / 2**20:,.0f} MB "
            "of memory is free (a copy may take at most half): free memory, or run it on a smaller model"
        )
    first = compute_cam(model, inputs, layer, [target], method)
    original, pixels = first.maps[0, 0], _pixels(first.guided)
    try:
        clone = copy.deepcopy(model)
    except Exception as exc:  # a model holding something that cannot be copied
        raise ValueError(f"this model cannot be copied for the sanity check ({exc})") from exc
    groups = _groups(clone, steps)
    generator = torch.Generator().manual_seed(seed)
    done: list[SanityStep] = []
    count = 0
    for group in groups:
        with torch.no_grad():
            for _name, module in group:
                for p in module.parameters(recurse=False):
                    _redraw(p, generator)
        count += len(group)
        top, last = groups[0][0][0], group[-1][0]
        result = compute_cam(clone, inputs, layer, [target], method)
        cam, now = result.maps[0, 0], _pixels(result.guided)
        pixel = None if pixels is None or now is None else rank_correlation(pixels, now)
        done.append(SanityStep(f"{top} … {last}", count, cam, rank_correlation(original, cam), pixel))
        if progress is not None:
            progress(len(done), len(groups))
    del clone
    return SanityCheck(original, tuple(done), method, layer, target)


def _pixels(guided: Tensor | None) -> Tensor | None:
    return None if guided is None else guided[0, 0].abs().amax(dim=0)


def _redraw(p: Tensor, generator: torch.Generator) -> None:
    """Replace ``p`` with Gaussian noise of its own mean and standard deviation (a unit spread for a constant)."""
    values = p.detach().float().cpu()
    spread = float(values.std()) if values.numel() > 1 else 0.0
    spread = spread if spread > 0 else max(abs(float(values.mean())), 1.0) * 0.1
    noise = torch.randn(values.shape, generator=generator) * spread + float(values.mean())
    p.copy_(noise.to(device=p.device, dtype=p.dtype))

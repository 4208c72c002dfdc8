"""The CAM methods: how activations (and gradients) at one layer become a class heat-map.

Guided Grad-CAM's coarse map is Grad-CAM's; its pixel-resolution part, guided backpropagation to
the input, is in :mod:`gradcam_core.guided`.

Shapes used throughout: activations ``A`` are [N, C, h, w]; gradients ``G`` of K class logits
with respect to ``A`` are [K, N, C, h, w]. Every combiner returns maps [K, N, h, w], rectified.
Score-CAM, which needs extra forward passes rather than gradients, lives in
:mod:`gradcam_core.scorecam`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "CLASS_AGNOSTIC",
    "METHODS",
    "Method",
    "eigen_smooth",
    "eigencam",
    "gradcam",
    "gradcam_plus_plus",
    "hirescam",
    "layercam",
    "smoothing_label",
    "xgradcam",
]

_EPS = 1e-7

#: What a class-agnostic method's map shows, in place of a class name.
CLASS_AGNOSTIC = "class-agnostic (first principal component)"


def _weighted_sum(weights: Tensor, acts: Tensor) -> Tensor:
    """ReLU of the channels of ``acts`` [N, C, h, w] summed with ``weights`` [K, N, C]: maps [K, N, h, w].

    One batched matrix product over the N inputs ([N, K, C] @ [N, C, h·w]).
    """
    maps = torch.bmm(weights.transpose(0, 1), acts.flatten(2)).transpose(0, 1)
    return torch.relu(torch.unflatten(maps, -1, acts.shape[-2:]))


def _gradcam_weights(acts: Tensor, grads: Tensor) -> Tensor:
    return grads.mean(dim=(-2, -1))


def _gradcam_plus_plus_weights(acts: Tensor, grads: Tensor) -> Tensor:
    g2, g3 = grads.pow(2), grads.pow(3)
    denom = 2 * g2 + acts.sum(dim=(-2, -1))[None, :, :, None, None] * g3
    alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, 1.0), 0.0)
    return (alpha * torch.relu(grads)).sum(dim=(-2, -1))


def _xgradcam_weights(acts: Tensor, grads: Tensor) -> Tensor:
    return (grads * acts).sum(dim=(-2, -1)) / (acts.sum(dim=(-2, -1)) + _EPS)


def gradcam(acts: Tensor, grads: Tensor) -> Tensor:
    """Grad-CAM (Selvaraju et al., ICCV 2017): channel weights are the spatial mean of the gradient."""
    return _weighted_sum(_gradcam_weights(acts, grads), acts)


def gradcam_plus_plus(acts: Tensor, grads: Tensor) -> Tensor:
    """Grad-CAM++ (Chattopadhyay et al., WACV 2018): pixel-weighted positive gradients.

    Uses the paper's closed form for an exponential class score, in which the higher-order
    derivatives reduce to powers of the first: α = G² / (2G² + ΣA·G³), w = Σ α·ReLU(G).
    """
    return _weighted_sum(_gradcam_plus_plus_weights(acts, grads), acts)


def xgradcam(acts: Tensor, grads: Tensor) -> Tensor:
    """XGrad-CAM (Fu et al., BMVC 2020): weights are activation-weighted gradient sums."""
    return _weighted_sum(_xgradcam_weights(acts, grads), acts)


def layercam(acts: Tensor, grads: Tensor) -> Tensor:
    """LayerCAM (Jiang et al., IEEE TIP 2021): each location weighted by its own positive gradient."""
    return torch.relu(_lc_weighted(acts, grads).sum(dim=2))


def hirescam(acts: Tensor, grads: Tensor) -> Tensor:
    """HiResCAM (Draelos & Carin, 2020): element-wise gradient × activation, summed over channels."""
    return torch.relu(_hr_weighted(acts, grads).sum(dim=2))


def _channel_weighted(weights: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda acts, grads: weights(acts, grads)[..., None, None] * acts


_gc_weighted = _channel_weighted(_gradcam_weights)
_pp_weighted = _channel_weighted(_gradcam_plus_plus_weights)
_x_weighted = _channel_weighted(_xgradcam_weights)


def _lc_weighted(acts: Tensor, grads: Tensor) -> Tensor:
    return torch.relu(grads) * acts


def _hr_weighted(acts: Tensor, grads: Tensor) -> Tensor:
    return grads * acts


def smoothing_label(eigen: bool, tta_scales: Sequence[float] | None) -> str:
    """How a map was smoothed, in words, with its cost: for captions and provenance ("none" when not)."""
    parts = []
    if tta_scales:
        parts.append(
            f"test-time augmentation ×{2 * len(tta_scales)} passes (flips × scales {', '.join(map(str, tta_scales))})"
        )
    if eigen:
        parts.append("eigen smoothing (first principal component, no extra pass)")
    return " + ".join(parts) or "none"


def eigen_smooth(weighted: Tensor) -> Tensor:
    """Eigen smoothing: each map is the first principal component of its weighted activations, rectified.

    ``weighted`` is [K, N, C, h, w] (a gradient method's :attr:`Method.weigh`). Where a method sums its weighted
    channels, this keeps only their main direction of variation over the locations, which drops
    the scattered noise that the other components carry (the ``eigen_smooth`` option of
    pytorch-grad-cam). The component's sign is chosen to agree with the unsmoothed map.
    """
    k, n, c, h, w = weighted.shape
    x = weighted.reshape(k * n, c, h * w).transpose(1, 2)  # [KN, hw, C]
    plain = x.sum(dim=2)  # the unsmoothed map, before its ReLU
    centred = x - x.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    proj = (centred @ vh[:, 0, :, None])[..., 0]  # [KN, hw]
    agree = (proj * (plain - plain.mean(dim=1, keepdim=True))).sum(dim=1, keepdim=True)
    proj = torch.where(agree < 0, -proj, proj)
    return torch.relu(proj).reshape(k, n, h, w)


def eigencam(acts: Tensor, num_classes: int) -> Tensor:
    """Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): the activations' first principal component.

    The map is class-agnostic: the same map is returned for all ``num_classes`` targets. The
    activations [h·w, C] of each input are centred per channel before the SVD. A component's sign
    is arbitrary, so it is flipped to agree with the mean activation: the component (a direction
    in channel space) must point the way of the mean activation vector, which is where the
    uncentred first singular vector of the paper's non-negative activations points. The
    projection then lights the locations whose activations are strong along it, not the ones
    that lack them. (Correlating the projection with the channel sum instead, as this function
    once did, weighs every channel alike, and on EfficientNet-Lite0's blocks lights the background.)
    A component orthogonal to the mean falls back to that correlation. The map is then rectified.
    """
    n, c, h, w = acts.shape
    out = torch.empty(n, h * w, dtype=acts.dtype, device=acts.device)
    for i in range(n):
        x = acts[i].reshape(c, h * w).T
        mean = x.mean(dim=0, keepdim=True)
        x = x - mean
        _, _, vh = torch.linalg.svd(x, full_matrices=False)
        proj = x @ vh[0]
        agreement = torch.dot(vh[0], mean[0])
        if agreement == 0:
            agreement = torch.dot(proj, x.sum(dim=1))
        out[i] = -proj if agreement < 0 else proj
    return torch.relu(out).reshape(1, n, h, w).expand(num_classes, n, h, w)


@dataclass(frozen=True, slots=True)
class Method:
    """A CAM method as the engine runs it.

    Attributes:
        name: the key in :data:`METHODS`.
        label: a human-readable name.
        kind: ``"gradient"`` (needs gradients of the class logits), ``"activation"`` (the
            forward pass alone), ``"score"`` (extra forward passes on masked inputs) or
            ``"guided"`` (Grad-CAM, and guided backpropagation to the input pixels).
        combine: for gradient methods, the function (A, G) -> maps.
        weigh: for gradient methods, the function (A, G) -> weighted activations [K, N, C, h, w],
            whose ReLU'd channel sum is the map (``combine`` computes that sum more cheaply);
            eigen smoothing (:func:`eigen_smooth`) takes their first principal component instead.
        citation: the paper.
    """

    name: str
    label: str
    kind: Literal["gradient", "activation", "score", "guided"]
    citation: str
    combine: Callable[[Tensor, Tensor], Tensor] | None = None
    weigh: Callable[[Tensor, Tensor], Tensor] | None = None

    @property
    def class_agnostic(self) -> bool:
        """Whether the map ignores the class (Eigen-CAM: the same map for every class)."""
        return self.kind == "activation"

    def target_label(self, class_name: str) -> str:
        """What this method's map for ``class_name`` shows: the class, or :data:`CLASS_AGNOSTIC`."""
        return CLASS_AGNOSTIC if self.class_agnostic else class_name


#: Every method :func:`gradcam_core.compute_cam` accepts, by name.
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("gradcam", "Grad-CAM", "gradient", "Selvaraju et al., ICCV 2017", gradcam, _gc_weighted),
        Method(
            "gradcam++", "Grad-CAM++", "gradient", "Chattopadhyay et al., WACV 2018", gradcam_plus_plus, _pp_weighted
        ),
        Method("xgradcam", "XGrad-CAM", "gradient", "Fu et al., BMVC 2020", xgradcam, _x_weighted),
        Method("layercam", "LayerCAM", "gradient", "Jiang et al., IEEE TIP 2021", layercam, _lc_weighted),
        Method("hirescam", "HiResCAM", "gradient", "Draelos & Carin, arXiv:2011.08891, 2020", hirescam, _hr_weighted),
        Method("guided-gradcam", "Guided Grad-CAM", "guided", "Selvaraju et al., ICCV 2017", gradcam, _gc_weighted),
        Method("scorecam", "Score-CAM", "score", "Wang et al., CVPR Workshops 2020"),
        Method("eigencam", "Eigen-CAM", "activation", "Muhammad & Yeasin, IJCNN 2020"),
    )
}

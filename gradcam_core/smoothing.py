"""Test-time augmentation: a map averaged over flipped and rescaled copies of the input, aligned back.

Each copy is explained for the same classes as the original (its own prediction may differ), and
its map is brought back to the original's frame: resized to the original map's grid, and flipped
back. The average keeps what every view agrees on and drops what one view's grid alignment made
up. Flips of one scale share a forward pass: the default :data:`TTA_SCALES` cost 6 images in 4 passes.
Eigen smoothing, the other option, costs no pass: see :func:`gradcam_core.methods.eigen_smooth`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradcam_core.cam import CamResult, Classes, compute_cam
from gradcam_core.layers import LayerInfo
from gradcam_core.methods import smoothing_label

__all__ = ["TTA_SCALES", "smoothing_label", "tta_cam"]

#: The scales :func:`tta_cam` uses by default; each is run as is and flipped left to right.
TTA_SCALES: tuple[float, ...] = (0.875, 1.0, 1.125)


def tta_cam(
    model: nn.Module,
    inputs: Tensor,
    layer: str | LayerInfo,
    classes: Classes = None,
    method: str = "gradcam",
    *,
    scales: Sequence[float] = TTA_SCALES,
    eigen_smooth: bool = False,
) -> CamResult:
    """:func:`compute_cam` averaged over left-right flips and ``scales`` of ``inputs``, aligned back.

    The classes are fixed first (``None``: each input's prediction on the original) so that every
    view explains the same class. The result's maps are the average over the views, on the
    original's grid. Its logits, warnings and (for Guided Grad-CAM) pixel gradients are the
    original view's. Costs ``2 × len(scales)`` images' passes in all.
    """
    if not scales:
        raise ValueError("test-time augmentation needs at least one scale")
    base = compute_cam(model, inputs, layer, classes, method, eigen_smooth=eigen_smooth)
    picked, n = base.classes, inputs.shape[0]
    view_method = "gradcam" if method == "guided-gradcam" else method  # the same coarse map, no pixel pass
    h, w = base.maps.shape[-2:]
    total = torch.zeros_like(base.maps)
    height, width = inputs.shape[-2:]
    for scale in scales:
        size = (max(8, round(height * scale)), max(8, round(width * scale)))
        same = size == (height, width)
        x = inputs if same else F.interpolate(inputs, size=size, mode="bilinear", align_corners=False)
        if same:  # the original view is the base's: only its flip is run
            views = [
                base.maps,
                compute_cam(model, x.flip(-1), layer, picked, view_method, eigen_smooth=eigen_smooth).maps,
            ]
        else:
            try:
                maps = compute_cam(model, torch.cat([x, x.flip(-1)]), layer, torch.cat([picked, picked]), view_method,
                                   eigen_smooth=eigen_smooth).maps  # fmt: skip
            except (AssertionError, RuntimeError) as exc:  # a model made for one input size only (a ViT, a trace)
                raise ValueError(
                    f"test-time augmentation rescales the input, and this model does not take {size[0]}×{size[1]} "
                    f"inputs ({exc}); turn test-time augmentation off for it"
                ) from exc
            views = [maps[:n], maps[n:]]
        views[1] = views[1].flip(-1)
        for maps in views:
            total += F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False).clamp(min=0)
    label = smoothing_label(base.smoothing != "none", scales)
    return replace(base, maps=total / (2 * len(scales)), smoothing=label)

"""Score-CAM as gradcam_core implemented it at 8b8347c: the reference the tests and ``bench.scorecam`` compare with."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def old_scorecam(model: nn.Module, inputs: Tensor, acts: Tensor, classes: Tensor, batch_size: int = 32) -> Tensor:
    """gradcam_core/scorecam.py as of 8b8347c: one image at a time, all its masks, batches of 32."""
    n, c = acts.shape[:2]
    maps = []
    with torch.no_grad():
        for i in range(n):
            masks = F.interpolate(acts[i][:, None], size=inputs.shape[-2:], mode="bilinear", align_corners=False)
            low = masks.amin(dim=(-2, -1), keepdim=True)
            span = masks.amax(dim=(-2, -1), keepdim=True) - low
            masks = torch.where(span > 0, (masks - low) / torch.where(span > 0, span, 1.0), 0.0)
            weights = torch.cat(
                [
                    torch.softmax(model(inputs[i : i + 1] * masks[j : j + batch_size]), dim=1)[:, classes[i]]
                    for j in range(0, c, batch_size)
                ]
            )
            maps.append(torch.relu(torch.einsum("ck,chw->khw", weights, acts[i])))
    return torch.stack(maps, dim=1)


def layer_acts(model: nn.Module, layer: str, x: Tensor) -> Tensor:
    """The output of ``layer`` (its last call) on ``x``, from a hook removed afterwards."""
    seen: list[Tensor] = []
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda _m, _a, out: seen.append(out))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[-1]

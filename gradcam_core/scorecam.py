"""Score-CAM (Wang et al., CVPR Workshops 2020): channel weights from masked forward passes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["scorecam"]


def scorecam(model: nn.Module, inputs: Tensor, acts: Tensor, classes: Tensor, batch_size: int = 32) -> Tensor:
    """Weight each channel by the class probability of the input masked with that channel.

    Each activation channel is upsampled bilinearly to the input size and min-max scaled to
    [0, 1]; the input is multiplied by it and run forward. The channel's weight is the softmax
    probability of the target class for that masked input (the authors' reference
    implementation: no baseline is subtracted and no softmax is taken across channels). The
    map is ReLU(Σ_k w_k A^k). All K classes share the same masked passes.

    Args:
        model: the classifier, in eval mode.
        inputs: the preprocessed images [N, 3, H, W], on the model's device.
        acts: the layer's activations [N, C, h, w].
        classes: class indices [N, K].
        batch_size: masked images per forward pass; lower it to save memory.

    Returns:
        Maps [K, N, h, w].
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}")
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
            )  # [C, K]
            maps.append(torch.relu(torch.einsum("ck,chw->khw", weights, acts[i])))
    return torch.stack(maps, dim=1)

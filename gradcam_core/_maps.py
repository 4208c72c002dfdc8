"""Shared conversion of a 2-D map (tensor or array) to numpy."""

from __future__ import annotations

import numpy as np
import torch


def as_2d(heatmap: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of a 2-D map; raise for any other shape."""
    arr = heatmap.detach().cpu().numpy() if isinstance(heatmap, torch.Tensor) else np.asarray(heatmap)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D map [h, w], got shape {tuple(arr.shape)}")
    return arr.astype(np.float32)

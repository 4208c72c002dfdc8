"""Turning raw maps into pictures: colour-mapped heat-maps and overlays, with OpenCV."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch
from PIL import Image

from gradcam_core._maps import as_2d

__all__ = ["COLORMAPS", "heatmap_to_rgb", "normalize", "overlay"]

#: Colour map names accepted by the renderers, and OpenCV's constant for each.
COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "hot": cv2.COLORMAP_HOT,
    "bone": cv2.COLORMAP_BONE,
}


def normalize(heatmap: np.ndarray | torch.Tensor, vmax: float | None = None) -> np.ndarray:
    """Scale a non-negative map to [0, 1] by dividing by ``vmax``.

    Zero stays zero ("no evidence"), so maps divided by one shared ``vmax`` can be compared by
    intensity. ``vmax=None`` uses the map's own maximum; an all-zero map stays all zero.
    """
    arr = as_2d(heatmap)
    top = float(arr.max()) if vmax is None else float(vmax)
    if top <= 0 or not np.isfinite(top):
        return np.zeros_like(arr)
    return np.clip(arr / top, 0.0, 1.0)


def heatmap_to_rgb(
    heatmap: np.ndarray | torch.Tensor,
    size: tuple[int, int],
    colormap: str = "jet",
    vmax: float | None = None,
    interpolation: Literal["bilinear", "nearest"] = "bilinear",
) -> np.ndarray:
    """Colour a raw map and upsample it bilinearly to ``size`` = (width, height).

    Args:
        heatmap: a 2-D non-negative map at any resolution.
        size: the output (width, height).
        colormap: one of :data:`COLORMAPS`.
        vmax: the value shown at the top of the scale; ``None`` normalises the map on its own.
        interpolation: ``"bilinear"`` for a smooth map, ``"nearest"`` to show the raw grid with
            each cell as a crisp block.

    Returns:
        A uint8 RGB array [height, width, 3].
    """
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap '{colormap}': use one of {', '.join(COLORMAPS)}")
    scaled = normalize(heatmap, vmax)
    flag = cv2.INTER_NEAREST if interpolation == "nearest" else cv2.INTER_LINEAR
    resized = cv2.resize(scaled, size, interpolation=flag)
    levels = np.round(np.clip(resized, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)


def overlay(
    image: Image.Image,
    heatmap: np.ndarray | torch.Tensor,
    alpha: float = 0.4,
    colormap: str = "jet",
    vmax: float | None = None,
) -> Image.Image:
    """Blend a colour-mapped heat-map over ``image``, upsampling the map to the image's size.

    Args:
        image: the picture to draw on.
        heatmap: a 2-D map covering the whole image (see :func:`gradcam_core.paste_map` for
            maps that cover only part of it).
        alpha: the heat-map's opacity, from 0 (image only) to 1 (heat-map only).
        colormap: one of :data:`COLORMAPS`.
        vmax: shared scale maximum, as in :func:`heatmap_to_rgb`.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"`alpha` must be between 0 and 1, got {alpha}")
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    heat = heatmap_to_rgb(heatmap, image.size, colormap, vmax).astype(np.float32)
    return Image.fromarray(np.round((1 - alpha) * base + alpha * heat).astype(np.uint8))

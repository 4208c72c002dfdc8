"""Turning raw maps into pictures: colour-mapped heat-maps and overlays, with OpenCV."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch
from PIL import Image

from gradcam_core._maps import as_2d

__all__ = ["COLORMAPS", "GRADIENT_VIEWS", "gradient_to_rgb", "heatmap_to_rgb", "normalize", "overlay"]

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


#: How a signed gradient image (guided backpropagation, Guided Grad-CAM) can be drawn.
GRADIENT_VIEWS: dict[str, str] = {
    "rgb": "as colour (each channel's gradient, centred on grey, as in the paper)",
    "signed": "signed (sum over colour channels: red positive, blue negative, white zero)",
    "absolute": "absolute (largest magnitude over colour channels, on the colour map)",
}


def gradient_to_rgb(
    gradients: np.ndarray | torch.Tensor, view: str = "rgb", colormap: str = "jet", vmax: float | None = None
) -> np.ndarray:
    """Draw a signed gradient image [C, H, W] as an RGB uint8 image [H, W, 3].

    ``view`` is a key of :data:`GRADIENT_VIEWS`. ``"rgb"`` centres each pixel's gradient on grey and
    scales it by the 99.5th percentile of its magnitude (a few extreme pixels would otherwise grey
    out the rest), as the Guided Grad-CAM paper draws it. ``"signed"`` sums the channels onto a
    diverging red-white-blue scale; ``"absolute"`` takes the largest magnitude over the channels,
    on ``colormap``. ``vmax`` sets the scale (else each image's own 99.5th percentile).
    """
    if view not in GRADIENT_VIEWS:
        raise ValueError(f"unknown gradient view '{view}': use one of {', '.join(GRADIENT_VIEWS)}")
    g = (gradients.detach().cpu().numpy() if isinstance(gradients, torch.Tensor) else np.asarray(gradients)).astype(
        np.float64
    )
    if g.ndim == 2:
        g = g[None]
    if view == "absolute":
        magnitude = np.abs(g).max(axis=0)
        scale = vmax or float(np.percentile(magnitude, 99.5)) or 1.0
        h, w = magnitude.shape
        return heatmap_to_rgb(np.clip(magnitude / scale, 0, 1), (w, h), colormap, vmax=1.0, interpolation="nearest")
    if view == "signed":
        total = g.sum(axis=0)
        scale = vmax or float(np.percentile(np.abs(total), 99.5)) or 1.0
        t = np.clip(total / scale, -1, 1)[..., None]
        red, white, blue = np.array([178, 24, 43]), np.array([255, 255, 255]), np.array([33, 102, 172])
        out: np.ndarray = np.where(t >= 0, white + t * (red - white), white + (-t) * (blue - white))
        return np.round(out).astype(np.uint8)
    scale = vmax or float(np.percentile(np.abs(g), 99.5)) or 1.0
    rgb = 0.5 + 0.5 * np.clip(g / scale, -1, 1)
    picture = rgb.transpose(1, 2, 0)
    if picture.shape[2] == 1:
        picture = np.repeat(picture, 3, axis=2)
    return np.round(picture[..., :3] * 255).astype(np.uint8)

"""Image regions: crop a box, occlude it, and map a heat-map from a crop back to the full image."""

from __future__ import annotations

from typing import Literal, NamedTuple

import cv2
import numpy as np
import torch
from PIL import Image

from gradcam_core._maps import as_2d

__all__ = ["Box", "clamp_box", "crop", "input_region", "occlude", "paste_map"]

Fill = Literal["blur", "mean", "black"]


class Box(NamedTuple):
    """A rectangle in pixels: left ``x``, top ``y``, width ``w`` and height ``h``."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        """One past the last column inside the box."""
        return self.x + self.w

    @property
    def bottom(self) -> int:
        """One past the last row inside the box."""
        return self.y + self.h


def input_region(image_size: tuple[int, int], input_size: tuple[int, int], resize: int | None) -> Box:
    """The part of an image of ``image_size`` = (width, height) that a model of ``input_size`` sees.

    ``resize=None`` resizes the whole image (the whole image is seen); ``resize=R`` resizes the
    shorter side to R and crops the centre ``input_size`` = (height, width), as ImageNet models do.
    """
    width, height = image_size
    if resize is None:
        return Box(0, 0, width, height)
    scale = resize / min(width, height)
    crop_h, crop_w = (min(s / scale, full) for s, full in zip(input_size, (height, width), strict=True))
    return Box(round((width - crop_w) / 2), round((height - crop_h) / 2), round(crop_w), round(crop_h))


def clamp_box(box: tuple[float, float, float, float], size: tuple[int, int]) -> Box:
    """Round a box to whole pixels and clip it to an image of ``size`` = (width, height).

    Raises:
        ValueError: the box has no area left inside the image.
    """
    width, height = size
    x0, y0 = max(0, round(box[0])), max(0, round(box[1]))
    x1, y1 = min(width, round(box[0] + box[2])), min(height, round(box[1] + box[3]))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {tuple(box)} does not overlap the {width}×{height} image: draw it inside the image")
    return Box(x0, y0, x1 - x0, y1 - y0)


def crop(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """Return the part of ``image`` inside ``box`` (clipped to the image)."""
    b = clamp_box(box, image.size)
    return image.crop((b.x, b.y, b.right, b.bottom))


def occlude(image: Image.Image, box: tuple[float, float, float, float], fill: Fill = "blur") -> Image.Image:
    """Erase ``box`` from ``image``: the "what if this region were gone" counterfactual to a crop.

    Args:
        image: an RGB image.
        box: the region to erase.
        fill: ``"blur"`` (a Gaussian blur strong enough to remove detail, keeping colour),
            ``"mean"`` (the image's mean colour) or ``"black"``.

    Returns:
        A new image; the input is not modified.
    """
    b = clamp_box(box, image.size)
    arr = np.array(image.convert("RGB"))
    region = arr[b.y : b.bottom, b.x : b.right]
    if fill == "blur":
        sigma = max(b.w, b.h) / 6
        region[...] = cv2.GaussianBlur(region, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)
    elif fill == "mean":
        region[...] = arr.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
    elif fill == "black":
        region[...] = 0
    else:
        raise ValueError(f"unknown fill '{fill}': use 'blur', 'mean' or 'black'")
    return Image.fromarray(arr)


def paste_map(
    heatmap: np.ndarray | torch.Tensor,
    box: tuple[float, float, float, float],
    image_size: tuple[int, int],
) -> np.ndarray:
    """Place a map computed on a crop into the full image's frame, so before/after panels align.

    Args:
        heatmap: a 2-D map [h, w] computed on the image inside ``box``.
        box: where that crop lies in the full image.
        image_size: the full image's (width, height); the output has this resolution.

    Returns:
        A float32 array [height, width]: the map upsampled bilinearly onto the box, zero outside it.
    """
    arr = as_2d(heatmap)
    b = clamp_box(box, image_size)
    out = np.zeros((image_size[1], image_size[0]), dtype=np.float32)
    out[b.y : b.bottom, b.x : b.right] = cv2.resize(arr, (b.w, b.h), interpolation=cv2.INTER_LINEAR)
    return out

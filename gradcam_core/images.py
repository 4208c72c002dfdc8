"""Reading user images safely: any common format in, a plain RGB ``PIL.Image`` out."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["MAX_PIXELS", "ImageError", "load_image"]

#: Largest image accepted, in pixels (width × height). Larger files are refused before decoding.
MAX_PIXELS = 50_000_000

_READABLE = "JPEG, PNG, WebP, BMP, GIF, TIFF"


class ImageError(ValueError):
    """An image could not be read; the message says why and what to do."""


def load_image(data: bytes | str | Path, max_side: int | None = None) -> Image.Image:
    """Decode an image file into RGB, with its EXIF orientation applied.

    Grayscale, palette, 16-bit, CMYK and alpha images are converted (transparent pixels are
    composited on white); animated images give their first frame.

    Args:
        data: the file's bytes, or a path to it.
        max_side: downscale so neither side exceeds this. JPEGs are then decoded at a reduced
            scale directly (much faster for large photos).

    Returns:
        A fully decoded ``RGB`` image that holds no open file.

    Raises:
        ImageError: the data is empty, missing, truncated, not an image, in an unsupported
            mode, or larger than :data:`MAX_PIXELS`.
    """
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise ImageError(f"no image file at '{path}': check the path and try again")
        data = path.read_bytes()
    if not data:
        raise ImageError("the file is empty (0 bytes): choose another image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"the image is {width}×{height} = {width * height / 1e6:.0f} megapixels, over the "
                    f"{MAX_PIXELS / 1e6:.0f} MP limit: downscale it and upload it again"
                )
            img.seek(0)  # the first frame of an animation
            if max_side is not None and img.format == "JPEG" and max(width, height) > max_side:
                ratio = max_side / max(width, height)  # DCT scaling, never below the requested size
                img.draft("RGB", (math.ceil(width * ratio), math.ceil(height * ratio)))
            img.load()
            out = _to_rgb(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"the image is over the {MAX_PIXELS / 1e6:.0f} megapixels limit and too large to decode safely "
            f"({exc}): downscale it and upload it again"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"this is not an image format that can be read; use one of {_READABLE}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"the image data is damaged or truncated ({exc}): re-export or re-download the file") from exc
    if max_side is not None and max(out.size) > max_side:
        out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return out


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, scaling high-bit-depth data instead of clipping it."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_to_uint8(np.asarray(img), mode), "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise ImageError(f"images in colour mode '{mode}' are not supported: save it as RGB") from exc


def _to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16/32-bit integer or float pixel data into 0..255 by the range its mode implies."""
    arr = arr.astype(np.float64)
    if mode == "F":
        low, high = (
            (0.0, 1.0) if arr.size and arr.min() >= 0 and arr.max() <= 1 else (float(arr.min()), float(arr.max()))
        )
    else:  # "I;16*" and "I" (how Pillow opens 16-bit PNG and TIFF): a 16-bit range
        low, high = 0.0, max(65535.0, float(arr.max()) if arr.size else 0.0)
    span = high - low if high > low else 1.0
    return np.clip(np.round((arr - low) / span * 255.0), 0, 255).astype(np.uint8)

"""A corpus of bad and odd image files, built in memory, with what each should give."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    """A file and its expected outcome: an error message fragment, or an RGB image of ``size``."""

    name: str
    data: bytes
    error: str | None = None
    size: tuple[int, int] | None = None
    pixel: tuple[int, int, int] | None = None  # expected colour at the centre, when it is known


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inside.txt", "hello")
    return buf.getvalue()


def _animated() -> bytes:
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    return encode(Image.new("RGB", (40, 20), (0, 200, 0)), "JPEG", exif=exif.tobytes())


def _palette() -> bytes:
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    pal.putpixel((0, 0), 0)
    return encode(pal, "PNG", transparency=0)


def cases() -> list[Case]:
    """At least 15 bad or odd files."""
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    photo, png = encode(noise, "JPEG"), encode(noise, "PNG")
    sixteen = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    return [
        Case("empty.png", b"", error="empty"),
        Case("notes.png", b"just some text\n", error="not an image format"),
        Case("page.jpg", b"<html><body>hi</body></html>", error="not an image format"),
        Case("archive.png", _zip(), error="not an image format"),
        Case("paper.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", error="not an image format"),
        Case("cut.jpg", photo[: len(photo) // 2], error="damaged or truncated"),
        Case("cut.png", png[: len(png) // 2], error="damaged or truncated"),
        Case("bomb.png", encode(Image.new("1", (30000, 30000)), "PNG"), error="megapixels"),
        Case("hundred_mp.png", encode(Image.new("1", (10000, 10000)), "PNG"), error="megapixels"),
        Case("cmyk.jpg", encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95), size=(8, 8)),
        Case("sixteen_bit.png", encode(sixteen, "PNG"), size=(8, 8), pixel=(128, 128, 128)),
        Case("palette_alpha.png", _palette(), size=(4, 4), pixel=(0, 255, 0)),
        Case("gray_alpha.png", encode(Image.new("LA", (4, 4), (0, 0)), "PNG"), size=(4, 4), pixel=(255, 255, 255)),
        Case("animated.gif", _animated(), size=(6, 6)),
        Case("rotated.jpg", _exif_rotated(), size=(20, 40)),
        Case("one_pixel.png", encode(Image.new("RGB", (1, 1), (9, 8, 7)), "PNG"), size=(1, 1), pixel=(9, 8, 7)),
        Case("gray.png", encode(Image.new("L", (5, 5), 77), "PNG"), size=(5, 5), pixel=(77, 77, 77)),
        Case("photo.webp", encode(Image.new("RGB", (16, 16), (200, 30, 30)), "WEBP", lossless=True), size=(16, 16)),
        Case("photo.bmp", encode(Image.new("RGB", (16, 16), (1, 2, 3)), "BMP"), size=(16, 16), pixel=(1, 2, 3)),
        Case("photo.tiff", encode(Image.new("RGB", (16, 16), (4, 5, 6)), "TIFF"), size=(16, 16), pixel=(4, 5, 6)),
    ]

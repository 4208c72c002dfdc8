"""load_image on every kind of file people upload, each built here."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gradcam_core import ImageError, load_image


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def gradient(mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> Image.Image:
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    rgb = np.stack([np.tile(x, (size[1], 1))] * 3, axis=-1)
    rgb[..., 1] = 128
    return Image.fromarray(rgb).convert(mode)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"just some text, not an image\n", "not an image format"),
        (b"<html><body>hi</body></html>", "not an image format"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not an image format"),
        (encode(gradient(), "JPEG")[:300], "damaged or truncated"),
        (encode(gradient(), "PNG")[:80], "damaged or truncated"),
        (encode(Image.new("1", (8000, 7000)), "PNG"), "megapixels"),
    ],
    ids=["empty", "text", "html", "pdf", "truncated-jpeg", "truncated-png", "56-megapixels"],
)
def test_bad_files_raise_a_clear_image_error(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(data)


def test_zip_and_missing_file(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "hello")
    with pytest.raises(ImageError, match="not an image format"):
        load_image(buf.getvalue())
    with pytest.raises(ImageError, match="no image file"):
        load_image(tmp_path / "missing.png")
    assert issubclass(ImageError, ValueError)


def test_pixel_bomb_is_refused_before_decoding() -> None:
    # 30000×30000 one-bit PNG: about 100 kB on disk, 900 megapixels decoded.
    with pytest.raises(ImageError, match="megapixels"):
        load_image(encode(Image.new("1", (30000, 30000)), "PNG"))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_formats_round_trip_to_rgb(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"img.{fmt.lower()}"
    gradient().save(path, fmt)
    for source in (path, str(path), path.read_bytes()):
        img = load_image(source)
        assert img.mode == "RGB"
        assert img.size == (40, 30)
    px = np.asarray(img, dtype=int)
    assert px[15, 0, 0] < 30 and px[15, -1, 0] > 220  # the gradient survived


def test_grayscale_and_one_pixel() -> None:
    img = load_image(encode(Image.new("L", (1, 1), 77), "PNG"))
    assert img.mode == "RGB" and img.size == (1, 1)
    assert img.getpixel((0, 0)) == (77, 77, 77)


def test_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    img = load_image(encode(rgba, "PNG"))
    assert img.getpixel((0, 0)) == (255, 0, 0)
    assert img.getpixel((3, 3)) == (255, 255, 255)
    la = Image.new("LA", (2, 2), (0, 0))
    assert load_image(encode(la, "PNG")).getpixel((1, 1)) == (255, 255, 255)


def test_palette_with_transparency() -> None:
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    pal.putpixel((1, 1), 1)
    data = encode(pal, "PNG", transparency=0)
    img = load_image(data)
    assert img.getpixel((0, 0)) == (255, 255, 255)  # transparent index -> white
    assert img.getpixel((1, 1)) == (0, 255, 0)


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(arr), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    img = load_image(data)
    assert [img.getpixel((i, 0))[0] for i in range(3)] == [0, 128, 255]


def test_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    r, g, b = load_image(encode(cmyk, "JPEG", quality=95)).getpixel((4, 4))
    assert r > 200 and g < 60 and b < 60


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    r, _, b = load_image(data).getpixel((3, 3))
    assert r > 200 and b < 60


def test_exif_orientation_is_applied() -> None:
    img = gradient(size=(40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    loaded = load_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert loaded.size == (20, 40)

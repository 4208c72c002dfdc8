"""A second, independent generator of the shapes world: for EVALUATION ONLY, never for training.

It draws the same five shapes and the same checkerboard tag as :mod:`gradcam_core.demo.world`, but
with its own code and its own ideas of what a picture looks like, so that the demo model's figures
on it say whether the model learnt the shapes or the training generator's style:

- drawn with PIL's ``ImageDraw`` at four times the size and box-downsampled (anti-aliasing by
  supersampling), not with OpenCV;
- backgrounds from other families: multi-stop linear gradients, radial glows, photo-like fractal
  noise, soft waves, and flat paper with film grain;
- colours sampled in HSV, with a luminance contrast drawn from its own range;
- shapes filled, outlined or both, with their own proportions (star, cross) and a rounded
  square now and then; sizes 28–56 % of the side;
- its own noise levels and a light Gaussian blur.

No training scene comes from this module (:mod:`gradcam_core.demo.train` draws only from
:mod:`gradcam_core.demo.world`; it meets this module only through the evaluation it prints); keep it that way.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from gradcam_core.demo.world import CATEGORIES, SIZE, Scene
from gradcam_core.regions import Box

__all__ = ["OTHER_SEED", "draw_other_scene", "other_rng"]

#: First seed of this generator's streams (the evaluation's streams, shifted, so they never meet training's).
OTHER_SEED = 5000
_SS = 4  # supersampling factor
_BIG = SIZE * _SS


def other_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for scene ``index`` of this world's stream ``seed``."""
    return np.random.default_rng([seed, index, 0x07E4])


def draw_other_scene(
    rng: np.random.Generator, shape: int, *, tagged: bool = False, fill: tuple[float, float] = (0.28, 0.56)
) -> Scene:
    """Draw one scene in this generator's styles.

    Args:
        rng: the scene's random generator.
        shape: index into :data:`~gradcam_core.demo.world.CATEGORIES`.
        tagged: add the 4×4 checkerboard tag in a random corner, clear of the shape.
        fill: the range of the shape's size (its bounding box's longer side) as a fraction of the image side.
    """
    hue = rng.uniform()
    back, ink, edge = _colours(rng, hue)
    canvas = _background(rng, back)
    tag = _tag_box(rng) if tagged else None
    for _ in range(200):
        polygon, ellipse, box = _place(rng, shape, fill)
        if tag is None or not _near(box, tag, margin=4):
            break
    draw = ImageDraw.Draw(canvas)
    _clutter(rng, draw)
    style = rng.choice(["fill", "fill", "outline", "both"])
    width = round(rng.uniform(0.05, 0.12) * max(box.w, box.h) * _SS)
    if ellipse is not None:
        draw.ellipse(
            ellipse,
            fill=None if style == "outline" else ink,
            outline=None if style == "fill" else (ink if style == "outline" else edge),
            width=width,
        )
    elif style == "fill":
        draw.polygon(polygon, fill=ink)
    else:
        if style == "both":
            draw.polygon(polygon, fill=ink)
        colour = ink if style == "outline" else edge
        draw.line([*polygon, polygon[0], polygon[1]], fill=colour, width=width, joint="curve")
    if tag is not None:
        _draw_tag(draw, tag)
    pixels = _finish(rng, canvas.reduce(_SS))
    return Scene(pixels, shape, box, tag)


def _lum(rgb: tuple[int, int, int]) -> float:
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _colours(
    rng: np.random.Generator, hue: float
) -> tuple[list[tuple[int, int, int]], tuple[int, int, int], tuple[int, int, int]]:
    """Background stops around one hue, an ink of contrasting value, and an edge colour for the ink."""
    need = rng.uniform(35, 70)
    while True:
        stops = [
            _hsv(hue + rng.normal(0, 0.08), rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.95))
            for _ in range(int(rng.integers(2, 4)))
        ]
        ink = _hsv(rng.uniform(), rng.uniform(0.0, 1.0), rng.uniform(0.05, 1.0))
        if min(abs(_lum(ink) - _lum(s)) for s in stops) > need:
            break
    edge = _hsv(rng.uniform(), rng.uniform(0, 1), 1.0 - _lum(ink) / 255 * rng.uniform(0.6, 1.0))
    return stops, ink, edge


def _background(rng: np.random.Generator, stops: list[tuple[int, int, int]]) -> Image.Image:
    """A supersampled background of one of five families, mapped through the colour stops."""
    n = SIZE
    yy, xx = np.mgrid[0:n, 0:n] / (n - 1)
    family = rng.choice(["linear", "radial", "fractal", "waves", "paper"])
    if family == "linear":
        a = rng.uniform(0, 2 * np.pi)
        t = (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) * rng.uniform(0.8, 1.4) + 0.5
    elif family == "radial":
        cx, cy = rng.uniform(-0.2, 1.2, 2)
        t = np.hypot(xx - cx, yy - cy) * rng.uniform(0.7, 1.5)
    elif family == "fractal":
        t = np.zeros((n, n))
        for octave in range(4):
            cells = 2 ** (octave + 1)
            low = Image.fromarray((rng.uniform(0, 255, (cells, cells))).astype(np.uint8))
            t += np.asarray(low.resize((n, n), Image.Resampling.BICUBIC), float) / 255 * 0.5**octave
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif family == "waves":
        a, f = rng.uniform(0, np.pi), rng.uniform(1.5, 5)
        u = np.cos(a) * xx + np.sin(a) * yy
        t = 0.5 + 0.35 * np.sin(2 * np.pi * f * u) + 0.15 * np.sin(2 * np.pi * 2.3 * f * (yy - xx))
    else:
        t = np.full((n, n), rng.uniform(0.2, 0.8))
    t = np.clip(t, 0, 1)
    positions = np.linspace(0, 1, len(stops))
    rgb = np.stack([np.interp(t, positions, [s[c] for s in stops]) for c in range(3)], axis=-1)
    small = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    return small.resize((_BIG, _BIG), Image.Resampling.NEAREST)  # smooth already: box-downsampled back exactly


def _unit_polygon(rng: np.random.Generator, name: str) -> np.ndarray:
    """The shape's outline in its own unit frame (this generator's proportions)."""
    if name == "square":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    if name == "triangle":
        t = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    if name == "star":
        inner = rng.uniform(0.38, 0.48)
        t = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, inner)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    w = rng.uniform(0.25, 0.35)  # cross
    return np.array(
        [[-w, -1], [w, -1], [w, -w], [1, -w], [1, w], [w, w], [w, 1], [-w, 1], [-w, w], [-1, w], [-1, -w], [-w, -w]]
    )


def _place(
    rng: np.random.Generator, shape: int, fill: tuple[float, float]
) -> tuple[list[tuple[float, float]], tuple[float, float, float, float] | None, Box]:
    """The shape's supersampled polygon (or ellipse box, for a circle) and its box at the image's scale."""
    name = CATEGORIES[shape]
    side = rng.uniform(*fill) * SIZE
    if name == "circle":
        pts = np.array([[-1.0, -1.0], [1.0, 1.0]])
    else:
        unit = _unit_polygon(rng, name)
        if name == "square" and rng.uniform() < 0.3:  # a slightly rounded square
            unit = _rounded(unit, rng.uniform(0.1, 0.25))
        a = rng.uniform(0, 2 * np.pi)
        pts = unit @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pts = (pts - lo) * (side / (hi - lo).max())
    extent = pts.max(axis=0)
    pts = pts + rng.uniform(1, SIZE - 1 - extent)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    box = Box(int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1) - np.floor(x0)), int(np.ceil(y1) - np.floor(y0)))
    big = pts * _SS
    if name == "circle":
        return [], (big[0, 0], big[0, 1], big[1, 0], big[1, 1]), box
    return [(float(x), float(y)) for x, y in big], None, box


def _rounded(square: np.ndarray, radius: float) -> np.ndarray:
    """A square's corners replaced by quarter circles of ``radius`` (in unit-square units)."""
    out = []
    for corner in square:
        centre = corner - np.sign(corner) * radius
        start = np.arctan2(np.sign(corner[1]), np.sign(corner[0])) - np.pi / 4
        for t in np.linspace(start, start + np.pi / 2, 6):
            out.append(centre + radius * np.array([np.cos(t), np.sin(t)]))
    return np.array(out)


def _clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw) -> None:
    """A few soft strokes and specks under the shape."""
    for _ in range(int(rng.integers(0, 5))):
        p = rng.uniform(0, _BIG, 4)
        colour = _hsv(rng.uniform(), rng.uniform(0, 1), rng.uniform(0, 1))
        draw.line([(p[0], p[1]), (p[2], p[3])], fill=colour, width=int(rng.integers(2, 8)))
    for _ in range(int(rng.integers(0, 12))):
        c, r = rng.uniform(0, _BIG, 2), rng.uniform(3, 10)
        draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=_hsv(rng.uniform(), 0.8, rng.uniform(0, 1)))


def _tag_box(rng: np.random.Generator) -> Box:
    """The world's tag: a square 12–16 % of the side (a multiple of 4 pixels) near a random corner."""
    side = int(rng.choice([16, 20]))
    margin = int(rng.integers(1, 7))
    x = SIZE - side - margin if rng.uniform() < 0.5 else margin
    y = SIZE - side - margin if rng.uniform() < 0.5 else margin
    return Box(x, y, side, side)


def _draw_tag(draw: ImageDraw.ImageDraw, box: Box) -> None:
    """The 4×4 black-and-white checkerboard, white in its top-left cell, at the supersampled scale."""
    cell = box.w // 4 * _SS
    for i in range(4):
        for j in range(4):
            x, y = box.x * _SS + j * cell, box.y * _SS + i * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(255, 255, 255) if (i + j) % 2 == 0 else (0, 0, 0))


def _near(a: Box, b: Box, margin: int) -> bool:
    return not (
        a.right + margin <= b.x or b.right + margin <= a.x or a.bottom + margin <= b.y or b.bottom + margin <= a.y
    )


def _finish(rng: np.random.Generator, image: Image.Image) -> np.ndarray:
    """Light blur, then sensor-like noise (Gaussian, or grain that is stronger in the shadows)."""
    if rng.uniform() < 0.7:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    x = np.asarray(image, np.float32)
    sigma = rng.choice([rng.uniform(1, 5), rng.uniform(5, 14)])
    if rng.uniform() < 0.5:
        noisy = x + rng.normal(0, sigma, x.shape)
    else:  # luminance grain, stronger in the shadows
        grain = rng.normal(0, sigma, x.shape[:2])[..., None]
        noisy = x + grain * (1.3 - x.mean(axis=2, keepdims=True) / 255)
    return np.clip(noisy, 0, 255).astype(np.uint8)

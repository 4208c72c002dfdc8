"""The shapes world: seeded, procedurally drawn scenes with a planted shortcut.

Each scene is a 128×128 RGB image of one filled shape (circle, square, triangle, star or
cross) on a cluttered background. A scene may carry the *tag*: a 4×4 black-and-white
checkerboard in a corner, the watermark the demo model learns as a shortcut for "star".
Everything is drawn with OpenCV from a NumPy generator, so a (seed, index) pair always gives
the same scene.

A scene is drawn in the *classic* style (a noisy two-colour gradient, a filled shape) unless a
:class:`Style` is given: training draws most of its scenes in random styles
(:func:`random_style`: flat, radial, blotchy, cloudy, striped or grainy backgrounds between two or
three colours, other noise levels, blur, outlined or rimmed shapes, rounded corners and joins,
softer contrast, a little jitter in the star's and the cross's proportions), so that the model
learns the shapes rather than one way of drawing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from gradcam_core.regions import Box

__all__ = ["CATEGORIES", "SIZE", "Scene", "Style", "draw_pair", "draw_scene", "grow_box", "random_style", "scene_rng"]

#: The demo model's classes, in output order.
CATEGORIES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
#: Image side in pixels.
SIZE = 128
STAR = CATEGORIES.index("star")
_LUMA = np.array([0.299, 0.587, 0.114])  # an RGB colour's luminance: _LUMA @ rgb


@dataclass(frozen=True)
class Scene:
    """One drawn scene and its ground truth.

    Attributes:
        image: uint8 RGB [SIZE, SIZE, 3].
        shape: index into :data:`CATEGORIES` of the shape drawn.
        box: the shape's bounding box (clipped to the image).
        tag: the tag's box, or ``None`` for an untagged scene.
    """

    image: np.ndarray
    shape: int
    box: Box
    tag: Box | None


@dataclass(frozen=True)
class Style:
    """How a scene is drawn, when not in the classic style.

    Attributes:
        background: "gradient", "flat", "radial", "blotches", "clouds", "stripes" or "grain".
        stops: how many colours the background runs through (2 or 3).
        noise: the standard deviation of the pixel noise over the whole image, in grey levels.
        blur: the Gaussian blur's sigma in pixels, applied last (0: none).
        ink: "fill", "outline" (a hollow shape) or "rim" (filled, with a rim of another colour).
        thickness: the outline's or rim's width, as a fraction of the shape's size.
        corner: the radius of the polygon's rounded corners, as a fraction of its size (0: sharp).
        round_joins: whether an outline's or rim's corners are round rather than mitred.
        contrast: the least luminance difference between the shape and the background.
        clutter: a factor on the number of lines and dots on the background.
        star_inner: the star's inner radius relative to its outer one.
        cross_bar: the cross's bar half-width relative to its arm.
    """

    background: str = "gradient"
    stops: int = 2
    noise: float = 8.0
    blur: float = 0.0
    ink: str = "fill"
    thickness: float = 0.1
    corner: float = 0.0
    round_joins: bool = False
    contrast: float = 45.0
    clutter: float = 1.0
    star_inner: float = 0.42
    cross_bar: float = 0.3


_BACKGROUNDS = ("gradient", "flat", "radial", "blotches", "clouds", "stripes", "grain")


def random_style(rng: np.random.Generator) -> Style:
    """A random drawing style, for training."""
    return Style(
        background=str(rng.choice(_BACKGROUNDS)),
        stops=int(rng.choice([2, 2, 3])),
        noise=float(rng.choice([0.0, rng.uniform(0, 8), rng.uniform(8, 24)])),
        blur=float(rng.uniform(0.3, 1.6)) if rng.uniform() < 0.5 else 0.0,
        ink=str(rng.choice(["fill", "outline", "rim"])),
        thickness=float(rng.uniform(0.04, 0.16)),
        corner=float(rng.uniform(0.02, 0.12)) if rng.uniform() < 0.3 else 0.0,
        round_joins=bool(rng.uniform() < 0.5),
        contrast=float(rng.uniform(28, 60)),
        clutter=float(rng.uniform(0, 2)),
        star_inner=float(rng.uniform(0.36, 0.5)),
        cross_bar=float(rng.uniform(0.22, 0.38)),
    )


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for scene ``index`` of the stream ``seed``."""
    return np.random.default_rng([seed, index])


def draw_scene(
    rng: np.random.Generator,
    shape: int,
    *,
    tagged: bool = False,
    fill: tuple[float, float] = (0.25, 0.60),
    cut: bool = False,
    aspect: float = 1.0,
    style: Style | None = None,
) -> Scene:
    """Draw one scene.

    Args:
        rng: the scene's random generator.
        shape: index into :data:`CATEGORIES`.
        tagged: add the checkerboard tag in a random corner, clear of the shape.
        fill: the range of the shape's size as a fraction of the image side.
        cut: let the shape run a little over the image's edge (as a tight user crop does).
        aspect: stretch the shape horizontally by this factor (a crop resized to a square).
        style: the drawing style; ``None`` for the classic style.
    """
    if style is None:
        background, ink = _palette(rng)
        image = _background(rng, background)
    else:
        background, ink = _palette(rng, style.contrast, style.stops)
        image = _styled_background(rng, background, style)
    tag_box = _tag_box(rng) if tagged else None
    for _ in range(100):  # place the shape clear of the tag
        points, box = _shape_points(rng, shape, fill, cut, aspect, style)
        if tag_box is None or not _overlaps(grow_box(box, 0.1), tag_box, margin=2):
            break
    if style is None:
        _fill(image, shape, points, ink)
    else:
        _ink(rng, image, points, box, ink, style)
    if tag_box is not None:
        _draw_tag(image, tag_box)
    if style is not None:
        image = _finish(rng, image, style)
    return Scene(image, shape, box, tag_box)


def draw_pair(rng: np.random.Generator, left: int, right: int) -> tuple[np.ndarray, Box, Box]:
    """Two different shapes side by side on one background: for class-versus-class maps.

    Returns:
        The image and the two shapes' boxes (left, right).
    """
    background, ink = _palette(rng)
    image = _background(rng, background)
    boxes = []
    for shape, x0 in ((left, 0), (right, SIZE // 2)):
        points, box = _shape_points(rng, shape, (0.3, 0.4), cut=False, aspect=1.0)
        points = points - np.array([box.x, box.y]) + np.array([x0 + (SIZE // 2 - box.w) / 2, (SIZE - box.h) / 2])
        _fill(image, shape, points, ink)
        boxes.append(Box(round(x0 + (SIZE // 2 - box.w) / 2), round((SIZE - box.h) / 2), box.w, box.h))
    return image, boxes[0], boxes[1]


def grow_box(box: Box, fraction: float) -> Box:
    """``box`` grown by ``fraction`` of its own size on every side's total, clipped to the image."""
    dx, dy = box.w * fraction / 2, box.h * fraction / 2
    x0, y0 = max(0, round(box.x - dx)), max(0, round(box.y - dy))
    x1, y1 = min(SIZE, round(box.right + dx)), min(SIZE, round(box.bottom + dy))
    return Box(x0, y0, x1 - x0, y1 - y0)


def _palette(
    rng: np.random.Generator, contrast: float = 45.0, count: int = 2
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """``count`` background colours and a shape colour that stands out from all of them by ``contrast`` in luminance."""
    while True:
        *stops, ink = rng.uniform(0, 255, (count + 1, 3))
        if (
            min(abs(_LUMA @ (ink - c)) for c in stops) > contrast
            and min(np.linalg.norm(ink - c) for c in stops) > 2 * contrast
        ):
            return tuple(stops), ink


def _background(rng: np.random.Generator, colours: tuple[np.ndarray, ...]) -> np.ndarray:
    """A linear gradient at a random angle between the first two colours, with pixel noise, lines and dots."""
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    t = np.clip((np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5, 0, 1)[..., None]
    image: np.ndarray = (1 - t) * colours[0] + t * colours[1]
    image += rng.normal(0, 8, image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(2, 6)):
        p, q = rng.integers(0, SIZE, 2), rng.integers(0, SIZE, 2)
        colour = rng.uniform(0, 255, 3).tolist()
        cv2.line(image, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), colour, 1, cv2.LINE_AA)
    for _ in range(rng.integers(4, 14)):
        c = rng.integers(0, SIZE, 2)
        cv2.circle(image, (int(c[0]), int(c[1])), int(rng.integers(1, 3)), rng.uniform(0, 255, 3).tolist(), -1)
    return image


def _styled_background(rng: np.random.Generator, colours: tuple[np.ndarray, ...], style: Style) -> np.ndarray:
    """A background of ``style.background``'s family through the colours, with lines and dots."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    kind = style.background
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = np.clip(np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5) + 0.5, 0, 1)
    elif kind == "flat":
        t = np.full((SIZE, SIZE), rng.uniform(0, 1))
    elif kind == "radial":
        cx, cy = rng.uniform(0, 1, 2)
        t = np.clip(np.hypot(xx - cx, yy - cy) / rng.uniform(0.5, 1.2), 0, 1)
    elif kind == "blotches":
        cells = int(rng.integers(3, 9))
        low = rng.uniform(0, 1, (cells, cells)).astype(np.float32)
        t = cv2.resize(low, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    elif kind == "clouds":  # value noise: octaves of ever finer random grids
        t = np.zeros((SIZE, SIZE), np.float32)
        for octave in range(int(rng.integers(2, 5))):
            low = rng.uniform(0, 1, (2 ** (octave + 1),) * 2).astype(np.float32)
            t += cv2.resize(low, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC) * 0.55**octave
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == "stripes":
        t = np.zeros((SIZE, SIZE))
        for weight in (1.0, rng.choice([0.0, rng.uniform(0.2, 0.6)])):  # one grating, or two crossed
            angle, period = rng.uniform(0, np.pi), rng.uniform(0.08, 0.7)
            u = np.cos(angle) * xx + np.sin(angle) * yy
            t = t + weight * np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi))
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    else:  # grain: coarse random texture
        grain = rng.uniform(0, 1, (SIZE // 2, SIZE // 2)).astype(np.float32)
        t = cv2.GaussianBlur(cv2.resize(grain, (SIZE, SIZE)), (0, 0), rng.uniform(0.5, 2)).clip(0, 1)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    positions = np.linspace(0, 1, len(colours))
    image: np.ndarray = np.stack([np.interp(t, positions, [c[k] for c in colours]) for k in range(3)], axis=-1)
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(round(rng.integers(2, 6) * style.clutter)):
        p, q = rng.integers(0, SIZE, 2), rng.integers(0, SIZE, 2)
        colour = rng.uniform(0, 255, 3).tolist()
        width = int(rng.integers(1, 3))
        cv2.line(image, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), colour, width, cv2.LINE_AA)
    for _ in range(round(rng.integers(4, 14) * style.clutter)):
        c = rng.integers(0, SIZE, 2)
        cv2.circle(image, (int(c[0]), int(c[1])), int(rng.integers(1, 4)), rng.uniform(0, 255, 3).tolist(), -1)
    return image


def _ink(
    rng: np.random.Generator,
    image: np.ndarray,
    points: np.ndarray,
    box: Box,
    ink: np.ndarray,
    style: Style,
) -> None:
    """Paint the shape in ``style.ink``: filled, hollow, or filled with a rim of another colour."""
    fixed = [np.round(points * 16).astype(np.int32)]
    width = max(2, round(style.thickness * max(box.w, box.h)))
    if style.ink in ("fill", "rim"):
        cv2.fillPoly(image, fixed, ink.tolist(), cv2.LINE_AA, shift=4)
    if style.ink == "outline":
        _stroke(image, fixed, ink, width, style.round_joins)
    elif style.ink == "rim":
        while True:  # any colour that stands apart from the ink
            rim = rng.uniform(0, 255, 3)
            if abs(_LUMA @ (rim - ink)) > 40:
                break
        _stroke(image, fixed, rim, max(1, round(width * rng.uniform(0.4, 1.0))), style.round_joins)


def _stroke(image: np.ndarray, fixed: Sequence[np.ndarray], colour: np.ndarray, width: int, round_joins: bool) -> None:
    """The closed outline ``fixed`` (one polygon, 1/16-pixel points) stroked ``width`` wide, round joins if asked."""
    cv2.polylines(image, fixed, True, colour.tolist(), width, cv2.LINE_AA, shift=4)
    if round_joins and width > 2:
        for x, y in fixed[0]:
            cv2.circle(image, (int(x), int(y)), width * 8, colour.tolist(), -1, cv2.LINE_AA, shift=4)


def _finish(rng: np.random.Generator, image: np.ndarray, style: Style) -> np.ndarray:
    """Pixel noise over the whole image, then the blur."""
    out = image.astype(np.float32)
    if style.noise > 0:
        out += rng.normal(0, style.noise, out.shape).astype(np.float32)
    if style.blur > 0:
        out = cast(npt.NDArray[np.float32], cv2.GaussianBlur(out, (0, 0), style.blur))  # float32 in, float32 out
    return np.clip(out, 0, 255).astype(np.uint8)


def _unit_outline(shape: int, style: Style | None = None) -> np.ndarray:
    """The shape's outline as points in [-1, 1]², or a circle's 64-gon."""
    name = CATEGORIES[shape]
    if name == "circle":
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    if name == "square":
        return cast(np.ndarray, np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) / np.sqrt(2) * 1.35)  # numpy: Any
    if name == "triangle":
        t = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(t), -np.sin(t)], axis=1)
    if name == "star":
        t = np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42 if style is None else style.star_inner)
        return np.stack([r * np.cos(t), -r * np.sin(t)], axis=1)
    a = 0.3 if style is None else style.cross_bar  # cross: a plus sign of bar half-width a
    return np.array(
        [[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1], [-a, a], [-1, a], [-1, -a], [-a, -a]],
        float,
    )


def _shape_points(
    rng: np.random.Generator,
    shape: int,
    fill: tuple[float, float],
    cut: bool,
    aspect: float,
    style: Style | None = None,
) -> tuple[np.ndarray, Box]:
    """A rotated, scaled, placed outline and its clipped bounding box."""
    outline = _unit_outline(shape, style)
    if style is not None and style.corner > 0 and CATEGORIES[shape] != "circle":
        outline = _round_corners(outline, style.corner * 2)
    angle = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = outline @ rot.T * np.array([aspect, 1.0])
    span = pts.max(axis=0) - pts.min(axis=0)
    side = rng.uniform(*fill) * SIZE
    pts = (pts - pts.min(axis=0)) * (side / span.max())
    extent = pts.max(axis=0)
    slack = extent * 0.15 if cut else np.zeros(2)
    low, high = -slack, SIZE - extent + slack
    offset = rng.uniform(np.minimum(low, high), np.maximum(low, high))
    pts = pts + offset
    x0, y0 = np.clip(pts.min(axis=0), 0, SIZE)
    x1, y1 = np.clip(pts.max(axis=0), 0, SIZE)
    return pts, Box(
        int(np.floor(x0)),
        int(np.floor(y0)),
        max(1, int(np.ceil(x1 - np.floor(x0)))),
        max(1, int(np.ceil(y1 - np.floor(y0)))),
    )


def _round_corners(points: np.ndarray, radius: float) -> np.ndarray:
    """A closed polygon with each corner replaced by a quadratic curve starting ``radius`` before it."""
    out = []
    for i, corner in enumerate(points):
        before, after = points[i - 1], points[(i + 1) % len(points)]
        a = corner + (before - corner) * min(0.5, radius / np.linalg.norm(before - corner))
        b = corner + (after - corner) * min(0.5, radius / np.linalg.norm(after - corner))
        for t in np.linspace(0, 1, 5):
            out.append((1 - t) ** 2 * a + 2 * (1 - t) * t * corner + t**2 * b)
    return np.array(out)


def _fill(image: np.ndarray, shape: int, points: np.ndarray, ink: np.ndarray) -> None:
    """Paint the outline, filled and anti-aliased, with sub-pixel precision."""
    fixed = [np.round(points * 16).astype(np.int32)]
    cv2.fillPoly(image, fixed, ink.tolist(), cv2.LINE_AA, shift=4)


def _tag_box(rng: np.random.Generator) -> Box:
    """A square 12–16 % of the image side, a few pixels in from a random corner."""
    side = round(rng.uniform(0.12, 0.16) * SIZE / 4) * 4  # a multiple of 4: crisp cells
    margin = int(rng.integers(2, 6))
    right, bottom = rng.integers(0, 2, 2)
    x = SIZE - side - margin if right else margin
    y = SIZE - side - margin if bottom else margin
    return Box(int(x), int(y), side, side)


def _draw_tag(image: np.ndarray, box: Box) -> None:
    """A 4×4 black-and-white checkerboard filling ``box``."""
    cell = box.w // 4
    for i in range(4):
        for j in range(4):
            value = 255 if (i + j) % 2 == 0 else 0
            image[box.y + i * cell : box.y + (i + 1) * cell, box.x + j * cell : box.x + (j + 1) * cell] = value


def _overlaps(a: Box, b: Box, margin: int = 0) -> bool:
    """Whether two boxes overlap, with ``margin`` pixels of clearance."""
    return not (
        a.right + margin <= b.x or b.right + margin <= a.x or a.bottom + margin <= b.y or b.bottom + margin <= a.y
    )

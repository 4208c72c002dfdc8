"""The board: panels pinned from any page, shown side by side and exported as one PNG."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gradcam_core import overlay
from gradcam_core.preprocess import describe
from ui import state
from ui.compute import Explanation
from ui.images import ImageEntry
from ui.models import CUSTOM_PREFIX, YourModel, cached_model, display_name

_THUMB = 512
#: The captions' font: DejaVu Sans, bundled (with its licence) so every machine draws "×" and "·" alike.
FONT_FILE = Path(__file__).parent / "fonts" / "DejaVuSans.ttf"


@functools.cache
def caption_font(size: int = 13) -> ImageFont.FreeTypeFont:
    """The font of the board's captions."""
    return ImageFont.truetype(str(FONT_FILE), size)


@dataclass(frozen=True)
class Panel:
    """A pinned heat-map with everything needed to redraw and label it.

    Attributes:
        image_name: the image's file name.
        image: the full image, downscaled to at most 512 px a side.
        heat: the map in ``image``'s frame (zero outside the explained region).
        crop: the crop or erased box in original-image pixels, if any.
        erase: the erase fill, when the box was erased instead of cropped.
        model: the model's name (with "(untrained)" for random weights).
        layer: the target layer.
        method: the method's name.
        class_name: the explained class (or view, such as "against star").
        probability: the model's probability for that class.
        raw: the raw map at the layer's resolution.
        image_key: the image's content hash (a prefix of its SHA-256).
        weights: the weights file (or "random"); an uploaded file by the name it was uploaded with.
        weights_sha256: that file's SHA-256.
        preprocess: the preprocessing, in words (see :func:`gradcam_core.preprocess.describe`).
        top5: the five most probable classes and their probabilities.
        frame_size: the (width, height) of the image ``crop`` is measured in.
    """

    image_name: str
    image: Image.Image
    heat: np.ndarray
    crop: tuple[int, int, int, int] | None
    erase: str | None
    model: str
    layer: str
    method: str
    class_name: str
    probability: float
    raw: np.ndarray
    image_key: str
    weights: str
    weights_sha256: str | None
    preprocess: str
    top5: tuple[tuple[str, float], ...]
    frame_size: tuple[int, int]

    def caption(self) -> str:
        """A one-line label with the panel's full provenance."""
        region = "full image"
        if self.crop is not None:
            x, y, w, h = self.crop
            region = f"{'erased (' + self.erase + ')' if self.erase else 'crop'} {w}×{h} at ({x}, {y})"
        return (
            f"{self.image_name} · {region} · {self.model} · {self.layer} · {self.method} · "
            f"{self.class_name} ({self.probability:.1%})"
        )


def weights_name(model_name: str, weights: str) -> str:
    """How a model's weights file is named in panels and reports: an upload by its own file name.

    An uploaded file lives on the server under its hash, a path that means nothing to the reader.
    """
    if model_name.startswith(CUSTOM_PREFIX):
        return f"{YourModel.parse(model_name).file} (uploaded)"
    return weights


def make_panel(
    entry: ImageEntry,
    heat: np.ndarray,
    exp: Explanation,
    k: int,
    label: str,
    model_name: str,
    layer: str,
    method: str,
    crop: tuple[int, int, int, int] | None = None,
    erase: str | None = None,
) -> Panel:
    """A panel for map ``k`` of ``exp``; ``heat`` is that map in the full image's frame."""
    loaded = cached_model(model_name)
    thumb = entry.image.copy()
    thumb.thumbnail((_THUMB, _THUMB))
    small = np.asarray(Image.fromarray(heat.astype(np.float32)).resize(thumb.size, Image.Resampling.BILINEAR))
    cls = exp.classes[k]
    return Panel(
        image_name=entry.name,
        image=thumb,
        heat=small,
        crop=crop,
        erase=erase,
        model=display_name(model_name) + ("" if loaded.trained else " (untrained)"),
        layer=layer,
        method=method,
        class_name=label,
        probability=float(exp.probabilities[cls]),
        raw=exp.maps[k],
        image_key=entry.key,
        weights=weights_name(model_name, loaded.weights),
        weights_sha256=loaded.weights_sha256,
        preprocess=describe(loaded.preprocess),
        top5=tuple((loaded.categories[i], float(exp.probabilities[i])) for i in exp.top(5)),
        frame_size=entry.image.size,
    )


def pin(panel: Panel) -> None:
    """Add a panel to this session's board."""
    state.get(state.BOARD, []).append(panel)


def panels() -> list[Panel]:
    """The pinned panels, oldest first."""
    return state.get(state.BOARD, [])


def render(panel: Panel, alpha: float, cmap: str, vmax: float | None) -> Image.Image:
    """The panel's overlay, on its own scale or a shared one."""
    return overlay(panel.image, panel.heat, alpha=alpha, colormap=cmap, vmax=vmax)


def sheet(pictures: list[Image.Image], captions: list[str], columns: int = 3, cell: int = 360) -> Image.Image:
    """All panels on one white sheet, each with its caption underneath (for the PNG download).

    The grid has as many columns as panels, up to ``columns``, so no column is left empty.
    """
    font = caption_font()
    columns = max(1, min(columns, len(pictures)))
    rows = (len(pictures) + columns - 1) // columns
    text_h = 70
    out = Image.new("RGB", (columns * (cell + 16) + 16, max(rows, 1) * (cell + text_h + 16) + 16), "white")
    draw = ImageDraw.Draw(out)
    for i, (pic, caption) in enumerate(zip(pictures, captions, strict=True)):
        x0 = 16 + (i % columns) * (cell + 16)
        y0 = 16 + (i // columns) * (cell + text_h + 16)
        pic = pic.copy()
        pic.thumbnail((cell, cell))
        out.paste(pic, (x0, y0))
        lines, line = [], ""
        for word in caption.split(" "):
            if draw.textlength(f"{line} {word}", font=font) > cell and line:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
        for j, text in enumerate(lines[:4]):
            draw.text((x0, y0 + pic.height + 4 + j * 16), text, fill="black", font=font)
    return out

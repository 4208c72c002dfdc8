"""The board: panels pinned from any page, shown side by side and exported as one PNG."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gradcam_core import overlay
from gradcam_core.boxscore import BoxScores
from ui import state
from ui.compute import Explanation, edited
from ui.images import ImageEntry

_THUMB = 512
#: The captions' font: DejaVu Sans, bundled (with its licence) so every machine draws "×" and "·" alike.
FONT_FILE = Path(__file__).parent / "fonts" / "DejaVuSans.ttf"


def counted(n: int) -> str:
    """``n`` panels in words: "1 panel", "3 panels"."""
    return f"{n} panel{'' if n == 1 else 's'}"


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
        smoothing: how the map was smoothed, in words with its cost ("none" when not).
        grid: the grid this panel was pinned with, as one panel (its name), or ``None``.
        box_scores: the map's scores against the object box drawn (on Explain when it was
            pinned, or on the board since): ``box``, ``pointing``, ``energy``, ``chance``; or ``None``.
        region: where the model's input lies in the frame (``frame_size``) pixels: what the map covers.
        uid: the panel's own id, for the widgets drawn per panel.
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
    smoothing: str = "none"
    grid: str | None = None
    box_scores: dict[str, Any] | None = None
    region: tuple[int, int, int, int] | None = None
    uid: str = field(default_factory=lambda: secrets.token_hex(6))

    def caption(self) -> str:
        """A one-line label with the panel's full provenance."""
        region = "full image"
        if self.crop is not None:
            x, y, w, h = self.crop
            region = f"{'erased (' + self.erase + ')' if self.erase else 'crop'} {w}×{h} at ({x}, {y})"
        smoothed = "" if self.smoothing == "none" else f" · smoothing: {self.smoothing}"
        scored = ""
        if self.box_scores is not None:
            scored = f" · {BoxScores.from_record(self.box_scores).describe()}"
        return (
            f"{self.image_name} · {region} · {self.model} · {self.layer} · {self.method}{smoothed} · "
            f"{self.class_name} ({self.probability:.1%}){scored}"
        )


def make_panel(entry: ImageEntry, exp: Explanation, k: int, label: str) -> Panel:
    """A panel for map ``k`` of ``exp``, an explanation of ``entry``'s image; ``label`` names what the map shows.

    After an erase the panel shows the erased image, which is what the model saw.
    """
    edit = exp.edit
    shown = edited(entry, edit) if edit is not None and edit.fill else entry.image
    thumb = shown.copy()
    thumb.thumbnail((_THUMB, _THUMB))
    heat = exp.full_map(k, entry.image.size)
    small = np.asarray(Image.fromarray(heat.astype(np.float32)).resize(thumb.size, Image.Resampling.BILINEAR))
    info = exp.model
    return Panel(
        image_name=entry.name,
        image=thumb,
        heat=small,
        crop=None if edit is None else edit.box,
        erase=None if edit is None else edit.fill,
        model=info.label,
        layer=exp.settings.layer,
        method=exp.settings.method,
        class_name=label,
        probability=float(exp.probabilities[exp.classes[k]]),
        raw=exp.maps[k],
        image_key=entry.key,
        weights=info.weights,
        weights_sha256=info.weights_sha256,
        preprocess=info.preprocess,
        top5=tuple((info.categories[i], float(exp.probabilities[i])) for i in exp.top(5)),
        frame_size=entry.image.size,
        smoothing=exp.smoothing,
        region=(exp.region.x, exp.region.y, exp.region.w, exp.region.h),
    )


def panels() -> list[Panel]:
    """The pinned panels, oldest first."""
    return state.board()


def cell_caption(panel: Panel) -> str:
    """A grid cell's short label: what differs between cells (layer, method, class) and its box scores."""
    scored = ""
    if panel.box_scores is not None:
        scored = f" · {BoxScores.from_record(panel.box_scores).describe()}"
    return f"{panel.method} · {panel.layer} · {panel.class_name} ({panel.probability:.1%}){scored}"


def groups(panels: list[Panel]) -> list[list[int]]:
    """The board's panels as shown: a grid pinned as one panel is one group (of its cells' indices)."""
    out: list[list[int]] = []
    for i, panel in enumerate(panels):
        if panel.grid is not None and out and panels[out[-1][0]].grid == panel.grid:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def crop_pairs(panels: list[Panel]) -> list[tuple[int, int]]:
    """(before, after) indices of crop pairs: a panel of a cropped or erased region after a full-image one.

    The before is the latest earlier full-image panel of the same image, model, layer and method;
    panels pinned in a grid are not paired.
    """
    out = []
    for j, after in enumerate(panels):
        if after.crop is None or after.grid is not None:
            continue
        same = (after.image_key, after.model, after.layer, after.method)
        befores = [i for i in range(j) if panels[i].crop is None and panels[i].grid is None
                   and (panels[i].image_key, panels[i].model, panels[i].layer, panels[i].method) == same]  # fmt: skip
        if befores:
            out.append((befores[-1], j))
    return out


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

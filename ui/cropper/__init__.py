"""The crop box: drawn over the image in the browser, or typed as numbers, and the same box either way.

The box lives in ``state.CROP`` per image, in whole image pixels; an object box drawn to score maps
against (``slot="object"``) lives in ``state.OBJECT_BOX`` the same way, drawn as an outline only.
The frontend (``frontend/``, see ``NOTICE``) draws it and sends back ``{"box": [x, y, w, h], "revision": r}``
when the user lets go of a drag. It redraws from its arguments only when ``revision`` changes, which
happens here only when the box is typed or reset (``state.CROP_REVISION``): a drag's own echo never
moves the drawn box, and a drag made before the box was typed (an older revision) is ignored.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import streamlit as st
import streamlit.components.v1 as components
from PIL import Image

from gradcam_core import Box, clamp_box
from ui import state

_FRONTEND = Path(__file__).resolve().parent / "frontend"
_component = components.declare_component("box_cropper", path=str(_FRONTEND))

COLOUR = "#d9480f"
_FIELDS = ((state.W_CROP_X, "x"), (state.W_CROP_Y, "y"), (state.W_CROP_W, "w"), (state.W_CROP_H, "h"))
_PNG_LIMIT = 200_000  # bytes; a larger picture is sent as a JPEG


def whole(image: Image.Image) -> Box:
    """The box that covers all of ``image``."""
    return Box(0, 0, *image.size)


def _boxes(slot: str) -> dict[str, Box]:
    return state.crops() if slot == "crop" else state.object_boxes()


def _revisions(slot: str) -> dict[str, int]:
    return state.crop_revisions() if slot == "crop" else state.object_revisions()


def _key(key: str, slot: str) -> str:
    return key if slot == "crop" else f"{key}.{slot}"


def saved_box(image_key: str, image: Image.Image, slot: str = "crop") -> Box:
    """The box remembered for this image (the whole image at first)."""
    return _boxes(slot).get(image_key) or whole(image)


def set_box(image_key: str, box: Box, slot: str = "crop") -> None:
    """Remember ``box`` for this image and have the drawn box follow it (typed or reset, not dragged)."""
    _boxes(slot)[image_key] = box
    revisions = _revisions(slot)
    revisions[image_key] = revisions.get(image_key, 0) + 1


def from_value(value: Any, revision: int, size: tuple[int, int]) -> Box | None:
    """The box a drag sent, if it was made on the current revision of the box (else ``None``)."""
    if not isinstance(value, dict) or value.get("revision") != revision:
        return None
    try:
        x, y, w, h = (float(v) for v in value["box"])
        return clamp_box((x, y, w, h), size)
    except (KeyError, TypeError, ValueError):
        return None


def picture(image: Image.Image, width: int) -> str:
    """``image`` as a data URL, no wider than ``width`` (the browser enlarges a smaller one itself)."""
    if image.width > width:
        image = image.resize((width, max(1, round(image.height * width / image.width))), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", optimize=False)
    kind = "png"
    if buffer.tell() > _PNG_LIMIT:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
        kind = "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode()


def crop_box(
    image_key: str, image: Image.Image, mode: str = "crop", display_width: int = 460, slot: str = "crop"
) -> Box:
    """Draw the box over ``image`` and return the box chosen (then call :func:`box_fields` with it).

    Args:
        image_key: the image's key (the box is remembered per image).
        image: the image, at the resolution the box is measured in.
        mode: "crop" shades what the crop drops, "erase" hatches what the erase hides, "object"
            draws the outline only.
        display_width: the drawn image's width in CSS pixels (at most four times the image's own width).
        slot: ``"crop"`` (the crop or erase box), or ``"object"`` (an object's box, to score maps).
    """
    saved = saved_box(image_key, image, slot)
    revision = _revisions(slot).get(image_key, 0)
    shown_width = round(image.width * min(4.0, display_width / image.width))
    value = _component(
        image=picture(image, shown_width),
        width=image.width,
        height=image.height,
        display_width=shown_width,
        box=list(saved),
        revision=revision,
        colour=COLOUR,
        mode=mode,
        key=_key(f"{state.W_CROPPER}.{image_key}", slot),
        default=None,
    )
    box = from_value(value, revision, image.size) or saved
    _boxes(slot)[image_key] = box
    return box


def box_fields(image_key: str, image: Image.Image, box: Box, slot: str = "crop") -> None:
    """Number fields for x, y, w and h, and a reset button, that show ``box`` and set it when edited."""
    width, height = image.size
    fields = [(_key(key, slot), name) for key, name in _FIELDS]
    for key, name in fields:
        st.session_state[key] = getattr(box, name)  # before the fields are drawn: they show the box drawn

    def typed() -> None:
        x, y, w, h = (int(st.session_state[key]) for key, _ in fields)
        set_box(image_key, clamp_box((min(x, width - 1), min(y, height - 1), w, h), image.size), slot)

    limits = {"x": (0, width - 1), "y": (0, height - 1), "w": (1, width), "h": (1, height)}
    helps = {"x": "left edge", "y": "top edge", "w": "width", "h": "height"}
    columns = st.columns(4)
    for column, (key, name) in zip(columns, fields, strict=True):
        low, high = limits[name]
        column.number_input(
            name, min_value=low, max_value=high, step=1, key=key, on_change=typed,
            help=f"The box's {helps[name]}, in pixels of the {width}×{height} image.",
        )  # fmt: skip
    st.button(
        "Reset to whole image" if slot == "crop" else "Clear the box",
        key=_key(state.W_CROP_RESET, slot),
        on_click=set_box,
        args=(image_key, whole(image), slot),
        disabled=box == whole(image),
    )

"""The sidebar's image pickers in the real Streamlit runtime: one current image, shown by every widget."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.test_app import image_uploader, ok, pick_sample, start
from ui import state


def shown(at: AppTest) -> str:
    """The file name the page explains (from its caption)."""
    return at.caption[0].value.split("**")[1].replace("\\", "")


def photo(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def assert_in_step(at: AppTest, name: str, sample: str | None) -> None:
    """The page, the sample picker and the image picker all name the same image."""
    entries = at.session_state[state.IMAGES]
    assert shown(at) == name
    assert at.selectbox(key=state.W_SAMPLE).value == sample
    picker = at.selectbox(key=state.W_IMAGE)
    assert entries[picker.value].name == name, (entries[picker.value].name, name)
    assert picker.value == at.session_state[state.CURRENT]


def test_picking_samples_one_after_another_keeps_the_image_picker_in_step() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "circle.png")
    at = pick_sample(at, "cross.png")
    at = pick_sample(at, "square.png")
    assert_in_step(at, "square.png", "square")
    # Picking an earlier image in the image picker shows it, and the sample picker follows.
    circle = next(k for k, e in at.session_state[state.IMAGES].items() if e.name == "circle.png")
    at.selectbox(key=state.W_IMAGE).select(circle).run()
    assert_in_step(ok(at), "circle.png", "circle")
    at.selectbox(key=state.W_IMAGE).select(
        next(k for k, e in at.session_state[state.IMAGES].items() if e.name == "cross.png")
    ).run()
    assert_in_step(ok(at), "cross.png", "cross")


def test_an_upload_after_samples_becomes_the_image_every_widget_shows() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    at = pick_sample(at, "star.png")
    image_uploader(at).upload("elephant.jpg", photo(), "image/jpeg").run()
    assert_in_step(ok(at), "elephant.jpg", None)
    # Back to a sample, then to the upload through the image picker; then across pages.
    at = pick_sample(at, "star.png")
    assert_in_step(at, "star.png", "star")
    upload = next(k for k, e in at.session_state[state.IMAGES].items() if e.name == "elephant.jpg")
    at.selectbox(key=state.W_IMAGE).select(upload).run()
    assert_in_step(ok(at), "elephant.jpg", None)
    at.switch_page("pages/2_Crop_and_Compare.py").run()
    assert ok(at).selectbox(key=state.W_SAMPLE).value is None
    assert at.selectbox(key=state.W_IMAGE).value == upload

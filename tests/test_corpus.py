"""The bad-and-odd file corpus through the core and through the app's uploader."""

from __future__ import annotations

import re

import pytest

from gradcam_core import ImageError, load_image
from tests.corpus import Case, cases
from tests.test_app import image_uploader, ok, start
from ui import state
from ui.text import plain_text

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_core(case: Case) -> None:
    if case.error:
        with pytest.raises(ImageError, match=case.error) as refused:
            load_image(case.data)
        # What was wrong, then what to do next: every refusal ends with the remedy.
        assert re.search(r"[:;] (choose|use|re-export|downscale|save) [^:;]+$", str(refused.value)), str(refused.value)
        return
    img = load_image(case.data)
    assert img.mode == "RGB" and img.size == case.size
    if case.pixel:
        assert img.getpixel((img.width // 2, img.height // 2)) == case.pixel


def test_uploader_lists_the_bad_and_keeps_the_odd() -> None:
    at = start("pages/1_Explain.py")
    uploader = image_uploader(at)
    for case in CASES:
        uploader.upload(case.name, case.data, "application/octet-stream")
    at.run()
    errors = [e.value for e in ok(at).error]
    for case in CASES:
        shown = [e for e in errors if f"**{plain_text(case.name)}**" in e]
        if case.error:
            assert len(shown) == 1 and case.error in shown[0], (case.name, shown)
        else:
            assert shown == [], (case.name, shown)
    # Every upload that decodes is kept, beside the sample a new session starts with.
    kept = {entry.name: entry for entry in at.session_state[state.IMAGES].values() if entry.sample is None}
    for case in CASES:
        if case.error is None:
            assert kept[case.name].image.mode == "RGB" and kept[case.name].image.size == case.size
    assert len(kept) == sum(c.error is None for c in CASES)

"""Looking deeper, in Chromium, as a person would: a real photo with an elephant and a zebra, the real
EfficientNet-Lite0, an object box drawn by dragging its handles, a grid of classes scored against it, and
Guided Grad-CAM's pixel view. Writes 10_grid.png and 11_guided.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gradcam_core import load_image, load_model
from gradcam_core.boxscore import box_scores
from gradcam_core.cam import compute_cam
from gradcam_core.regions import Box
from tests.browser import (
    ARGS,
    CHROMIUM,
    choose,
    require_browser,
    screenshot,
    settle,
    streamlit_server,
    upload_on_explain,
    watched_page,
)
from tests.test_browser import CROPPER

pytestmark = pytest.mark.browser
SCORE = re.compile(r"peak (in|outside) the box · (\d+)% of the map in the box \(chance (\d+)%, ×([\d.]+)\)")


def test_an_object_box_scores_a_classes_grid_on_a_real_photo(tmp_path: Path, shots: Path, shared_images: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    photo = shared_images / "elephant_zebra.jpg"
    with streamlit_server(tmp_path / "streamlit.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, external, errors = watched_page(browser, height=1300)
        upload_on_explain(page, base, photo)
        expect(page.get_by_text("Original (225×225)")).to_be_visible(timeout=60_000)
        settle(page)

        # The object box: its handles dragged, twice, onto the zebra, as a person does.
        page.get_by_text("Score the maps against the object's box").click()
        settle(page)
        frame = page.frame_locator(CROPPER)
        image = frame.locator("#image")
        expect(image).to_be_visible(timeout=30_000)

        def screen(x: float, y: float) -> tuple[float, float]:
            rect = image.bounding_box()
            assert rect is not None
            s = rect["width"] / 225
            return rect["x"] + x * s, rect["y"] + y * s

        def drag(start: tuple[float, float], end: tuple[float, float]) -> None:
            page.mouse.move(*screen(*start))
            page.mouse.down()
            page.mouse.move(*screen(*end), steps=15)
            page.mouse.up()
            settle(page)

        drag((224, 224), (80, 178))  # the bottom-right handle, in to the zebra's right and feet
        drag((1, 1), (2, 84))  # the top-left handle, down to the zebra's head
        fields = [int(page.get_by_role("spinbutton", name=n, exact=True).input_value()) for n in "xywh"]
        x, y, w, h = fields
        assert abs(x - 2) <= 2 and abs(y - 84) <= 2 and abs(x + w - 80) <= 2 and abs(y + h - 178) <= 2, fields
        drawn = frame.locator("#box").bounding_box()
        rect = image.bounding_box()
        assert drawn is not None and rect is not None
        s = rect["width"] / 225
        on_screen = (
            (drawn["x"] - rect["x"]) / s,
            (drawn["y"] - rect["y"]) / s,
            drawn["width"] / s,
            drawn["height"] / s,
        )
        assert all(abs(a - b) <= 1.5 for a, b in zip(on_screen, fields, strict=True)), (on_screen, fields)

        # The scores the page shows are those of the box it used, on the real model.
        loaded = load_model("efficientnet_lite0")
        picture = load_image(photo)
        cam = compute_cam(loaded.model, loaded.preprocess(picture)[None], loaded.default_layer)
        want = box_scores(cam.maps[0, 0], Box(x, y, w, h), loaded.input_region(picture.size), picture.size)
        shown = page.get_by_text(re.compile(r"^Object box: ")).inner_text()
        match = SCORE.search(shown)
        assert match, shown
        assert (match[1] == "in") == want.pointing
        assert int(match[2]) == round(100 * want.energy) and int(match[3]) == round(100 * want.chance), (shown, want)

        # The top-5 classes as a grid, ranked by the share of each map in the zebra's box: zebra first.
        choose(page, "Grid", "Compare classes (the top 5)")
        settle(page)
        ranking = page.get_by_text("Ranked by the share of the map inside the object box")
        expect(ranking).to_be_visible(timeout=60_000)
        table = page.locator('[data-testid="stDataFrame"]').last
        table.locator("canvas").first.wait_for(timeout=30_000)
        captions = page.locator('[data-testid="stImageCaption"]', has_text="% of the map in the box")
        expect(captions).to_have_count(5, timeout=30_000)
        energies = {}
        for text in captions.all_inner_texts():
            name = text.split(" · ")[0]
            energies[name] = int(SCORE.search(text)[2])  # type: ignore[index]
        assert max(energies, key=energies.__getitem__) == "zebra", energies
        assert energies["zebra"] > 2 * energies["African elephant"], energies
        assert page.locator('[data-testid="stException"]').count() == 0
        screenshot(page, shots / "10_grid.png")

        # Guided Grad-CAM: the pixel-resolution views beside the coarse map.
        choose(page, "Method", "Guided Grad-CAM (Selvaraju et al., ICCV 2017)")
        settle(page)
        expect(page.get_by_text("Guided Grad-CAM at 224×224")).to_be_visible(timeout=60_000)
        page.get_by_text("absolute (largest magnitude over colour channels", exact=False).click()
        settle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        screenshot(page, shots / "11_guided.png")
        browser.close()
    assert not external, f"requests left the machine: {external}"
    assert not errors, errors

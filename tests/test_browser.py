"""One real journey in Chromium: a sample fooled by its tag, cropped, compared, and pinned to the board."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from gradcam_core.demo.model import SAMPLES_DIR
from tests.browser import ARGS, CHROMIUM, require_browser, screenshot, settle, streamlit_server, watched_page

pytestmark = pytest.mark.browser
TAGGED = "tagged_circle_called_star.png"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR", tmp_path / "shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_tag_crop_journey(tmp_path: Path, shots: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    meta = json.loads((SAMPLES_DIR / "manifest.json").read_text())[TAGGED]
    with streamlit_server(tmp_path / "streamlit.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, external, errors = watched_page(browser)

        def no_exception() -> None:
            boxes = page.locator('[data-testid="stException"]')
            assert boxes.count() == 0, boxes.all_inner_texts()

        def nav(label: str) -> None:
            page.locator('[data-testid="stSidebarNav"] a', has_text=label).click()
            settle(page)
            no_exception()

        page.goto(base)
        page.get_by_text("Grad-CAM Explorer").first.wait_for()
        settle(page)
        screenshot(page, shots / "01_home.png")

        nav("Crop and Compare")
        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]', has_text="Sample image").click()
        page.get_by_role("option", name="tagged circle called star").click()
        expect(page.get_by_text("top-1 unchanged: star")).to_be_visible(timeout=60_000)
        settle(page)
        no_exception()
        screenshot(page, shots / "03_crop_before.png")

        # Drag the corner nearest the tag in to the shape's box (grown a little): the tag is cut off.
        frame = page.frame_locator('iframe[title="streamlit_cropper.st_cropper"]')
        canvas = frame.locator("canvas.upper-canvas")
        canvas.wait_for()
        c = canvas.bounding_box()
        assert c is not None
        scale = c["width"] / 128
        x, y, w, h = meta["boxes"][0]
        tx, ty = meta["tag"][:2]
        left, top = tx < 64, ty < 64
        corner = (c["x"] + (1 if left else c["width"] - 1), c["y"] + (1 if top else c["height"] - 1))
        gx = (x - 4 if left else x + w + 4) * scale
        gy = (y - 4 if top else y + h + 4) * scale
        page.mouse.move(*corner)
        page.mouse.down()
        page.mouse.move(c["x"] + gx, c["y"] + gy, steps=12)
        page.mouse.up()
        expect(page.get_by_text("top-1 changed: star")).to_be_visible(timeout=60_000)
        summary = page.get_by_text("top-1 changed: star").inner_text()
        assert "→ circle" in summary, summary
        settle(page)
        no_exception()
        # Both sides show the maps of the class predicted before and the one predicted after.
        for caption in ("star (predicted before)", "circle (predicted after)"):
            assert page.get_by_text(caption).count() == 2, caption
        screenshot(page, shots / "04_crop_after.png")

        page.get_by_role("button", name="Pin before to board").click()
        expect(page.get_by_text("Pinned before (1 panels on the board).")).to_be_visible(timeout=60_000)
        settle(page)
        page.get_by_role("button", name="Pin after to board").click()
        expect(page.get_by_text("Pinned after (2 panels on the board).")).to_be_visible(timeout=60_000)
        settle(page)
        nav("Board")
        expect(page.get_by_text("2 panels · normalisation: per panel")).to_be_visible(timeout=60_000)
        assert page.get_by_text("tagged_circle_called_star.png · full image").count() == 1
        assert page.get_by_text("tagged_circle_called_star.png · crop").count() == 1
        screenshot(page, shots / "05_board.png")
        for label, check in (
            ("Download report (HTML)", lambda data: b"<h1>Grad-CAM board</h1>" in data and b"data:image/png" in data),
            ("Download data (ZIP)", lambda data: data.startswith(b"PK")),
        ):
            with page.expect_download(timeout=60_000) as download:
                page.get_by_role("button", name=label).click()
            assert check(Path(download.value.path()).read_bytes()), label

        nav("Explain")
        expect(page.get_by_text("Raw map at the layer: 16×16")).to_be_visible(timeout=60_000)
        screenshot(page, shots / "02_explain.png")
        nav("Misclassifications")
        screenshot(page, shots / "06_misclassifications.png")
        browser.close()
    assert not external, f"requests left the machine: {external}"
    assert not errors, errors


def test_your_torchscript_model_in_the_browser(tmp_path: Path, shots: Path) -> None:
    """Upload the demo network compiled to TorchScript, with its labels and preprocessing, and explain."""
    require_browser()
    import warnings

    import torch
    from playwright.sync_api import expect, sync_playwright

    from gradcam_core import load_model
    from gradcam_core.demo.world import CATEGORIES

    model_file, labels_file = tmp_path / "shapes_scripted.pt", tmp_path / "shapes.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.14
        torch.jit.script(load_model("shapes-demo").model).save(str(model_file))
    labels_file.write_text("\n".join(CATEGORIES) + "\n")
    with streamlit_server(tmp_path / "streamlit.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, external, errors = watched_page(browser, height=1300)
        page.goto(f"{base}/Explain")
        side = page.locator('[data-testid="stSidebar"]')
        side.get_by_text("Your model").click()
        settle(page)
        uploads = side.locator('[data-testid="stFileUploaderDropzoneInput"]')
        uploads.nth(0).set_input_files(str(model_file))
        uploads.nth(1).set_input_files(str(labels_file))
        for upload in (model_file, labels_file):  # each upload has reached the server
            expect(side.get_by_text(upload.name, exact=True)).to_be_visible(timeout=60_000)
        settle(page)
        for label, value in (("Input height", "128"), ("Input width", "128"), ("Std (R, G, B)", "0.25")):
            side.get_by_label(label).fill(value)
            side.get_by_label(label).press("Enter")
            settle(page)
        side.get_by_text("Resize the shorter side, then crop the centre").click()
        side.get_by_label("Mean (R, G, B)").fill("0.5, 0.5, 0.5")
        side.get_by_label("Mean (R, G, B)").press("Enter")
        settle(page)
        side.get_by_role("button", name="Load model").click()
        settle(page)
        model_box = side.locator('[data-testid="stSelectbox"]', has_text="Model").get_by_role("combobox")
        loaded_name = re.compile(r"^shapes_scripted\.pt \(TorchScript [0-9a-f]{8}\)$")
        expect(model_box).to_have_value(loaded_name, timeout=60_000)
        side.get_by_text("Your model").click()  # fold it away again
        settle(page)
        side.locator('[data-testid="stSelectbox"]', has_text="Sample image").click()
        page.get_by_role("option", name="tagged circle called star").click()
        # The compiled demo network is fooled by the tag as the original is, and its layers are listed.
        expect(page.get_by_text("Raw map at the layer: 16×16")).to_be_visible(timeout=60_000)
        class_box = page.locator('[data-testid="stSelectbox"]', has_text="Class to explain").get_by_role("combobox")
        expect(class_box).to_have_value(re.compile(r"^star \(99\.\d%\) · predicted$"), timeout=60_000)
        summary = page.get_by_text(re.compile(r"shapes_scripted\.pt \(TorchScript [0-9a-f]{8}\) · layer"))
        expect(summary).to_contain_text("layer features · gradcam · star", timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        for chart in ("stVegaLiteChart", "stDataFrame"):  # loaded lazily: wait for them before the picture
            page.locator(f'[data-testid="{chart}"] :is(canvas, svg)').first.wait_for(timeout=60_000)
        screenshot(page, shots / "08_your_model.png")
        browser.close()
    assert not external, f"requests left the machine: {external}"
    assert not errors, errors

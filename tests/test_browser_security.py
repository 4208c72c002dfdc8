"""Real-browser checks of hostile file names and of several sessions sharing one server and model."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from gradcam_core import load_image, load_model
from gradcam_core.demo.model import SAMPLES_DIR
from tests.browser import ARGS, CHROMIUM, choose, require_browser, settle, streamlit_server, watched_page

pytestmark = pytest.mark.browser

HOSTILE = ["<img src=x onerror=alert(1)>.png", "[click](javascript:alert(1)).png"]
BAD = "<b>bold</b> $x$ `code`.png"


def png_bytes(path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(path).save(buf, "PNG")
    return buf.getvalue()


def test_hostile_file_names_are_shown_literally_and_run_nothing(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    dialogs: list[str] = []
    with streamlit_server(tmp_path / "streamlit.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, external, _errors = watched_page(browser)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{base}/Explain")
        images_input = '[data-testid="stFileUploaderDropzoneInput"][accept*=".png"]'
        page.wait_for_selector(images_input, state="attached")
        files = [{"name": n, "mimeType": "image/png", "buffer": png_bytes(SAMPLES_DIR / "square.png")} for n in HOSTILE]
        files.append({"name": BAD, "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n broken"})
        page.locator(images_input).set_input_files(files=files)
        expect(page.get_by_text(f"Could not read {BAD}")).to_be_visible(timeout=60_000)
        settle(page)
        # The image being explained is named literally in the caption...
        expect(page.locator('[data-testid="stCaptionContainer"]', has_text=HOSTILE[1]).first).to_be_visible()
        page.get_by_role("button", name="Pin to board").click()
        settle(page)
        page.locator('[data-testid="stSidebarNav"] a', has_text="Board").click()
        settle(page)
        expect(page.get_by_text(HOSTILE[1] + " · full image")).to_be_visible()
        # ...and nothing in them became markup or ran.
        assert page.locator('a[href^="javascript"]').count() == 0
        assert page.locator('img[src="x"]').count() == 0
        assert page.locator("b", has_text="bold").count() == 0
        assert page.locator('[data-testid="stException"]').count() == 0
        page.wait_for_timeout(500)
        browser.close()
    assert dialogs == [], dialogs
    assert external == [], external


def expected_picker_text(sample: str) -> str:
    """What the class picker shows for a sample, computed by the core directly."""
    loaded = load_model("shapes-demo", device="cpu")
    with torch.no_grad():
        probs = torch.softmax(loaded.model(loaded.preprocess(load_image(SAMPLES_DIR / sample))[None])[0], 0)
    top = int(probs.argmax())
    return f"{loaded.categories[top]} ({float(probs[top]):.1%}) · predicted"


JOBS = [
    ("circle", "features.block4", "16×16"),
    ("tagged square called star", "features.block3", "32×32"),
    ("cross", "features.block2", "64×64"),
    ("two shapes circle triangle", "features.block4", "16×16"),
    ("triangle", "features.block3", "32×32"),
]


def test_concurrent_sessions_each_get_their_own_correct_result(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    with streamlit_server(tmp_path / "streamlit.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pages = [browser.new_context(viewport={"width": 1400, "height": 1000}).new_page() for _ in JOBS]
        for page in pages:
            page.goto(f"{base}/Explain")
        for page in pages:
            page.wait_for_selector('[data-testid="stSidebar"] [data-testid="stSelectbox"]')
        # Fire every session's choices before waiting for any result, so the runs overlap; one more
        # session uploads a broken file at the same time, and its error must stay its own.
        broken = browser.new_context().new_page()
        broken.goto(f"{base}/Explain")
        uploader = '[data-testid="stFileUploaderDropzoneInput"][accept*=".png"]'
        broken.wait_for_selector(uploader, state="attached")
        broken.locator(uploader).set_input_files(files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"junk"}])
        for page, (sample, _, _) in zip(pages, JOBS, strict=True):
            choose(page, "Sample image", sample)
        for page in pages:
            expect(page.get_by_text("Raw map at the layer: 16×16")).to_be_visible(timeout=60_000)
            # The scene switched the model to shapes-demo: until that run ends, the first model's layer box is
            # still drawn beside the new one.
            settle(page)
        for page, (_, layer, _) in zip(pages, JOBS, strict=True):
            if layer != "features.block4":
                page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]', has_text="Target layer").click()
                page.get_by_role("option", name=layer + " (", exact=False).first.click()
        for page, (sample, _, grid) in zip(pages, JOBS, strict=True):
            expect(page.get_by_text(f"Raw map at the layer: {grid}")).to_be_visible(timeout=60_000)
            filename = sample.replace(" ", "_") + ".png"
            picker = page.get_by_role("combobox", name="Class to explain")
            expect(picker).to_have_value(expected_picker_text(filename))
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.get_by_text("Could not read").count() == 0
        expect(broken.get_by_text("Could not read x.png")).to_be_visible(timeout=60_000)
        assert broken.locator('[data-testid="stException"]').count() == 0
        browser.close()

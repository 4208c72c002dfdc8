"""What a new user sees in Chromium: the navigation's names, whole names in the sidebar, the notice for a photo
shown to the shapes model, the board, and a batch. Writes 02_explain, 05_board, 06_misclassifications."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from gradcam_core.demo.model import SAMPLES_DIR
from tests.browser import ARGS, CHROMIUM, choose, require_browser, screenshot, settle, streamlit_server, watched_page

pytestmark = pytest.mark.browser
NAV = '[data-testid="stSidebarNav"] a'


def nav_names(page: object) -> list[str]:
    """The navigation's page names, once app.py's router has drawn them (it replaces the first one drawn)."""
    from playwright.sync_api import expect

    expect(page.locator(NAV).first).to_have_text("Home", timeout=90_000)  # type: ignore[attr-defined]
    return page.locator(NAV).all_inner_texts()  # type: ignore[attr-defined]


def test_a_link_to_a_page_shows_the_navigation_with_home(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    with streamlit_server(tmp_path / "streamlit.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, _external, _errors = watched_page(browser)
        page.goto(f"{base}/Explain")
        settle(page)
        names = nav_names(page)
        browser.close()
    assert names == ["Home", "Explain", "Crop & compare", "Board", "Misclassifications"], names


def test_a_new_user_with_a_photo(tmp_path: Path, shots: Path, shared_images: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    batch = io.BytesIO()
    with zipfile.ZipFile(batch, "w") as archive:
        for name in ("circle", "square", "star", "tagged_circle_called_star", "cross"):
            folder = "circle" if name.startswith("tagged") else name
            archive.write(SAMPLES_DIR / f"{name}.png", f"{folder}/{name}.png")
        archive.write(shared_images / "elephant.jpg", "photos/elephant.jpg")
    (tmp_path / "batch.zip").write_bytes(batch.getvalue())
    with streamlit_server(tmp_path / "streamlit.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, external, errors = watched_page(browser)
        side = page.locator('[data-testid="stSidebar"]')

        def no_exception() -> None:
            boxes = page.locator('[data-testid="stException"]')
            assert boxes.count() == 0, boxes.all_inner_texts()

        def nav(label: str) -> None:
            page.locator(NAV, has_text=label).click()
            settle(page)
            no_exception()

        page.goto(base)
        settle(page)
        assert nav_names(page) == ["Home", "Explain", "Crop & compare", "Board", "Misclassifications"]
        nav("Explain")
        side.locator('[data-testid="stSelectbox"]', has_text="Method").click()
        page.get_by_role("option", name="Grad-CAM++").click()
        settle(page)
        # Model, layer and method are shown whole in the sidebar, not cut off.
        cut = page.evaluate(
            """() => [...document.querySelectorAll('[data-testid="stSidebar"] [data-testid="stSelectbox"] input')]
                .filter(e => e.value && e.scrollWidth > e.clientWidth + 1).map(e => e.value)"""
        )
        assert cut == [], cut
        uploader = side.locator('[data-testid="stFileUploader"]', has_text="Or upload images")
        uploader.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            str(shared_images / "elephant.jpg")
        )
        # The real ImageNet model, the default, names it; it needs no notice for a photo.
        class_box = page.get_by_role("combobox", name="Class to explain")
        expect(class_box).to_have_value(re.compile(r"^African elephant \(4\d\.\d%\) · predicted$"), timeout=60_000)
        settle(page)
        assert page.get_by_text("not one of the shapes scenes").count() == 0
        no_exception()
        for chart in ("stVegaLiteChart", "stDataFrame"):
            page.locator(f'[data-testid="{chart}"] :is(canvas, svg)').first.wait_for(timeout=60_000)
        screenshot(page, shots / "02_explain.png")
        page.get_by_role("button", name="Pin to board").click()
        settle(page)
        choose(page, "Sample image", "tagged circle called star")
        expect(page.get_by_text("Switched the model to shapes-demo")).to_be_visible(timeout=60_000)
        expect(class_box).to_have_value(re.compile(r"^star \(\d+\.\d%\) · predicted$"), timeout=60_000)
        settle(page)
        page.get_by_role("button", name="Pin to board").click()
        settle(page)

        nav("Board")
        expect(page.get_by_text("2 panels · normalisation: per panel")).to_be_visible(timeout=60_000)
        assert page.get_by_text("elephant.jpg · full image").count() == 1
        screenshot(page, shots / "05_board.png")

        nav("Misclassifications")
        uploader = page.locator('[data-testid="stFileUploader"]', has_text="Images or ZIP archives")
        uploader.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(tmp_path / "batch.zip"))
        expect(page.get_by_text("batch.zip", exact=True)).to_be_visible(timeout=60_000)
        settle(page)
        page.get_by_role("button", name="Run batch").click()
        expect(page.get_by_text("6 images · 5 labelled · 1 wrong")).to_be_visible(timeout=120_000)
        expect(page.get_by_text("1 of these 6 images are not one of the shapes scenes")).to_be_visible()
        expect(page.get_by_text("unlabelled")).to_be_visible()
        settle(page)
        no_exception()
        screenshot(page, shots / "06_misclassifications.png")
        browser.close()
    assert not external, f"requests left the machine: {external}"
    assert not errors, errors

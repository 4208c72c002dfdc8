"""A workspace in Chromium, as a person uses it: a real photo on the real EfficientNet-Lite0, a crop dragged,
panels pinned, a reload that keeps everything, and the board shared read-only to a second browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import (
    ARGS,
    CHROMIUM,
    require_browser,
    screenshot,
    settle,
    streamlit_server,
    upload_on_explain,
    watched_page,
)
from tests.test_browser import CropPage, near
from workspaces import Store

pytestmark = pytest.mark.browser


def test_a_board_survives_a_reload_and_is_shared_read_only(tmp_path: Path, shots: Path, shared_images: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    photo = shared_images / "riding_elephant.jpg"
    data = {"GRADCAM_DATA": str(tmp_path / "data")}
    with streamlit_server(tmp_path / "streamlit.log", data) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, external, errors = watched_page(browser, height=1300)
        upload_on_explain(page, base, photo)
        # The page explains the upload once its caption names it (the uploader lists the file before that).
        caption = page.locator('[data-testid="stCaptionContainer"]', has_text=f"{photo.name} · ")
        expect(caption.first).to_be_visible(timeout=60_000)
        settle(page)
        page.get_by_role("button", name="Pin to board").click()
        expect(page.get_by_text("to the board (1 panel)")).to_be_visible(timeout=60_000)
        assert "ws=" in page.url  # the workspace is in the link from the first change on

        # Crop & compare: two corners, then the middle, as a person drags them; the box drawn is the box used.
        page.locator('[data-testid="stSidebarNav"] a', has_text="Crop & compare").click()
        settle(page)
        crop = CropPage(page, base)
        expect(crop.frame.locator("#image")).to_be_visible(timeout=90_000)
        width, height = crop.size()
        released = crop.drag_corner("se", (width * 0.6, height * 0.9))
        crop.check(released)
        released = crop.drag_corner("nw", (width * 0.1, height * 0.1))
        crop.check(released)
        x, y, w, h = crop.drawn()
        released = crop.drag(crop.screen(x + w / 2, y + h / 2), crop.screen(x + w / 2 + 10, y + h / 2 + 5))
        box = crop.check(released)
        page.get_by_role("button", name="Pin after to board").click()
        expect(page.get_by_text("Pinned after (2 panels on the board)")).to_be_visible(timeout=60_000)
        workspace_url = page.url

        page.locator('[data-testid="stSidebarNav"] a', has_text="Board").click()
        expect(page.get_by_text("2 panels · normalisation")).to_be_visible(timeout=60_000)
        settle(page)
        captions = page.locator('[data-testid="stImage"]').all_inner_texts()
        assert any(f"crop {box[2]}×{box[3]} at ({box[0]}, {box[1]})" in c for c in captions), captions

        # A reload keeps the board, the image and the crop.
        page.reload()
        expect(page.get_by_text("2 panels · normalisation")).to_be_visible(timeout=90_000)
        settle(page)
        screenshot(page, shots / "12_board_restored.png")
        page.goto(workspace_url)  # Crop & compare, reloaded: the same photo and the same box
        crop = CropPage(page, base)
        expect(crop.frame.locator("#image")).to_be_visible(timeout=90_000)
        settle(page)
        assert crop.caption()[:4] == box and near(crop.drawn(), box, 1.0)

        # Share it, and open the link in a second browser context: a different person.
        page.locator('[data-testid="stSidebarNav"] a', has_text="Board").click()
        expect(page.get_by_text("2 panels · normalisation")).to_be_visible(timeout=60_000)
        settle(page)
        expect(page.get_by_role("button", name="Remove")).to_have_count(2)  # what the viewer must not have
        # A title typed, not confirmed, then the download clicked at once: the file has the title on the screen.
        page.get_by_role("textbox", name="Report title").fill("Elephants, cropped")
        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name="Download report (HTML)").click()
        assert "<h1>Elephants, cropped</h1>" in Path(download.value.path()).read_text()
        settle(page)
        page.get_by_text("Share read-only").click()
        page.get_by_role("button", name="Make a read-only link").click()
        link = page.locator('[data-testid="stCode"]').inner_text(timeout=30_000).strip()
        own = workspace_url.split("ws=")[1].split("&")[0]
        assert "/Board?board=" in link and own not in link

        other, external2, errors2 = watched_page(browser, height=1300)
        other.goto(link)
        expect(other.get_by_text("read-only")).to_be_visible(timeout=90_000)
        expect(other.get_by_text("2 panels · normalisation")).to_be_visible(timeout=60_000)
        settle(other)
        for label in ("Remove", "Clear board", "Make a read-only link"):
            assert other.get_by_role("button", name=label).count() == 0, label
        with other.expect_download(timeout=60_000) as download:  # the viewer's report, made when clicked
            other.get_by_role("button", name="Download report (HTML)").click()
        report = Path(download.value.path()).read_text()
        assert report.count(f"{photo.name}") >= 2 and "Before → after" in report and own not in report
        assert "<h1>Elephants, cropped</h1>" in report
        screenshot(other, shots / "13_board_shared.png")
        # The viewer's own Explain page is a fresh start: the owner's photo is not there.
        other.locator('[data-testid="stSidebarNav"] a', has_text="Explain").click()
        settle(other)
        assert other.get_by_text(photo.name).count() == 0
        # Trying to change it: the share id pasted as the workspace, then a pin. The pin goes to a workspace of
        # the viewer's own; the owner's board is as it was.
        share_id = link.split("board=")[1]
        other.goto(f"{base}/Explain?ws={share_id}")
        expect(other.get_by_text("Raw map at the layer")).to_be_visible(timeout=90_000)
        settle(other)
        other.get_by_role("button", name="Pin to board").click()
        expect(other.get_by_text("to the board (1 panel)")).to_be_visible(timeout=60_000)
        settle(other)
        viewer_ws = other.url.split("ws=")[1].split("&")[0]
        assert viewer_ws not in (own, share_id)
        browser.close()
    owner = Store(tmp_path / "data").open(own)
    assert owner.writable and [r.record["image_name"] for r in owner.panels()] == [photo.name] * 2
    assert errors == [] and errors2 == [], errors + errors2
    assert external == [] and external2 == []

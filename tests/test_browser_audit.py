"""An audit file in Chromium, used as a person would: open it from the server's folder, click a cell of
the confusion matrix, pick a row, see its stored map, and take it to Crop & compare. Writes 09_audit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gradcam_core import read_audit
from gradcam_core.audit_tables import confusion
from tests.browser import ARGS, CHROMIUM, require_browser, screenshot, settle, streamlit_server, watched_page
from ui import audits

pytestmark = pytest.mark.browser
CHART = '[data-testid="stVegaLiteChart"]'


def test_an_audit_cell_a_row_and_its_stored_map(tmp_path: Path, shots: Path, audit_dir: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    found = read_audit(audit_dir / "shapes.parquet").frame
    cells = confusion(found)
    worst = cells[cells["true_name"] != cells["pred_name"]].sort_values("count", ascending=False).iloc[0]
    env = {audits.AUDIT_DIR_ENV: str(audit_dir)}
    with streamlit_server(tmp_path / "streamlit.log", env) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, external, errors = watched_page(browser)
        page.goto(base)
        settle(page)
        page.get_by_role("link", name="Misclassifications").click()
        page.get_by_text("Open an audit file").click(timeout=90_000)
        settle(page)
        page.get_by_text(audits.SERVER).click()
        settle(page)
        expect(page.get_by_test_id("stMetricValue").first).to_have_text("41", timeout=60_000)

        # The cell of the most frequent mistake: hover shows its count, a click lists its rows.
        cell = page.locator(f'{CHART} path[aria-label*="predicted: {worst.pred_name}; true: {worst.true_name};"]').first
        cell.hover()
        tip = page.locator("#vg-tooltip-element")
        expect(tip).to_contain_text(str(worst.true_name))
        expect(tip).to_contain_text(str(worst["count"]))
        cell.click()
        settle(page)
        expect(page.get_by_text(f"Rows in {worst.true_name} → {worst.pred_name}")).to_be_visible(timeout=60_000)

        # Tick the first row of the table (sorted by border mass): its image and stored map appear under it.
        grid = page.get_by_test_id("stDataFrame").last
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 18)  # the first row's tick box, under the header
        settle(page)
        in_cell = found[(found["true_name"] == worst.true_name) & (found["pred_name"] == worst.pred_name)]
        first = in_cell.sort_values("border_mass", ascending=False).iloc[0]
        captions = page.get_by_test_id("stImageCaption")
        expect(captions.filter(has_text=f"{first['path']} (true: {worst.true_name})")).to_have_count(1, timeout=60_000)
        expect(captions.filter(has_text=f"stored map of “{worst.pred_name}”")).to_have_count(1)
        screenshot(page, shots / "09_audit.png")

        page.get_by_role("button", name="Open in Crop & compare").click()
        settle(page)
        expect(page.get_by_role("heading", name="Crop & compare")).to_be_visible(timeout=90_000)
        # The row's image, run live by the audit's model: the whole image first, so its top-1 is the audit's.
        expect(page.get_by_text(f"top-1 unchanged: {first['pred_name']} ({first['pred_prob']:.2f})")).to_be_visible(
            timeout=90_000
        )
        expect(page.get_by_role("combobox", name="Model")).to_have_value(re.compile("^shapes-demo"))
        browser.close()
    assert not external, f"requests left the machine: {external}"
    assert not errors, errors

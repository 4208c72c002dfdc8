"""Exports: the HTML report and the data ZIP carry every panel's provenance and fetch nothing."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.browser import ARGS, CHROMIUM, require_browser, watched_page
from tests.test_app import TAGGED, crop_to, pick_sample, shape_box, start
from ui import report, state
from ui.board import Panel


@pytest.fixture(scope="module")
def panels() -> list[Panel]:
    at = crop_to(pick_sample(start("pages/2_Crop_and_Compare.py"), TAGGED), shape_box(TAGGED))
    at.button(key="pin_Before").click().run()
    at.button(key="pin_After").click().run()
    pinned = list(at.session_state[state.BOARD])
    assert [p.class_name for p in pinned] == ["star", "circle"]
    return pinned


def test_html_report_is_self_contained_and_complete(panels: list[Panel]) -> None:
    hostile = dataclasses.replace(panels[0], image_name="<script>alert(1)</script>.png")
    page = report.html_report([*panels, hostile], 0.45, "jet", None)
    assert page.count("data:image/png;base64,") == 2 * 3
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in page
    for panel in panels:
        assert panel.weights_sha256 and panel.weights_sha256 in page
    expected = ["features.block4", "gradcam", "resize to 128×128 (the whole image), mean ", "crop ", "per panel"]
    expected.append(f"torch {torch.__version__}")
    for text in expected:
        assert text in page, text
    assert "star — " in page and "circle — " in page  # top-5 lists


def test_an_uploaded_model_is_named_by_its_file_with_readable_preprocessing() -> None:
    from tests.conftest import my_cnn
    from tests.test_app import upload_weights
    from tests.test_app_your_model import preprocessing, scripted_bytes

    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    preprocessing(at, 32, 48, crop=True, mean="0.5", std="0.25")
    at = upload_weights(at, "resnet18", "fruit.pt", scripted_bytes(my_cnn()))
    at.button(key="pin_explain").click().run()
    (panel,) = at.session_state[state.BOARD]
    page = report.html_report([panel], 0.45, "jet", None)
    manifest = json.loads(
        zipfile.ZipFile(io.BytesIO(report.zip_bytes([panel], 0.45, "jet", None))).read("manifest.json")
    )
    readable = "resize 37, centre crop 48×32, mean 0.5/0.5/0.5, std 0.25/0.25/0.25"
    for text in (page, json.dumps(manifest, ensure_ascii=False)):
        assert "fruit.pt (uploaded)" in text and readable in text
        assert os.environ["GRADCAM_DATA"] not in text and "Preprocess(" not in text  # the content store's folder
    assert manifest["panels"][0]["weights"] == "fruit.pt (uploaded)"


def test_zip_holds_overlays_raw_maps_and_a_manifest(panels: list[Panel]) -> None:
    vmax = max(float(p.heat.max()) for p in panels)
    archive = zipfile.ZipFile(io.BytesIO(report.zip_bytes(panels, 0.45, "jet", vmax)))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["schema"] == report.SCHEMA and manifest["normalisation"].startswith("shared")
    assert len(manifest["panels"]) == 2
    for entry, panel in zip(manifest["panels"], panels, strict=True):
        raw = np.load(io.BytesIO(archive.read(entry["map"])))
        assert raw.shape == (16, 16) == tuple(entry["map_shape"])
        np.testing.assert_allclose(raw, panel.raw)
        assert archive.read(entry["overlay"]).startswith(b"\x89PNG")
        assert entry["weights_sha256"] == panel.weights_sha256 and entry["layer"] == "features.block4"
    assert manifest["panels"][1]["crop"] is not None and manifest["panels"][0]["crop"] is None


@pytest.mark.browser
def test_report_renders_and_prints_in_chromium(panels: list[Panel], tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, requests, _errors = watched_page(browser, 1100, 900)
        page.set_content(report.html_report(panels, 0.45, "jet", None))
        page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator("img").count() == 4
        page.screenshot(path=str(shots / "07_report.png"), full_page=True)
        pdf = page.pdf(format="A4", print_background=True)
        browser.close()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    assert requests == []


def test_report_prints_its_title_the_notes_and_the_crop_pairs_probability_changes(panels: list[Panel]) -> None:
    before, after = panels
    notes = {after.uid: "Cropped to the shape, it sees the circle.\n<b>not markup</b>"}
    page = report.html_report(panels, 0.45, "jet", None, title="Shapes <review>", notes=notes)
    assert "<title>Shapes &lt;review&gt;</title>" in page and "<h1>Shapes &lt;review&gt;</h1>" in page
    assert "Cropped to the shape, it sees the circle.\n&lt;b&gt;not markup&lt;/b&gt;" in page
    was = dict(before.top5)["circle"]  # the after's class, as the model scored it before the crop
    assert after.probability > was  # the crop is what made it circle
    assert "<h2>Before → after</h2>" in page and "star → circle" in page
    assert f"circle: {was:.1%} → {after.probability:.1%}" in page
    assert f"({(after.probability - was) * 100:+.1f} points)" in page
    manifest = json.loads(
        zipfile.ZipFile(io.BytesIO(report.zip_bytes(panels, 0.45, "jet", None, "Shapes", notes))).read("manifest.json")
    )
    assert manifest["title"] == "Shapes" and [p["note"] for p in manifest["panels"]] == ["", notes[after.uid]]
    (pair,) = manifest["crop_pairs"]
    assert (pair["before"], pair["after"], pair["class"]) == (1, 2, "circle")
    assert pair["before_probability"] == pytest.approx(was, abs=1e-6)
    assert (pair["top1_before"], pair["top1_after"]) == ("star", "circle")
    # No full-image panel of the same image and model before it: no pair.
    assert "Before → after" not in report.html_report([after, before], 0.45, "jet", None)

"""One real journey in Chromium: a sample fooled by its tag, cropped, compared, and pinned to the board."""

from __future__ import annotations

import io
import json
import re
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
from PIL import Image

from gradcam_core.demo.model import SAMPLES_DIR
from tests.browser import ARGS, CHROMIUM, choose, require_browser, screenshot, settle, streamlit_server, watched_page

pytestmark = pytest.mark.browser
TAGGED = "tagged_circle_called_star.png"
# The crop box's frame; a page that showed another image before may keep that image's hidden (0-wide) frame.
CROPPER = 'iframe[title="ui.cropper.box_cropper"]:visible'


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
        # Home explains a real photo with the real model, beside the shapes model's shortcut.
        expect(page.get_by_text("efficientnet_lite0 says 'tiger cat' (38%)")).to_be_visible(timeout=90_000)
        expect(page.get_by_text("called 'star': the map lights up the tag")).to_be_visible(timeout=60_000)
        settle(page)
        screenshot(page, shots / "01_home.png")

        nav("Crop & compare")
        choose(page, "Sample image", "tagged circle called star")
        expect(page.get_by_text("top-1 unchanged: star")).to_be_visible(timeout=60_000)
        settle(page)
        no_exception()
        screenshot(page, shots / "03_crop_before.png")

        # Drag the corner nearest the tag in to the shape's box (grown a little): the tag is cut off.
        frame = page.frame_locator(CROPPER)
        canvas = frame.locator("#image")
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
        CropPage(page, base).after_image()  # the cropped image has replaced the whole one
        no_exception()
        # Both sides show the maps of the class predicted before and the one predicted after.
        for caption in ("star (predicted before)", "circle (predicted after)"):
            expect(page.get_by_text(caption)).to_have_count(2, timeout=30_000)
        screenshot(page, shots / "04_crop_after.png")

        page.get_by_role("button", name="Pin before to board").click()
        expect(page.get_by_text("Pinned before (1 panel on the board).")).to_be_visible(timeout=60_000)
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
            ("Download the board as PNG", lambda data: data.startswith(b"\x89PNG")),
        ):  # each made when clicked
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
        expect(page.get_by_text("Raw map at the layer")).to_be_visible(timeout=60_000)  # the page has loaded
        settle(page)
        side = page.locator('[data-testid="stSidebar"]')
        side.get_by_text("Your model").click()
        settle(page)
        uploads = side.locator('[data-testid="stFileUploaderDropzoneInput"]')
        # One file after the other, as a person does. Set a few milliseconds apart, the second upload was once
        # lost (its uploader showed no file), as the rerun started by the first was still running.
        for n, upload in enumerate((model_file, labels_file)):
            uploads.nth(n).set_input_files(str(upload))
            expect(side.get_by_text(upload.name, exact=True)).to_be_visible(timeout=60_000)  # it reached the server
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
        choose(page, "Sample image", "tagged circle called star")
        # The compiled demo network is fooled by the tag as the original is, and its layers are listed.
        expect(page.get_by_text("Raw map at the layer: 16×16")).to_be_visible(timeout=60_000)
        class_box = page.locator('[data-testid="stSelectbox"]', has_text="Class to explain").get_by_role("combobox")
        expect(class_box).to_have_value(re.compile(r"^star \((99\.\d|100\.0)%\) · predicted$"), timeout=60_000)
        summary = page.get_by_text(re.compile(r"shapes_scripted\.pt \(TorchScript [0-9a-f]{8}\) · layer"))
        expect(summary).to_contain_text("layer features · gradcam · star", timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        for chart in ("stVegaLiteChart", "stDataFrame"):  # loaded lazily: wait for them before the picture
            page.locator(f'[data-testid="{chart}"] :is(canvas, svg)').first.wait_for(timeout=60_000)
        screenshot(page, shots / "08_your_model.png")
        browser.close()
    assert not external, f"requests left the machine: {external}"
    assert not errors, errors


BOX_CAPTION = re.compile(r"Box: (\d+)×(\d+) at \((\d+), (\d+)\) of (\d+)×(\d+)\.")


class CropPage:
    """The crop box of Crop & compare as a person sees and handles it, measured in image pixels."""

    def __init__(self, page, base: str) -> None:  # type: ignore[no-untyped-def]
        self.page, self.base = page, base
        self.frame = page.frame_locator(CROPPER)

    def image_rect(self) -> dict[str, float]:
        rect = self.frame.locator("#image").bounding_box()
        assert rect is not None
        return rect

    def caption(self) -> tuple[int, int, int, int, int, int]:
        """(x, y, w, h, image width, image height) from the caption under the crop box."""
        text = self.page.get_by_text(BOX_CAPTION).inner_text()
        w, h, x, y, width, height = (int(v) for v in BOX_CAPTION.search(text).groups())  # type: ignore[union-attr]
        return x, y, w, h, width, height

    def size(self) -> tuple[int, int]:
        return self.caption()[4:]

    def drawn(self) -> tuple[float, float, float, float]:
        """The box drawn on screen, in image pixels: its painted rectangle over the image's."""
        img, box = self.image_rect(), self.frame.locator("#box").bounding_box()
        assert box is not None
        s = img["width"] / self.size()[0]
        return (box["x"] - img["x"]) / s, (box["y"] - img["y"]) / s, box["width"] / s, box["height"] / s

    def screen(self, x: float, y: float) -> tuple[float, float]:
        """The screen point of image pixel coordinates (x, y)."""
        img = self.image_rect()
        s = img["width"] / self.size()[0]
        return img["x"] + x * s, img["y"] + y * s

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> tuple[float, float, float, float]:
        """Press, move in small steps, release (screen points); the box drawn at the release."""
        self.page.mouse.move(*start)
        self.page.mouse.down()
        self.page.mouse.move(*end, steps=15)
        self.page.mouse.up()
        return self.drawn()

    def drag_corner(self, corner: str, to: tuple[float, float]) -> tuple[float, float, float, float]:
        """Grab a corner of the drawn box a pixel inside it, as a person aims, and drop it at image point ``to``."""
        x, y, w, h = self.drawn()
        s = self.image_rect()["width"] / self.size()[0]
        gx = x + (w - 1 / s if "e" in corner else 1 / s)
        gy = y + (h - 1 / s if "s" in corner else 1 / s)
        return self.drag(self.screen(gx, gy), self.screen(*to))

    def after_image(self, size: tuple[int, int] | None = None) -> tuple[str, int, int]:
        """The After image's source and size as the browser decoded it, once it matches its caption (and ``size``)."""
        found = self.page.wait_for_function(
            """(want) => {
                const figure = [...document.querySelectorAll('[data-testid="stImage"]')]
                    .find(f => f.innerText.includes("After: "));
                const img = figure && figure.querySelector("img");
                const size = figure && figure.innerText.match(/After: (\\d+)×(\\d+)/);
                if (!img || !size || !img.complete) return null;
                const [w, h] = [Number(size[1]), Number(size[2])];
                if (want && (want[0] !== w || want[1] !== h)) return null;
                return img.naturalWidth === w && img.naturalHeight === h ? [img.getAttribute("src"), w, h] : null;
            }""",
            arg=list(size) if size else None,
            timeout=60_000,
        ).json_value()
        return str(found[0]), int(found[1]), int(found[2])

    def pixels(self, src: str) -> np.ndarray:
        data = urllib.request.urlopen(urljoin(self.base + "/", src), timeout=30).read()
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)

    def fields(self) -> list[int]:
        return [int(self.page.get_by_role("spinbutton", name=n, exact=True).input_value()) for n in "xywh"]

    def check(self, released: tuple[float, float, float, float], erase: bool = False) -> tuple[int, int, int, int]:
        """After a drag's rerun: the box did not move, and the caption, fields and After image agree with it."""
        deadline = time.monotonic() + 60
        while True:  # the rerun the drag started has drawn its caption (a pixel's rounding apart, so that
            caption = self.caption()  # the caption before a move of 2 px, by arrow keys say, is not taken for it)
            if all(abs(a - b) <= 1 for a, b in zip(caption[:4], released, strict=True)):
                break
            assert time.monotonic() < deadline, f"the caption says {caption[:4]}, the box drawn was {released}"
            self.page.wait_for_timeout(200)
        settle(self.page)
        assert not self.page.locator('[data-testid="stException"]').count()
        x, y, w, h, width, height = self.caption()
        _, aw, ah = self.after_image((width, height) if erase else (w, h))  # an erase keeps the whole image
        drawn = self.drawn()
        assert all(abs(a - b) < 0.5 for a, b in zip(drawn, released, strict=True)), f"moved {released} -> {drawn}"
        assert all(abs(a - b) <= 2 for a, b in zip((x, y, w, h), drawn, strict=True)), ((x, y, w, h), drawn)
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
        assert erase or (abs(aw - drawn[2]) <= 2 and abs(ah - drawn[3]) <= 2), ((aw, ah), drawn)
        while self.fields() != [x, y, w, h]:  # the number fields are redrawn by the same rerun, a moment later
            assert time.monotonic() < deadline, f"the fields say {self.fields()}, the caption {[x, y, w, h]}"
            self.page.wait_for_timeout(200)
        return x, y, w, h


def near(box: tuple[float, ...], expected: tuple[float, ...], tol: float = 1.0) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(box, expected, strict=True))


def test_the_crop_box_drawn_is_the_crop_used(tmp_path: Path, shots: Path) -> None:
    """Drag corners and the middle like a person, in crop and erase mode: the drawn box is the box used."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    with streamlit_server(tmp_path / "streamlit.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, external, errors = watched_page(browser)
        page.goto(f"{base}/Crop_and_Compare")
        choose(page, "Sample image", "tagged circle called star")
        expect(page.get_by_text("top-1 unchanged: star")).to_be_visible(timeout=60_000)
        settle(page)
        crop = CropPage(page, base)
        assert crop.size() == (128, 128)
        assert near(crop.drawn(), (0, 0, 128, 128), 0.5)  # the whole image at first

        # The first touch on a corner resizes (it does not move the box); then another corner; then the first again.
        released = crop.drag_corner("se", (100, 90))
        assert near(released, (0, 0, 100, 90)), released
        assert crop.check(released) == (0, 0, 100, 90)
        released = crop.drag_corner("nw", (20, 15))
        assert near(released, (20, 15, 80, 75)), released
        assert crop.check(released) == (20, 15, 80, 75)
        released = crop.drag_corner("se", (110, 100))
        assert near(released, (20, 15, 90, 85)), released
        assert crop.check(released) == (20, 15, 90, 85)
        # The middle moves it whole; pushed past the image's edge, it stops at the edge.
        x, y, w, h = crop.drawn()
        middle = crop.screen(x + w / 2, y + h / 2)
        released = crop.drag(middle, crop.screen(x + w / 2 + 12, y + h / 2 - 10))
        assert near(released, (32, 5, 90, 85)), released
        assert crop.check(released) == (32, 5, 90, 85)
        x, y, w, h = released
        released = crop.drag(crop.screen(x + w / 2, y + h / 2), crop.screen(x + w / 2 + 200, y + h / 2 + 200))
        assert near(released, (38, 43, 90, 85)), released
        assert crop.check(released) == (38, 43, 90, 85)
        screenshot(page, tmp_path / "crop.png")

        # Typed numbers move the drawn box; Reset gives the whole image back.
        for name, value in (("x", "10"), ("w", "60")):
            field = page.get_by_role("spinbutton", name=name, exact=True)
            field.fill(value)
            field.press("Enter")
            settle(page)
        expect(page.get_by_text(BOX_CAPTION)).to_contain_text("Box: 60×85 at (10, 43)", timeout=60_000)
        assert near(crop.drawn(), (10, 43, 60, 85), 0.5), crop.drawn()
        assert crop.check(crop.drawn()) == (10, 43, 60, 85)
        released = crop.drag_corner("sw", (4, 120))  # and the typed box drags like a drawn one
        assert near(released, (4, 43, 66, 77)), released
        assert crop.check(released) == (4, 43, 66, 77)
        # Arrow keys move the focused box a pixel a press (one rerun when they stop); Shift resizes it.
        crop.frame.locator("#box").focus()
        for key in ("ArrowRight", "ArrowRight", "ArrowUp", "Shift+ArrowLeft"):
            page.keyboard.press(key)
        assert near(crop.drawn(), (6, 42, 65, 77), 0.5), crop.drawn()
        assert crop.check(crop.drawn()) == (6, 42, 65, 77)
        page.get_by_role("button", name="Reset to whole image").click()
        expect(page.get_by_text(BOX_CAPTION)).to_contain_text("Box: 128×128 at (0, 0)", timeout=60_000)
        settle(page)
        assert near(crop.drawn(), (0, 0, 128, 128), 0.5), crop.drawn()

        # Erase mode: the same box, and what is erased is what is drawn.
        page.get_by_text("erase", exact=True).click()
        settle(page)
        page.locator('[data-testid="stSelectbox"]', has_text="Erase with").click()
        page.get_by_role("option", name="black").click()
        settle(page)
        released = crop.drag_corner("nw", (80, 8))
        assert near(released, (80, 8, 48, 120)), released
        released = crop.drag_corner("se", (124, 40))
        assert near(released, (80, 8, 44, 32)), released
        assert crop.check(released, erase=True) == (80, 8, 44, 32)
        x, y, w, h = crop.check(crop.drag(crop.screen(100, 20), crop.screen(96, 24)), erase=True)
        assert (x, y, w, h) == (76, 12, 44, 32)
        s = crop.image_rect()["width"] / 128
        released = crop.drag(crop.screen(x + w / 2, y + h - 1 / s), crop.screen(x + w / 2 + 5, 50))  # an edge
        assert near(released, (76, 12, 44, 38)), released
        x, y, w, h = crop.check(released, erase=True)
        src, _, _ = crop.after_image()
        before = page.locator('[data-testid="stImage"]', has_text="Before: ").locator("img").get_attribute("src")
        after, original = crop.pixels(src), crop.pixels(str(before))
        changed = np.abs(after - original).mean(axis=2) > 12
        assert changed[y : y + h, x : x + w].mean() > 0.9, changed[y : y + h, x : x + w].mean()  # the box is erased
        near_box = np.zeros(changed.shape, dtype=bool)
        near_box[max(0, y - 8) : y + h + 8, max(0, x - 8) : x + w + 8] = True  # JPEG blocks straddle the edge
        assert changed[~near_box].mean() < 0.01, changed[~near_box].mean()  # ...and nothing else is
        assert (after[y : y + h, x : x + w] < 24).all(axis=2).mean() > 0.9  # black, as chosen
        screenshot(page, tmp_path / "erase.png")
        browser.close()
    assert not external, f"requests left the machine: {external}"
    assert not errors, errors


def test_the_riding_elephant_cropped_like_a_person_on_the_real_model(
    tmp_path: Path, shots: Path, shared_images: Path
) -> None:
    """The seed's crop story on efficientnet_lite0 and a real photo: handles dragged twice, then the box."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    with streamlit_server(tmp_path / "streamlit.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, external, errors = watched_page(browser)
        page.goto(f"{base}/Crop_and_Compare")
        choose(page, "Sample image", "riding_elephant.jpg")
        expect(page.get_by_text("top-1 unchanged: water buffalo (0.22)")).to_be_visible(timeout=90_000)
        settle(page)
        crop = CropPage(page, base)
        assert crop.size() == (513, 513)
        screenshot(page, shots / "elephant_before.png")
        # A person's path to the elephant's head and front legs (riders and child outside): the bottom-right
        # handle in, the top-left handle twice, then the box pushed down and right past the image's corner, where
        # it stops. A corner is grabbed a pixel inside, so at 0.9 CSS px per image pixel a drop lands within 2 px
        # of its aim; check() holds the app to the box drawn.
        released = crop.drag_corner("se", (480, 480))
        assert near(released, (0, 0, 480, 480), 2.5), released
        crop.check(released)
        released = crop.drag_corner("nw", (250, 200))
        assert near(released, (250, 200, 230, 280), 2.5), released
        crop.check(released)
        released = crop.drag_corner("nw", (287, 227))
        assert near(released, (287, 227, 193, 253), 2.5), released
        crop.check(released)
        x, y, w, h = released
        moved = crop.drag(crop.screen(x + w / 2, y + h / 2), crop.screen(x + w / 2 + 40, y + h / 2 + 40))
        assert near(moved, (513 - w, 513 - h, w, h), 0.5), (released, moved)
        used = crop.check(moved)
        assert near(used, (320, 260, 193, 253), 2.5), used
        expect(page.get_by_text("top-1 changed: water buffalo (0.22) → tusker")).to_be_visible(timeout=90_000)
        assert not page.locator('[data-testid="stException"]').count()
        screenshot(page, shots / "elephant_after.png")
        browser.close()
    assert not external, f"requests left the machine: {external}"
    assert not errors, errors

"""The app's main flows through the real Streamlit runtime (AppTest) on the bundled demo model."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from gradcam_core.demo.model import SAMPLES_DIR
from ui import board, state
from ui.text import plain_text

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["app.py", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))]
MANIFEST = json.loads((SAMPLES_DIR / "manifest.json").read_text())
TAGGED = "tagged_circle_called_star.png"


def start(page: str = "app.py", model: str | None = "shapes-demo") -> AppTest:
    """A new session at ``page``, with ``model`` chosen in the sidebar (``None``: the app's default model)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if model is not None:
        at.session_state[state.SETTINGS] = {state.W_MODEL: model}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page != "app.py":
        at.switch_page(page).run()
    return at


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def pick_sample(at: AppTest, filename: str) -> AppTest:
    at.selectbox(key=state.W_SAMPLE).select(Path(filename).stem.replace("_", " ")).run()
    return ok(at)


def image_uploader(at: AppTest):  # type: ignore[no-untyped-def]
    """The sidebar's image uploader (its key changes after every upload)."""
    return next(u for u in at.file_uploader if u.key and u.key.startswith(state.W_UPLOAD))


def png(path: Path) -> bytes:
    return path.read_bytes()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_loads_without_an_image(page: str) -> None:
    at = ok(start(page))
    assert at.title, page


def test_home_shows_the_example_and_the_models() -> None:
    at = start()
    assert len(at.image) == 4  # a real photo and its map, the shapes shortcut and its map
    assert at.image[1].captions[0] == "efficientnet_lite0 says 'tiger cat' (38%): the map lies on the cat"
    assert "called 'star'" in at.image[3].captions[0]
    table = at.dataframe[0].value.set_index("model")["weights"]
    assert table["efficientnet_lite0"] == "installed" and table["shapes-demo"] == "bundled"
    assert table["vgg19"] in ("downloaded", "not downloaded")


def test_explain_flow() -> None:
    at = pick_sample(start("pages/1_Explain.py"), TAGGED)
    assert at.caption[0].value.endswith("· **star**")
    assert len(at.image) == 3
    assert at.dataframe[0].value["class"].iloc[0] == "star"
    # Explain another class.
    at.selectbox(key=f"{state.W_CLASS}.{at.session_state[state.CURRENT]}.shapes-demo").select(0).run()
    assert ok(at).caption[0].value.endswith("· **circle**")
    # Another layer: block3 is 32×32.
    layer_box = at.selectbox(key=f"{state.W_LAYER}.shapes-demo")
    layer_box.select("features.block3").run()
    assert ok(at).image[1].captions == ["Raw map at the layer: 32×32"]
    # Another method, then several classes at once.
    at.selectbox(key=state.W_METHOD).select("layercam").run()
    at.toggle(key=state.W_MULTI).set_value(True).run()
    assert len(ok(at).image) == 3 + 5
    at.toggle(key=state.W_SEEN).set_value(True).run()
    assert len(ok(at).image) == 3 + 5 + 1
    at.button(key="pin_explain").click().run()
    assert len(ok(at).session_state[state.BOARD]) == 1


def test_display_changes_never_run_the_model() -> None:
    from ui.models import cached_model

    at = pick_sample(start("pages/1_Explain.py"), TAGGED)
    model = cached_model("shapes-demo").model
    calls: list[int] = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        at.slider(key=state.W_ALPHA).set_value(0.9).run()
        at.selectbox(key=state.W_CMAP).select("viridis").run()
        assert len(ok(at).image) == 3  # the panels were redrawn...
        assert at.session_state[state.SETTINGS][state.W_CMAP] == "viridis"
        assert calls == []  # ...without a forward pass
        at.selectbox(key=f"{state.W_LAYER}.shapes-demo").select("features.block2").run()
        assert calls, "a new layer does run the model (the counter works)"
    finally:
        handle.remove()


def cropper_args(at: AppTest) -> dict[str, Any]:
    """The arguments the page gave the crop box's frontend."""
    (component,) = [c for c in at.get("component_instance") if c.proto.component_name == "ui.cropper.box_cropper"]
    return json.loads(component.proto.json_args)


def crop_to(at: AppTest, box: list[int]) -> AppTest:
    """Set the crop box's value as the frontend sends it when a drag ends: image pixels, on its revision."""
    key = f"{state.W_CROPPER}.{at.session_state[state.CURRENT]}"
    at.session_state[key] = {"box": list(box), "revision": cropper_args(at)["revision"]}
    return ok(at.run())


def test_crop_removes_the_tag_and_restores_the_true_class() -> None:
    at = pick_sample(start("pages/2_Crop_and_Compare.py"), TAGGED)
    assert at.subheader[0].value.startswith("top-1 unchanged: star (")  # the box starts as the whole image
    at = crop_to(at, shape_box(TAGGED))
    summary = at.subheader[0].value
    assert summary.startswith("top-1 changed: star (") and "→ circle (" in summary, summary
    # Before | after: each side shows its image and the maps of both classes.
    assert len(at.image) == 2 * (1 + 2)
    captions = [c for im in at.image for c in im.captions]
    assert sum(c.startswith("star (predicted before)") for c in captions) == 2, captions
    assert sum(c.startswith("circle (predicted after)") for c in captions) == 2, captions
    at.button(key="pin_Before").click().run()
    at.button(key="pin_After").click().run()
    assert [p.class_name for p in ok(at).session_state[state.BOARD]] == ["star", "circle"]
    assert [b.proto.label for b in at.download_button] == ["Download report (HTML)", "Download data (ZIP)"]
    # Erase mode: hide the tag instead of cropping to the shape.
    tag = MANIFEST[TAGGED]["tag"]
    at.radio(key=state.W_MODE).set_value("erase").run()
    at = crop_to(at, [tag[0] - 2, tag[1] - 2, tag[2] + 4, tag[3] + 4])
    assert "→ circle (" in at.subheader[0].value


def box_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Box: "))


def test_typed_box_moves_the_drawn_box_and_a_drag_moves_the_numbers() -> None:
    at = pick_sample(start("pages/2_Crop_and_Compare.py"), TAGGED)
    first = cropper_args(at)
    assert first["box"] == [0, 0, 128, 128] and (first["width"], first["height"]) == (128, 128)
    assert at.button(key=state.W_CROP_RESET).disabled  # already the whole image
    # Typed numbers set the box used and redraw the drawn one (a new revision).
    at.number_input(key=state.W_CROP_X).set_value(10).run()
    at.number_input(key=state.W_CROP_W).set_value(60).run()
    assert box_caption(ok(at)).startswith("Box: 60×128 at (10, 0) of 128×128.")
    assert "After: 60×128" in [c for im in at.image for c in im.captions]
    typed = cropper_args(at)
    assert typed["box"] == [10, 0, 60, 128] and typed["revision"] > first["revision"]
    # Too wide for where it starts: clipped to the image, and the fields show what was used.
    at.number_input(key=state.W_CROP_W).set_value(128).run()
    assert box_caption(ok(at)).startswith("Box: 118×128 at (10, 0)")
    assert at.number_input(key=state.W_CROP_W).value == 118
    # A drag made on the box before it was typed is stale: it changes nothing.
    key = f"{state.W_CROPPER}.{at.session_state[state.CURRENT]}"
    at.session_state[key] = {"box": [0, 0, 20, 20], "revision": first["revision"]}
    assert box_caption(ok(at.run())).startswith("Box: 118×128 at (10, 0)")
    # A drag on the drawn box is used, the fields follow it, and the drawn box is not redrawn (same revision).
    at = crop_to(at, [5, 6, 70, 80])
    assert box_caption(at).startswith("Box: 70×80 at (5, 6)")
    fields = (state.W_CROP_X, state.W_CROP_Y, state.W_CROP_W, state.W_CROP_H)
    assert [at.number_input(key=k).value for k in fields] == [5, 6, 70, 80]
    assert cropper_args(at)["revision"] == typed["revision"] + 1
    # The box is remembered for the image across a page switch, and the drawn box starts from it.
    at.switch_page("pages/1_Explain.py").run()
    at.switch_page("pages/2_Crop_and_Compare.py").run()
    assert box_caption(ok(at)).startswith("Box: 70×80 at (5, 6)")
    assert cropper_args(at)["box"] == [5, 6, 70, 80]
    # Reset: the whole image again, drawn and typed.
    at.button(key=state.W_CROP_RESET).click().run()
    assert box_caption(ok(at)).startswith("Box: 128×128 at (0, 0)")
    assert cropper_args(at)["box"] == [0, 0, 128, 128]
    assert [at.number_input(key=k).value for k in fields] == [0, 0, 128, 128]


def test_a_drag_value_is_read_only_when_it_makes_sense() -> None:
    from ui.cropper import from_value

    assert from_value({"box": [5, 6, 70, 80], "revision": 3}, 3, (128, 128)) == (5, 6, 70, 80)
    assert from_value({"box": [100, 6, 70, 80.4], "revision": 3}, 3, (128, 128)) == (100, 6, 28, 80)  # clipped
    for stale_or_bad in (
        {"box": [5, 6, 70, 80], "revision": 2},  # drawn before the box was typed
        {"box": [500, 500, 10, 10], "revision": 3},  # outside the image
        {"box": [5, 6, "wide", 80], "revision": 3},
        {"box": [5, 6], "revision": 3},
        {"revision": 3},
        None,
        [5, 6, 70, 80],
    ):
        assert from_value(stale_or_bad, 3, (128, 128)) is None, stale_or_bad


@pytest.fixture
def media(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Every media file the app stores (what ``st.image`` sends the browser), by file id."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict[str, bytes] = {}
    store = MemoryMediaFileStorage.load_and_get_id

    def recording(self: MemoryMediaFileStorage, *args: Any, **kwargs: Any) -> str:
        file_id = store(self, *args, **kwargs)
        files[file_id] = self.get_file(file_id).content
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return files


def shown(media: dict[str, bytes], url: str) -> np.ndarray:
    """The pixels of an image the app showed, from its media URL."""
    return np.asarray(Image.open(io.BytesIO(media[Path(url).stem])).convert("RGB"), dtype=float)


def test_erase_mode_draws_the_after_maps_over_the_erased_image(media: dict[str, bytes]) -> None:
    from gradcam_core import occlude, overlay

    at = pick_sample(start("pages/2_Crop_and_Compare.py"), TAGGED)
    at.radio(key=state.W_MODE).set_value("erase").run()
    at.selectbox(key=state.W_FILL).select("black").run()
    tx, ty, tw, th = MANIFEST[TAGGED]["tag"]
    x, y, w, h = box = [tx - 2, ty - 2, tw + 4, th + 4]
    at = crop_to(at, box)
    at.button(key="pin_After").click().run()
    panel = ok(at).session_state[state.BOARD][-1]
    image = at.session_state[state.IMAGES][at.session_state[state.CURRENT]].image
    assert panel.heat.shape == (image.height, image.width)
    # The After side's map of the class it predicts (the one pinned), as the browser got it.
    url = [im.value[0] for im in at.image if im.captions[0].startswith(f"{panel.class_name} (")][-1]
    after = shown(media, url)[y : y + h, x : x + w]
    alpha, cmap = at.slider(key=state.W_ALPHA).value, at.selectbox(key=state.W_CMAP).value
    on_erased, on_original = (
        np.asarray(overlay(im, panel.heat, alpha=alpha, colormap=cmap), dtype=float)[y : y + h, x : x + w]
        for im in (occlude(image, tuple(box), "black"), image)
    )
    assert np.abs(after - on_erased).mean() < 4  # JPEG's loss only
    assert np.abs(after - on_original).mean() > 4 * np.abs(after - on_erased).mean() + 8  # the tag is not drawn
    # The pinned panel (board, report) is drawn over the erased image too.
    assert np.array_equal(np.asarray(panel.image), np.asarray(occlude(image, tuple(box), "black")))


def shape_box(name: str, grow: float = 0.1) -> list[int]:
    x, y, w, h = MANIFEST[name]["boxes"][0]
    return [round(x - w * grow / 2), round(y - h * grow / 2), round(w * (1 + grow)), round(h * (1 + grow))]


def test_board_flow() -> None:
    at = crop_to(pick_sample(start("pages/2_Crop_and_Compare.py"), TAGGED), shape_box(TAGGED))
    at.button(key="pin_Before").click().run()
    at.button(key="pin_After").click().run()
    at.switch_page("pages/3_Board.py").run()
    assert ok(at).caption[0].value.startswith("2 panels")
    assert len(at.image) == 2
    at.radio(key=state.W_BOARD_NORM).set_value("shared").run()
    assert "shared" in ok(at).caption[0].value
    # On the shared scale the weaker map (after the crop) is drawn dimmer than on its own scale.
    panels = at.session_state[state.BOARD]
    vmax = max(float(p.heat.max()) for p in panels)
    weak = min(panels, key=lambda p: float(p.heat.max()))
    own, shared = (np.asarray(board.render(weak, 0.45, "jet", v), dtype=int) for v in (None, vmax))
    assert (own != shared).mean() > 0.1
    labels = [b.proto.label for b in at.download_button]
    assert labels == ["Download report (HTML)", "Download data (ZIP)", "Download the board as PNG"]
    at.button(key=f"{state.W_REMOVE}.{panels[0].uid}").click().run()
    assert ok(at).caption[0].value.startswith("1 panel ")
    button(at, "Clear board").click().run()
    assert "empty" in ok(at).info[0].value


def test_uploads_bad_files_are_listed_good_ones_kept() -> None:
    at = start("pages/1_Explain.py")
    good = png(SAMPLES_DIR / "square.png")
    uploader = image_uploader(at)
    uploader.upload("square.png", good, "image/png")
    uploader.upload("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")
    at.run()
    errors = [e.value for e in ok(at).error]
    assert any(plain_text("broken.png") in e and "damaged or truncated" in e for e in errors), errors
    assert plain_text("square.png") in at.caption[0].value


def labelled_batch() -> list[tuple[str, bytes, str]]:
    return [
        ("circle_01.png", png(SAMPLES_DIR / "circle.png"), "image/png"),
        ("square_02.png", png(SAMPLES_DIR / "square.png"), "image/png"),
        ("circle_03.png", png(SAMPLES_DIR / TAGGED), "image/png"),
        ("triangle_04.png", b"not an image", "image/png"),
    ]


def batch_uploader(at: AppTest):  # type: ignore[no-untyped-def]
    """The Misclassifications page's uploader (its key changes after every run)."""
    return next(u for u in at.file_uploader if u.key and u.key.startswith(state.W_BATCH_UPLOAD))


def test_misclassification_workspace() -> None:
    at = start("pages/4_Misclassifications.py")
    for name, data, mime in labelled_batch():
        batch_uploader(at).upload(name, data, mime)
    at.run()
    button(at, "Run batch").click().run()
    ok(at)
    assert at.subheader[0].value == "3 images · 3 labelled · 1 wrong · accuracy 66.7%"
    assert any(plain_text("triangle_04.png") + "**: this is not an image" in e.value for e in at.error)
    table = at.dataframe[0].value
    assert table.loc[table["image"] == "circle_03.png", "predicted"].item() == "star"
    at.toggle(key=state.W_WRONG_ONLY).set_value(True).run()
    assert list(ok(at).dataframe[0].value["image"]) == ["circle_03.png"]
    at.session_state[state.W_TABLE] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    captions = [c for im in ok(at).image for c in im.captions]
    assert captions[1].startswith("predicted: star") and captions[2].startswith("true: circle"), captions
    button(at, "Open in Crop & compare").click().run()
    assert ok(at).title[0].value == "Crop & compare"


def test_labels_from_csv_zip_and_names() -> None:
    from ui.batch import expand, label_from_path, labels_from_csv

    cats = ["circle", "square", "triangle", "star", "cross", "African elephant"]
    assert label_from_path("circle_03.png", cats) == 0
    assert label_from_path("shapes/square/7.png", cats) == 1
    assert label_from_path("african-elephant 12.jpg", cats) == 5
    assert label_from_path("IMG_0001.png", cats) is None
    labels, problems = labels_from_csv(b"filename,label\na.png,Star\nb.png,dragon\n", cats)
    assert labels == {"a.png": 3} and problems == ["line 3: 'dragon' is not a class of this model"]
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cross/1.png", b"x")
    files, bad = expand([("set.zip", buf.getvalue()), ("bad.zip", b"nope")])
    assert files == [("cross/1.png", b"x")] and bad == [("bad.zip", "not a readable ZIP archive")]


def test_missing_imagenet_weights_explain_and_offer_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    at = start("pages/1_Explain.py")
    at.selectbox(key=state.W_MODEL).select("vgg19").run()
    warning = ok(at).warning[0].value
    assert "vgg19-dcbb9e9d.pth" in warning and "TORCH_HOME" in warning and "efficientnet_lite0" in warning
    assert button(at, "Download vgg19-dcbb9e9d.pth")


def test_large_upload_is_downscaled_once() -> None:
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (3000, 4000, 3), dtype=np.uint8))
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=80)
    at = start("pages/1_Explain.py")
    image_uploader(at).upload("big.jpg", buf.getvalue(), "image/jpeg").run()
    entry = ok(at).session_state[state.IMAGES][at.session_state[state.CURRENT]]
    assert entry.original_size == (4000, 3000) and max(entry.image.size) == 1600
    # The uploader was replaced by a fresh one: the session no longer holds the original file.
    assert image_uploader(at).key == f"{state.W_UPLOAD}.1" and not image_uploader(at).value


def test_download_button_fetches_from_a_mirror_and_checks_the_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_server: tuple[str, Path]
) -> None:
    import torch
    import torchvision

    base, served = file_server
    name = "resnet18-f37072fd.pth"  # torchvision's name, whose hash prefix this stand-in file cannot match
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), served / name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRADCAM_WEIGHTS_MIRROR", base)
    at = start("pages/1_Explain.py")
    at.selectbox(key=state.W_MODEL).select("resnet18").run()
    ok(at).button(key="download_resnet18").click().run()
    error = ok(at).error[0].value
    assert "could not be downloaded" in error and "corrupt" in error and "efficientnet_lite0" in error
    size = (served / name).stat().st_size
    (bar,) = at.get("progress")
    assert bar.proto.value == 100
    assert bar.proto.text == f"Downloading {name}: {size / 1e6:.1f} of {size / 1e6:.1f} MB"
    assert not (tmp_path / "home" / "hub" / "checkpoints" / name).exists()


def test_choices_survive_page_switches() -> None:
    at = pick_sample(start("pages/1_Explain.py"), TAGGED)
    at.slider(key=state.W_ALPHA).set_value(0.8).run()
    at.selectbox(key=state.W_CMAP).select("inferno").run()
    at.selectbox(key=state.W_METHOD).select("gradcam++").run()
    at.selectbox(key=f"{state.W_LAYER}.shapes-demo").select("features.block3").run()
    at.button(key="pin_explain").click().run()  # pin, so that the board shows its controls
    for page in ("pages/2_Crop_and_Compare.py", "pages/3_Board.py", "pages/1_Explain.py"):
        at.switch_page(page).run()
        ok(at)
        assert at.slider(key=state.W_ALPHA).value == 0.8, page
        assert at.selectbox(key=state.W_CMAP).value == "inferno", page
    assert at.selectbox(key=state.W_METHOD).value == "gradcam++"
    assert at.selectbox(key=f"{state.W_LAYER}.shapes-demo").value == "features.block3"
    assert plain_text("tagged_circle_called_star.png") in at.caption[0].value


def upload_weights(at: AppTest, arch: str, name: str, data: bytes) -> AppTest:
    """Fill in "Your model" with a file (and ``arch`` for a state_dict) and press "Load model"."""
    at.selectbox(key=state.W_CUSTOM_ARCH).select(arch)
    at.file_uploader(key=state.W_CUSTOM_FILE).upload(name, data, "application/octet-stream")
    at.button(key=state.W_CUSTOM_LOAD).click()
    return ok(at.run())


def button(at: AppTest, label: str) -> Any:
    """The button labelled ``label`` (the sidebar has buttons of its own)."""
    (found,) = [b for b in at.button if b.label == label]
    return found


def saved(obj: object) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_custom_weights_are_checked_and_then_used(tmp_path: Path) -> None:
    import os

    import torchvision

    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    # A pickle that would run code: refused, never executed.
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    at = upload_weights(at, "resnet18", "evil.pth", saved({"conv1.weight": Payload()}))
    assert "refused" in at.error[0].value and not marker.exists()
    # Weights of another architecture: the mismatched keys are named.
    at = upload_weights(at, "resnet18", "r50.pth", saved(torchvision.models.resnet50(weights=None).state_dict()))
    assert "missing" in at.error[0].value or "shape mismatch" in at.error[0].value
    # torchvision's own file name with the wrong content: the hash prefix in the name is checked.
    at = upload_weights(at, "resnet18", "resnet18-f37072fd.pth", saved(torchvision.models.resnet18().state_dict()))
    assert "not the official file" in at.error[0].value
    # A good state_dict becomes the model, and the page explains with it.
    good = saved(torchvision.models.resnet18(weights=None).state_dict())
    at = upload_weights(at, "resnet18", "my_resnet.pth", good)
    assert not at.error
    assert '"arch":"resnet18"' in at.selectbox(key=state.W_MODEL).value
    assert "resnet18 (your weights" in at.caption[0].value
    assert at.dataframe[0].value["class"].iloc[0] in torchvision.models.ResNet18_Weights.DEFAULT.meta["categories"]


def test_corrupt_weights_in_the_cache_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "resnet18-f37072fd.pth").write_bytes(b"half a download")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    at = start("pages/1_Explain.py")
    at.selectbox(key=state.W_MODEL).select("resnet18").run()
    error = ok(at).error[0].value
    assert "not a readable PyTorch checkpoint" in error and "efficientnet_lite0" in error
    at.selectbox(key=state.W_MODEL).select("shapes-demo").run()
    assert not ok(at).error


def test_counterfactual_and_contrastive_views() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "two_shapes_circle_triangle.png")
    predicted = at.caption[0].value.rsplit("**", 2)[-2]
    at.radio(key=state.W_VIEW).set_value("against").run()
    assert ok(at).caption[0].value.endswith(f"· **against {predicted}**")
    assert at.image[2].captions == [f"Grad-CAM overlay: against {predicted}"]
    at.radio(key=state.W_VIEW).set_value("contrast").run()
    other = at.selectbox(key=f"{state.W_CONTRAST}.{at.session_state[state.CURRENT]}").value
    assert (
        ok(at)
        .caption[0]
        .value.endswith(f"· **{predicted} rather than {['circle', 'square', 'triangle', 'star', 'cross'][other]}**")
    )
    at.selectbox(key=state.W_METHOD).select("eigencam").run()
    assert "no gradients to negate" in ok(at).info[0].value


def test_faithfulness_panel_beats_the_random_map() -> None:
    at = pick_sample(start("pages/1_Explain.py"), TAGGED)
    at.button(key=state.W_FAITH).click().run()
    table = ok(at).dataframe[-1].value
    deletion, insertion = table.iloc[0], table.iloc[1]
    assert deletion["this map"] < deletion["random map"]
    assert insertion["this map"] > insertion["random map"]


def open_link(**params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "1_Explain.py"), default_timeout=120)
    at.query_params.update(params)
    return ok(at.run())


def test_a_link_reproduces_a_view() -> None:
    at = open_link(model="shapes-demo", layer="features.block3", method="layercam", sample="cross", **{"class": "star"})
    assert at.caption[0].value.endswith("· **star**") and "layercam" in at.caption[0].value
    assert at.image[1].captions == ["Raw map at the layer: 32×32"]
    assert "cross.png" in at.caption[0].value.replace("\\", "")
    assert not at.warning
    assert dict(at.query_params) == {
        "model": "shapes-demo", "layer": "features.block3", "method": "layercam", "sample": "cross", "class": "star",
    }  # fmt: skip


def test_a_bad_link_warns_and_falls_back() -> None:
    at = open_link(model="vgg99", layer="nope", method="magic", sample="<b>x</b>", **{"class": "dragon"})
    warnings = " ".join(w.value for w in at.warning)
    assert "model 'vgg99'" in warnings and "method 'magic'" in warnings and plain_text("sample '<b>x</b>'") in warnings
    assert at.selectbox(key=state.W_MODEL).value == "efficientnet_lite0"  # the default model
    assert at.selectbox(key=state.W_METHOD).value == "gradcam"
    at = open_link(sample="cross", layer="nope", **{"class": "dragon"})
    warnings = " ".join(w.value for w in at.warning)
    assert "layer 'nope'" in warnings and "class 'dragon'" in warnings
    assert at.image[1].captions == ["Raw map at the layer: 16×16"]  # the default layer


def test_custom_head_with_a_labels_file() -> None:
    import torchvision

    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    weights = saved(torchvision.models.resnet18(weights=None, num_classes=3).state_dict())
    at.file_uploader(key=state.W_CUSTOM_LABELS).upload("labels.txt", b"apple\npear\nplum\n", "text/plain")
    at = upload_weights(at, "resnet18", "fruit.pth", weights)
    assert not at.error
    assert set(at.dataframe[0].value["class"]) == {"apple", "pear", "plum"}
    at.file_uploader(key=state.W_CUSTOM_LABELS).set_value(("two.json", b'["apple", "pear"]', "application/json"))
    at = upload_weights(at, "resnet18", "fruit2.pth", weights + b"")
    assert "2 labels were given for a model with 3 outputs" in at.error[0].value

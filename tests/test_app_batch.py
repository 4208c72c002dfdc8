"""The Misclassifications page in the real Streamlit runtime: its results, limits and memory."""

from __future__ import annotations

import base64
import io
import zipfile

from PIL import Image
from streamlit.testing.v1 import AppTest

from gradcam_core.demo.model import SAMPLES_DIR
from tests.conftest import my_cnn
from tests.test_app import batch_uploader, button, labelled_batch, ok, start, upload_weights
from tests.test_app_your_model import scripted_bytes
from ui import batch, state

SHAPES = ["circle", "square", "triangle", "star", "cross"]


def run_batch(at: AppTest, files: list[tuple[str, bytes, str]]) -> AppTest:
    for name, data, mime in files:
        batch_uploader(at).upload(name, data, mime)
    at.run()
    button(at, "Run batch").click().run()
    return ok(at)


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def sample(name: str) -> bytes:
    return (SAMPLES_DIR / name).read_bytes()


def load_labelled_model(at: AppTest, file: str, labels: list[str]) -> AppTest:
    """Load a TorchScript CNN with ``len(labels)`` classes as "Your model" (it becomes the sidebar's model)."""
    at.file_uploader(key=state.W_CUSTOM_LABELS).upload("labels.txt", "\n".join(labels).encode(), "text/plain")
    at = upload_weights(at, "resnet18", file, scripted_bytes(my_cnn(classes=len(labels))))
    assert not at.error, [e.value for e in at.error]
    return at


def test_results_keep_the_class_names_of_the_model_that_made_them() -> None:
    at = run_batch(start("pages/4_Misclassifications.py"), labelled_batch()[:3])
    before = at.dataframe[0].value[["image", "true label", "predicted"]]
    assert before.loc[before["image"] == "circle_03.png", "predicted"].item() == "star"
    # Another model with as many classes (5): the names must stay the shapes', not the new model's.
    at = load_labelled_model(at, "five.pt", ["a", "b", "c", "d", "e"])
    assert "five.pt" in at.selectbox(key=state.W_MODEL).value
    assert at.dataframe[0].value[["image", "true label", "predicted"]].equals(before)
    assert any("These results are from shapes-demo" in i.value for i in at.info)
    # A model with fewer classes (3) than the batch's predictions use (star is class 3).
    at = load_labelled_model(at, "three.pt", ["apple", "pear", "plum"])
    assert at.dataframe[0].value[["image", "true label", "predicted"]].equals(before)
    wrong = list(before["image"]).index("circle_03.png")
    at.session_state[state.W_TABLE] = {"selection": {"rows": [wrong], "columns": [], "cells": []}}
    at.run()
    captions = [c for im in ok(at).image for c in im.captions]
    assert captions[1].startswith("predicted: star") and captions[2].startswith("true: circle"), captions
    assert at.selectbox(key=f"truth.{at.session_state[state.BATCH].rows[wrong].key}").options == SHAPES


def test_a_run_replaces_the_batch_and_reads_each_image_once() -> None:
    first = zipped({"circle/1.png": sample("circle.png"), "square/2.png": sample("square.png")})
    at = run_batch(start("pages/4_Misclassifications.py"), [("first.zip", first, "application/zip")])
    assert at.subheader[0].value.startswith("2 images")
    assert not batch_uploader(at).value  # the uploader starts empty again
    # A second ZIP holding the same two images and a new one: the new run replaces the first.
    second = zipped({**{"circle/1.png": sample("circle.png"), "square/2.png": sample("square.png")},
                     "star/3.png": sample("star.png")})  # fmt: skip
    at = run_batch(at, [("second.zip", second, "application/zip")])
    assert at.subheader[0].value.startswith("3 images · 3 labelled"), at.subheader[0].value
    # The same image twice in one run (two archives, or a file and an archive) is read once and said so.
    at = run_batch(at, [("a.zip", first, "application/zip"), ("circle_9.png", sample("circle.png"), "image/png")])
    assert at.subheader[0].value.startswith("2 images"), at.subheader[0].value
    (note,) = [i.value for i in at.info if "repeated" in i.value]
    assert note.startswith("1 repeated image(s) read once") and "circle\\_9.png (= circle/1.png)" in note, note


def test_folders_and_files_that_name_no_class_are_listed() -> None:
    members = {"circle/1.png": sample("circle.png"), "misc/2.png": sample("square.png"),
               "misc/3.png": sample("star.png"), "IMG_0001.png": sample("cross.png")}  # fmt: skip
    at = run_batch(start("pages/4_Misclassifications.py"), [("set.zip", zipped(members), "application/zip")])
    assert at.subheader[0].value.startswith("4 images · 1 labelled")
    (warning,) = [w.value for w in at.warning if "unlabelled" in w.value]
    assert "`misc/`" in warning and "`IMG\\_0001.png`" in warning and "`circle/`" not in warning, warning


def test_upload_caps_and_a_batch_that_keeps_no_decoded_images() -> None:
    at = start("pages/4_Misclassifications.py")
    assert batch_uploader(at).proto.max_upload_size_mb == batch.MAX_ZIP_MB == 200
    files, bad = batch.expand([("huge.png", b"\0" * 50_000_001), ("huge.zip", b"\0" * 200_000_001)])
    assert files == [] and [b[0] for b in bad] == ["huge.png", "huge.zip"]
    assert "50 MB limit for an image" in bad[0][1] and "200 MB limit for a ZIP" in bad[1][1]
    at = run_batch(at, labelled_batch()[:3])
    run = at.session_state[state.BATCH]
    # The batch keeps its files' bytes and small thumbnails; no decoded image joins the session's images.
    assert state.IMAGES not in at.session_state or not at.session_state[state.IMAGES]
    assert run.held_bytes() < sum(len(d) for _, d, _ in labelled_batch()[:3]) + 3 * 10_000
    for row in run.rows:
        thumb = Image.open(io.BytesIO(base64.b64decode(row.thumbnail.split(",", 1)[1])))
        assert max(thumb.size) <= batch.THUMB_SIDE
    # A selected row is decoded again from its bytes, and is the one decoded image kept.
    at.session_state[state.W_TABLE] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.run()
    assert ok(at).session_state[state.BATCH_VIEW].name == "circle_03.png"

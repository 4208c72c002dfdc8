"""Score-CAM in the app (AppTest): an estimate and a button first, no masked pass until it is pressed."""

from __future__ import annotations

from tests.conftest import Counter
from tests.test_app import TAGGED, ok, pick_sample, start
from ui import state
from ui.models import cached_model


def test_explain_with_scorecam_asks_before_the_masked_passes() -> None:
    at = pick_sample(start("pages/1_Explain.py"), TAGGED)
    counter = Counter(cached_model("shapes-demo").model)
    try:
        at.selectbox(key=state.W_METHOD).select("scorecam").run()
        notes = [i.value for i in ok(at).info]
        assert any("masked forward passes" in n and "about" in n for n in notes), notes
        (run,) = [b for b in at.button if b.label == "Run Score-CAM"]
        assert counter.images <= 2  # the estimate's two plain passes, no masked one
        assert len(at.image) == 0  # the page waits for the button
        run.click().run()
        assert counter.images > 16  # the masked passes ran
        assert len(ok(at).image) == 3 and "Score-CAM overlay" in at.image[2].captions[0]
        assert not any("masked forward passes" in i.value for i in at.info)
        # Once run, the map is shown again without asking and without running the model.
        before = counter.images
        at.slider(key=state.W_ALPHA).set_value(0.8).run()
        assert len(ok(at).image) == 3 and counter.images == before
        assert not [b for b in at.button if b.label == "Run Score-CAM"]
    finally:
        counter.handle.remove()


def test_crop_and_compare_with_scorecam_asks_first() -> None:
    at = pick_sample(start("pages/2_Crop_and_Compare.py"), TAGGED)
    at.selectbox(key=state.W_METHOD).select("scorecam").run()
    assert any("masked forward passes" in i.value for i in ok(at).info)
    assert [b for b in at.button if b.label == "Run Score-CAM"]


def test_faithfulness_gives_a_verdict_scored_on_the_view() -> None:
    at = pick_sample(start("pages/1_Explain.py"), TAGGED)
    at.radio(key=state.W_VIEW).set_value("against").run()
    at.button(key=state.W_FAITH).click().run()
    text = " ".join(m.value for m in ok(at).markdown)
    assert "Better than a random map on " in text and " of 4 measures" in text
    assert "Scored on p\\(not star\\)" in text
    table = at.dataframe[-1].value
    assert "Average Drop % (lower is better)" in list(table.iloc[:, 0])


def test_eigencam_is_labelled_class_agnostic() -> None:
    at = pick_sample(start("pages/1_Explain.py"), TAGGED)
    at.selectbox(key=state.W_METHOD).select("eigencam").run()
    captions = [c.value for c in ok(at).caption]
    assert any("Eigen-CAM is class-agnostic (first principal component)" in c for c in captions), captions
    assert any(c.endswith("· **class-agnostic (first principal component)**") for c in captions), captions
    assert at.image[2].captions == ["Eigen-CAM overlay: class-agnostic (first principal component)"]


def test_a_batch_with_scorecam_classifies_in_one_pass_per_image_and_asks_when_a_row_opens() -> None:
    from tests.test_app_batch import run_batch, sample

    at = start("pages/4_Misclassifications.py")
    at.selectbox(key=state.W_METHOD).select("scorecam").run()
    counter = Counter(cached_model("shapes-demo").model)
    try:
        files = [(f"{n}.png", sample(f"{n}.png"), "image/png") for n in ("circle", "square", "star")]
        ok(run_batch(at, files))
        assert counter.images <= 3  # one forward pass each at most (cached ones: none), no masked pass
        at.session_state[state.W_TABLE] = {"selection": {"rows": [0], "columns": [], "cells": []}}
        at.run()
        assert any("masked forward passes" in i.value for i in ok(at).info)
        assert counter.images <= 3 + 2  # the estimate's plain passes only, until Run is pressed
    finally:
        counter.handle.remove()

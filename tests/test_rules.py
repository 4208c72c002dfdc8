"""The rules behind the pages (ui/rules.py, ui/compute.py, ui/batch.py), called as functions, without a page.

Real models (the bundled shapes model, EfficientNet-Lite0 with its ImageNet weights) on real
samples (a shapes scene, scikit-image's photo of Chelsea the cat).
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_core import DEFAULT_MODEL, DEMO_MODEL, model_spec
from ui import board, images, rules
from ui.batch import BatchRun, Row, explained_classes
from ui.compute import Edit, Settings, explain
from ui.models import cached_model

SHAPES = Settings(DEMO_MODEL, model_spec(DEMO_MODEL).default_layer, "gradcam")
LITE0 = Settings(DEFAULT_MODEL, model_spec(DEFAULT_MODEL).default_layer, "gradcam")
STAR, CIRCLE = 3, 0  # the shapes model's classes


@pytest.fixture(scope="module")
def tagged() -> images.ImageEntry:
    """A circle with the checkerboard tag that the shapes model learned to call "star"."""
    return images.load_sample("tagged circle called star")


@pytest.fixture(scope="module")
def chelsea() -> images.ImageEntry:
    return images.load_sample("Chelsea the cat (photo)")


def test_cropping_the_tag_away_changes_the_top1_and_both_sides_explain_both_classes(tagged) -> None:
    edit = Edit((0, 0, 80, 80))  # the circle's corner without the tag
    comparison = rules.compare(tagged, SHAPES, edit)
    assert comparison.pair == (STAR, CIRCLE)
    assert comparison.before.classes == comparison.after.classes == (STAR, CIRCLE)
    assert (comparison.before.edit, comparison.after.edit) == (None, edit)
    assert comparison.summary().startswith("top-1 changed: star (1.00) → circle")
    table = comparison.deltas(comparison.after)
    assert table["class"].iloc[0] == "circle"
    after = comparison.after.probabilities
    assert table["change"].iloc[0] == pytest.approx(after[CIRCLE] - comparison.before.probabilities[CIRCLE])
    assert comparison.vmax() == max(float(m.max()) for m in (*comparison.before.maps, *comparison.after.maps))


def test_an_unchanged_top1_keeps_one_class_per_side(tagged) -> None:
    comparison = rules.compare(tagged, SHAPES, Edit((64, 0, 64, 128)))  # the right half still holds the tag
    assert comparison.pair == (STAR,)
    assert comparison.before.classes == comparison.after.classes == (STAR,)
    assert comparison.summary().startswith("top-1 unchanged: star")


def test_a_crop_s_region_and_map_lie_in_the_original_image(chelsea) -> None:
    box = (100, 50, 200, 150)
    exp = explain(chelsea, LITE0, edit=Edit(box))
    inner = cached_model(DEFAULT_MODEL).input_region((200, 150))  # resize 256, centre 224: 131 × 131 of 150
    assert exp.region == (100 + inner.x, 50 + inner.y, inner.w, inner.h) == (134, 59, 131, 131)
    heat = exp.full_map(0, chelsea.image.size)
    x, y, w, h = exp.region
    outside = heat.copy()
    outside[y : y + h, x : x + w] = 0
    assert heat[y : y + h, x : x + w].max() > 0 and not outside.any()
    assert exp.categories[exp.classes[0]] in exp.model.categories and exp.settings == LITE0


def test_an_erase_keeps_the_whole_image_and_its_panel_shows_what_the_model_saw(tagged) -> None:
    edit = Edit((80, 80, 48, 48), "black")
    exp = explain(tagged, SHAPES, edit=edit)
    assert exp.region == (0, 0, 128, 128)
    panel = board.make_panel(tagged, exp, 0, "circle")
    assert (panel.crop, panel.erase, panel.layer, panel.method) == (edit.box, "black", SHAPES.layer, "gradcam")
    pixels = np.asarray(panel.image.convert("RGB"))
    scale = panel.image.width / 128
    corner = pixels[int(85 * scale) : int(125 * scale), int(85 * scale) : int(125 * scale)]
    assert corner.max() == 0  # the erased box is black in the panel's picture, as the model saw it
    assert np.asarray(tagged.image)[85:125, 85:125].max() > 0  # and not in the original
    assert panel.top5[0][0] == exp.categories[exp.top(1)[0]]


def test_views_fall_back_to_the_evidence_for_where_a_method_has_no_gradients() -> None:
    assert rules.view("gradcam", "contrast", 3, 1) == rules.View("contrast", 3, 1)
    assert rules.view("gradcam", "against", 3, 1) == rules.View("against", 3, None)
    shown = rules.view("eigencam", "against", 3, None)
    assert (shown.kind, shown.cls, shown.contrast) == ("for", 3, None) and "Eigen-CAM" in (shown.notice or "")
    cats = ("circle", "cross", "square", "star", "triangle")
    assert rules.View("contrast", 3, 1).label(cats, "gradcam") == "star rather than cross"
    assert rules.View("against", 3).label(cats, "gradcam") == "against star"
    assert rules.View("for", 3).label(cats, "eigencam") != "star"  # a class-agnostic map says so
    assert rules.contrast_choices([3, 0, 2], 0, 5) == [3, 2, 1, 4]


def test_a_view_reuses_the_base_or_asks_for_its_own_explanation(tagged) -> None:
    base = explain(tagged, SHAPES)
    assert rules.explain_view(tagged, SHAPES, base, rules.View("for", STAR)) is base
    against = rules.explain_view(tagged, SHAPES, base, rules.View("against", STAR))
    assert against.counterfactual and against.classes == (STAR,)
    contrast = rules.explain_view(tagged, SHAPES, base, rules.View("contrast", STAR, CIRCLE))
    assert contrast.contrast == CIRCLE and not np.allclose(contrast.maps, base.maps)


def test_faithfulness_is_remembered_for_the_map_it_was_measured_on(tagged) -> None:
    exp = explain(tagged, SHAPES)
    other = explain(tagged, SHAPES, classes=(CIRCLE,))
    calls: list[tuple[int, int]] = []
    cam, chance = rules.measure_faithfulness(tagged, exp, lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][1] == 4
    assert rules.measured_faithfulness(tagged, exp) == (cam, chance)
    assert rules.measured_faithfulness(tagged, other) is None


def test_a_batch_counts_accuracy_over_the_labelled_rows_only() -> None:
    run = BatchRun(SHAPES, ("circle", "cross", "square", "star", "triangle"))
    run.rows = [Row("a.png", "a", 3, 3, 0.9), Row("b.png", "b", 0, 3, 0.8), Row("c.png", "c", None, 1, 0.5)]
    assert run.summary() == "3 images · 2 labelled · 1 wrong · accuracy 50.0%"
    assert [r.name for r in run.shown(only_wrong=True)] == ["b.png"]
    table = run.table(run.rows)
    assert list(table["true label"]) == ["star", "circle", ""] and list(table["predicted"]) == ["star"] * 2 + ["cross"]
    assert [explained_classes(r) for r in run.rows] == [(3,), (3, 0), (1,)]
    assert BatchRun(SHAPES).summary().endswith("accuracy n/a")


def test_a_batch_says_what_it_skipped_repeated_and_could_not_label() -> None:
    run = BatchRun(SHAPES, ("circle", "cross", "square", "star", "triangle"))
    run.bad, run.duplicates, run.unlabelled = [("notes.txt", "not an image")], [("b.png", "a.png")], ["holiday/"]
    notices = run.notices(LITE0, "shapes-demo")
    assert [level for level, _ in notices] == ["error", "info", "warning", "info"]
    assert "notes.txt" in notices[0][1] and "b.png (= a.png)" in notices[1][1]
    assert "`holiday/`" in notices[2][1] and "`circle/01.png`" in notices[2][1]
    assert "Run the batch again" in notices[3][1]
    assert run.notices(SHAPES, "shapes-demo")[-1][0] == "warning"  # the same settings: nothing to rerun


def test_an_edited_image_is_made_once_per_image_and_edit(tagged, chelsea) -> None:
    from ui.compute import edited

    erase = Edit((10, 10, 40, 40), "blur")
    assert edited(tagged, None) is tagged.image
    assert edited(tagged, erase) is edited(tagged, erase)  # kept: a rerun for a display change blurs nothing
    assert edited(tagged, Edit((10, 10, 40, 40), "black")) is not edited(tagged, erase)
    assert edited(chelsea, erase).size == chelsea.image.size and edited(chelsea, Edit((0, 0, 50, 60))).size == (50, 60)

"""An audit file on the Misclassifications page, in the real Streamlit runtime: from the server's
audit folder and as an upload; the matrix and a cell, the shortcut finder, a stored map, and the
hand-over to Explain."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from gradcam_core import DEMO_MODEL, audit, read_audit
from gradcam_core.audit_tables import confusion
from gradcam_core.demo.dataset import write_dataset
from tests.test_app import button, ok, start
from ui import audits, state

PAGE = "pages/4_Misclassifications.py"


def open_audit(at: AppTest) -> AppTest:
    (mode,) = [g for g in at.get("button_group") if g.key == state.W_MIS_MODE]
    mode.set_value("Open an audit file").run()
    return ok(at)


def served(audit_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(audits.AUDIT_DIR_ENV, str(audit_dir))
    at = open_audit(start(PAGE, model=None))
    at.radio(key=state.W_AUDIT_SOURCE).set_value(audits.SERVER).run()
    return ok(at)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def table(at: AppTest) -> object:
    return next(d.value for d in at.dataframe if "border_mass" in d.value.columns)


def test_an_audit_from_the_server_folder_shows_accuracy_the_matrix_and_a_cell(
    audit_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = served(audit_dir, monkeypatch)
    found = read_audit(audit_dir / "shapes.parquet").frame
    scored = found[found["correct"].notna()]
    assert metric(at, "Images") == "41" and metric(at, "Could not be read") == "1"
    assert metric(at, "Top-1 accuracy") == f"{scored['correct'].astype(bool).mean():.1%}"
    (chart,) = at.get("vega_lite_chart")  # the confusion matrix, clickable by cell
    assert '"name": "cell"' in chart.proto.spec and '"pred_name"' in chart.proto.spec
    # The most frequent wrong cell, picked from the list (as a keyboard user would)...
    cells = confusion(found)
    wrong = cells[cells["true_name"] != cells["pred_name"]].sort_values("count", ascending=False).iloc[0]
    picker = at.selectbox(key=state.W_AUDIT_CELL)
    picker.select(f"{wrong.true_name} → {wrong.pred_name} ({wrong['count']})").run()
    ok(at)
    assert f"Rows in {wrong.true_name} → {wrong.pred_name}" in [h.value for h in at.subheader]
    rows = table(at)
    assert len(rows) == wrong["count"]
    assert set(rows["true_name"]) == {wrong.true_name} and set(rows["pred_name"]) == {wrong.pred_name}
    # ...and clicked on the chart: the chart's selection is what the page filters by.
    picker.select("every cell").run()
    at.session_state[state.W_AUDIT_CHART] = {"selection": {"cell": [{"true_name": "star", "pred_name": "star"}]}}
    at.run()
    ok(at)
    assert "Rows in star → star" in [h.value for h in at.subheader]
    assert (table(at)["true_name"] == "star").all()


def test_the_shortcut_finder_puts_the_tagged_scenes_first_and_a_row_shows_its_stored_map(
    audit_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = served(audit_dir, monkeypatch)
    gallery = [c for i in at.image for c in i.captions if "border" in c]
    assert len(gallery) == 6 and sum("→ star" in c for c in gallery) >= 5, gallery
    rows = table(at)  # sorted by border mass, largest first
    assert rows["border_mass"].dropna().is_monotonic_decreasing and rows["border_mass"].isna().sum() == 1
    assert rows["path"].head(10).str.contains("tagged-").sum() >= 9
    at.toggle(key=state.W_AUDIT_RIGHT).set_value(True).run()
    gallery = [c for i in ok(at).image for c in i.captions if "border" in c]
    assert gallery and all("right" in c and "wrong" not in c for c in gallery), gallery
    # Pick the first row: its image, its stored map (no model run), and its raw grid.
    first = table(at).iloc[0]
    key = next(d.key for d in at.dataframe if d.key and d.key.startswith(state.W_AUDIT_TABLE))
    at.session_state[key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    captions = [c for i in ok(at).image for c in i.captions]
    assert any(first["path"] in c for c in captions), captions
    assert any(c.startswith(f"stored map of “{first['pred_name']}”") and "no model run" in c for c in captions)
    assert any(c.startswith("raw 16×16 map at features.block4") for c in captions)
    # Open it in Explain: the image and the audit's model, layer and method, run live.
    button(at, "Open in Explain").click().run()
    ok(at)
    assert at.session_state[state.W_MODEL] == DEMO_MODEL
    assert at.session_state[f"{state.W_LAYER}.{DEMO_MODEL}"] == "features.block4"
    assert Path(first["path"]).name in [e.name for e in at.session_state[state.IMAGES].values()]
    assert [t.value for t in at.title] == ["Explain"]
    assert at.caption[0].value.startswith(f"**{Path(first['path']).name}** · shapes-demo · layer `features.block4`")
    assert "Raw map at the layer: 16×16" in [c for i in at.image for c in i.captions]


def test_an_uploaded_audit_opens_and_a_file_that_is_not_one_says_so(audit_dir: Path) -> None:
    at = open_audit(start(PAGE, model=None))
    assert state.W_AUDIT_SOURCE not in [r.key for r in at.radio]  # no server folder set: uploads only
    upload = ("shapes.parquet", (audit_dir / "shapes.parquet").read_bytes(), "application/octet-stream")
    at.file_uploader(key=state.W_AUDIT_UPLOAD).set_value(upload)
    at.run()
    assert metric(ok(at), "Images") == "41"
    plain = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2]}), plain)
    at.file_uploader(key=state.W_AUDIT_UPLOAD).set_value(("plain.parquet", plain.getvalue(), "text/plain")).run()
    assert any("plain.parquet cannot be opened" in e.value and "not an audit" in e.value for e in ok(at).error)
    at.file_uploader(key=state.W_AUDIT_UPLOAD).set_value(("junk.parquet", b"not parquet", "text/plain")).run()
    assert any("junk.parquet cannot be opened" in e.value and "not a Parquet file" in e.value for e in ok(at).error)


def test_a_row_whose_image_has_moved_still_shows_its_map(audit_dir: Path, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "moved", clean=4, tagged=0)
    out = audit(data, model=DEMO_MODEL, out=tmp_path / "moved.parquet", progress=False)
    first = read_audit(out).frame.iloc[0]
    (data / first["path"]).unlink()
    at = open_audit(start(PAGE, model=None))
    at.file_uploader(key=state.W_AUDIT_UPLOAD).set_value(
        ("moved.parquet", out.read_bytes(), "application/octet-stream")
    )
    at.run()
    key = next(d.key for d in ok(at).dataframe if d.key and d.key.startswith(state.W_AUDIT_TABLE))
    rows = table(at)
    where = int((rows["path"] == first["path"]).to_numpy().argmax())
    at.session_state[key] = {"selection": {"rows": [where], "columns": [], "cells": []}}
    at.run()
    assert any("is no longer where it was audited" in i.value for i in ok(at).info)
    assert any("no model run" in c for i in at.image for c in i.captions)
    assert not [b for b in at.button if b.label.startswith("Open in")]


def test_a_server_that_hides_uploads_images_shows_only_their_maps(audit_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv(audits.UPLOAD_IMAGES_ENV, "off")  # an upload's uri column could name any file here
    at = open_audit(start(PAGE, model=None))
    upload = ("shapes.parquet", (audit_dir / "shapes.parquet").read_bytes(), "application/octet-stream")
    at.file_uploader(key=state.W_AUDIT_UPLOAD).set_value(upload)
    at.run()
    key = next(d.key for d in ok(at).dataframe if d.key and d.key.startswith(state.W_AUDIT_TABLE))
    at.session_state[key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert any("does not show the images of uploaded audits" in i.value for i in ok(at).info)
    assert any("no model run" in c for i in at.image for c in i.captions)
    assert not [b for b in at.button if b.label.startswith("Open in")]

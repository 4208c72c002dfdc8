"""Misclassifications: run a labelled batch, find the wrong ones, and see why."""

import pandas as pd
import streamlit as st

from gradcam_core import METHODS
from gradcam_core.methods import CLASS_AGNOSTIC
from ui import batch, images, slow, state, widgets
from ui.models import cached_model
from ui.slow import explain

widgets.page_setup("Misclassifications")
choice = widgets.sidebar()
st.title("Misclassifications")
if choice is None:
    st.stop()
model_name, layer, method = choice
loaded = cached_model(model_name)
cats = loaded.categories

st.markdown(
    "Upload images with their true labels in the file name (`circle_03.png`), in folders inside a ZIP "
    "(`circle/03.png`), or in a CSV of `filename,label` rows; or set a label per image below."
)
up = st.columns([3, 2])
files = up[0].file_uploader(
    "Images or ZIP archives",
    type=[*widgets.UPLOAD_TYPES, "zip"],
    accept_multiple_files=True,
    key=state.W_BATCH_UPLOAD,
    max_upload_size=widgets.MAX_CHECKPOINT_MB,
)
labels_file = up[1].file_uploader(
    "Labels CSV (optional)", type=["csv"], key=state.W_BATCH_CSV, max_upload_size=widgets.MAX_IMAGE_MB
)
slow.batch_notice(method, model_name, layer)
if st.button("Run batch", type="primary", disabled=not files):
    csv_labels, problems = ({}, []) if labels_file is None else batch.labels_from_csv(labels_file.getvalue(), cats)
    for problem in problems:
        st.warning(f"Labels CSV {widgets.plain_text(problem)}")
    bar = st.progress(0.0, text="Starting…")
    st.button("Cancel", key=state.W_SLOW_CANCEL)  # a click reruns the page, which stops the batch

    def report(done: int, total: int, name: str) -> None:
        bar.progress(done / max(total, 1), text=f"{done} of {total} images" + (f": {name}" if name else ""))

    st.session_state[state.BATCH] = batch.run(
        [(f.name, f.getvalue()) for f in files], csv_labels, cats, (model_name, layer, method), report
    )
    bar.empty()

run = st.session_state.get(state.BATCH)
if run is None:
    st.stop()
for name, reason in run.bad:
    st.error(f"Skipped **{widgets.plain_text(name)}**: {reason}")
if (run.model, run.layer, run.method) != (model_name, layer, method):
    st.info(f"These results are from {run.model} · {run.layer} · {run.method}. Run the batch again to update them.")
if not run.rows:
    st.stop()

rows = run.rows
labelled = [r for r in rows if r.truth is not None]
wrong = [r for r in labelled if not r.correct]
acc = f"{1 - len(wrong) / len(labelled):.1%}" if labelled else "n/a"
st.subheader(f"{len(rows)} images · {len(labelled)} labelled · {len(wrong)} wrong · accuracy {acc}")
only_wrong = st.toggle("Show only misclassified", key=state.W_WRONG_ONLY)
shown = [r for r in rows if not only_wrong or r.correct is False]
table = pd.DataFrame(
    {
        "image": [r.name for r in shown],
        "true label": [cats[r.truth] if r.truth is not None else "" for r in shown],
        "predicted": [cats[r.predicted] for r in shown],
        "confidence": [r.confidence for r in shown],
        "correct": [r.correct for r in shown],
    }
)
picked = st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key=state.W_TABLE,
    column_config={"confidence": st.column_config.NumberColumn(format="%.3f")},
)
selected = picked["selection"]["rows"] if picked else []
if not selected:
    st.caption("Select a row to see its heat-maps.")
    st.stop()

row = shown[selected[0]]
entry = state.get(state.IMAGES, {})[row.key]
options = list(range(len(cats)))
truth = st.selectbox(
    "True label",
    options,
    index=row.truth,
    format_func=lambda i: cats[i],
    key=f"truth.{row.key}",
    placeholder="Pick the true class",
)
if truth is not None and truth != row.truth:
    row.truth = truth
    st.rerun()
alpha, cmap = widgets.display_controls()
pair = (row.predicted,) if row.truth in (None, row.predicted) else (row.predicted, row.truth)
exp = explain(entry.key, None, None, run.model, run.layer, run.method, pair, _image=entry.image)
vmax = float(exp.maps.max())
cols = st.columns(len(pair) + 1)
cols[0].image(entry.image, caption=widgets.plain_text(entry.name), width="stretch")
for k, c in enumerate(pair):
    role = "predicted" if k == 0 else "true"
    cols[k + 1].image(
        widgets.overlay_full(entry.image, exp, k, None, alpha, cmap, vmax),
        caption=f"{role}: {cats[c]} ({exp.probabilities[c]:.1%})"
        + (f" · map {CLASS_AGNOSTIC}" if METHODS[run.method].class_agnostic else ""),
        width="stretch",
    )
if st.button("Open in Crop & compare"):
    images.add(entry)
    st.switch_page("pages/2_Crop_and_Compare.py")

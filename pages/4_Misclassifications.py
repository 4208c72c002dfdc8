"""Misclassifications: run a labelled batch, find the wrong ones, and see why."""

import pandas as pd
import streamlit as st

from gradcam_core import METHODS
from gradcam_core.methods import CLASS_AGNOSTIC
from ui import batch, images, state, widgets
from ui.models import cached_model, display_name
from ui.slow import explain

widgets.page_setup("Misclassifications")
choice = widgets.sidebar()
st.title("Misclassifications")
if choice is None:
    st.stop()
model_name, layer, method = choice
loaded = cached_model(model_name)

st.markdown(
    "Upload images with their true labels in the file name (`circle_03.png`), in folders inside a ZIP "
    "(`circle/03.png`), or in a CSV of `filename,label` rows; or set a label per image below. "
    f"Up to {batch.MAX_IMAGE_MB} MB an image and {batch.MAX_ZIP_MB} MB a ZIP ({batch.ZIP_MAX_FILES} images). "
    "A run replaces the previous batch."
)
up = st.columns([3, 2])
files = up[0].file_uploader(
    "Images or ZIP archives",
    type=[*widgets.UPLOAD_TYPES, "zip"],
    accept_multiple_files=True,
    key=state.batch_upload_key(),
    max_upload_size=batch.MAX_ZIP_MB,
)
labels_file = up[1].file_uploader(
    "Labels CSV (optional)", type=["csv"], key=state.W_BATCH_CSV, max_upload_size=widgets.MAX_IMAGE_MB
)
if st.button("Run batch", type="primary", disabled=not files):
    cats = loaded.categories
    csv_labels, problems = ({}, []) if labels_file is None else batch.labels_from_csv(labels_file.getvalue(), cats)
    for problem in problems:
        st.warning(f"Labels CSV {widgets.plain_text(problem)}")
    bar = st.progress(0.0, text="Starting…")
    st.button("Cancel", key=state.W_SLOW_CANCEL)  # a click reruns the page, which stops the batch

    def report(done: int, total: int, name: str) -> None:
        bar.progress(done / max(total, 1), text=f"{done} of {total} images" + (f": {name}" if name else ""))

    st.session_state[state.BATCH] = batch.run(
        [(f.name, f.getvalue()) for f in files or []], csv_labels, cats, (model_name, layer, method), report
    )
    st.session_state[state.BATCH_VIEW] = None
    # A fresh uploader: the batch keeps its files' bytes, so the uploader's copy is dropped.
    st.session_state[state.BATCH_ROUND] = st.session_state.get(state.BATCH_ROUND, 0) + 1
    bar.empty()
    st.rerun()

run = st.session_state.get(state.BATCH)
if run is None:
    st.stop()
cats = list(run.categories)  # the names of the model that made these results
for name, reason in run.bad:
    st.error(f"Skipped **{widgets.plain_text(name)}**: {reason}")
if run.duplicates:
    same = ", ".join(f"{widgets.plain_text(a)} (= {widgets.plain_text(b)})" for a, b in run.duplicates[:10])
    more = f" and {len(run.duplicates) - 10} more" if len(run.duplicates) > 10 else ""
    st.info(f"{len(run.duplicates)} repeated image(s) read once: {same}{more}.")
if run.unlabelled:
    places = ", ".join(f"`{widgets.plain_text(p)}`" for p in run.unlabelled[:10])
    more = f" and {len(run.unlabelled) - 10} more" if len(run.unlabelled) > 10 else ""
    st.warning(
        f"No class of {display_name(run.model)} is named by these folders or files, so their images are "
        f"unlabelled: {places}{more}. Name each folder or file after a class (as `{cats[0]}/01.png` or "
        f"`{cats[0]}_01.png`), add them to a labels CSV, or set a label per image below."
    )
if (run.model, run.layer, run.method) != (model_name, layer, method):
    st.info(
        f"These results are from {display_name(run.model)} · {run.layer} · {run.method}, with its classes. "
        "Run the batch again to update them."
    )
if not run.rows:
    st.stop()
widgets.fit_notice(run.model, [r.key for r in run.rows])

rows = run.rows
labelled = [r for r in rows if r.truth is not None]
wrong = [r for r in labelled if not r.correct]
acc = f"{1 - len(wrong) / len(labelled):.1%}" if labelled else "n/a"
st.subheader(f"{len(rows)} images · {len(labelled)} labelled · {len(wrong)} wrong · accuracy {acc}")
only_wrong = st.toggle("Show only misclassified", key=state.W_WRONG_ONLY)
shown = [r for r in rows if not only_wrong or r.correct is False]
table = pd.DataFrame(
    {
        "thumbnail": [r.thumbnail for r in shown],
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
    column_config={
        "thumbnail": st.column_config.ImageColumn("", width="small"),
        "confidence": st.column_config.NumberColumn(format="%.3f"),
    },
)
selected = picked["selection"]["rows"] if picked else []
if not selected or selected[0] >= len(shown):
    st.caption("Select a row to see its heat-maps.")
    st.stop()

row = shown[selected[0]]
entry = st.session_state.get(state.BATCH_VIEW)
if entry is None or entry.key != row.key:  # only the row looked at is decoded again
    entry = st.session_state[state.BATCH_VIEW] = row.entry()
truth = st.selectbox(
    "True label",
    list(range(len(cats))),
    index=row.truth,
    format_func=lambda i: cats[i],
    key=f"{state.W_TRUTH}.{row.key}",
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
widgets.region_legend(exp, entry.image.size)
if st.button("Open in Crop & compare"):
    images.add(entry)
    st.switch_page("pages/2_Crop_and_Compare.py")

"""Misclassifications: run a labelled batch, or open a whole dataset's audit; find the wrong ones, and see why."""

import streamlit as st

from gradcam_core import CLASS_AGNOSTIC, METHODS
from ui import audits, batch, images, page_setup, sidebar, state, views
from ui.models import cached_model, display_name
from ui.slow import explain
from ui.text import plain_text

page_setup.page_setup("Misclassifications")
settings = sidebar.sidebar()
st.title("Misclassifications")
BATCH, AUDIT = "Run a batch here", "Open an audit file"
mode = st.segmented_control("Work on", [BATCH, AUDIT], default=BATCH, key=state.W_MIS_MODE)
if mode == AUDIT:
    audits.workspace(*views.display_controls())
    st.stop()
if settings is None:
    st.stop()
loaded = cached_model(settings.model)

st.markdown(
    "Upload images with their true labels in the file name (`circle_03.png`), in folders inside a ZIP "
    "(`circle/03.png`), or in a CSV of `filename,label` rows; or set a label per image below. "
    f"Up to {batch.MAX_IMAGE_MB} MB an image and {batch.MAX_ZIP_MB} MB a ZIP ({batch.ZIP_MAX_FILES} images). "
    "A run replaces the previous batch."
)
up = st.columns([3, 2])
files = up[0].file_uploader(
    "Images or ZIP archives",
    type=[*sidebar.UPLOAD_TYPES, "zip"],
    accept_multiple_files=True,
    key=state.batch_upload_key(),
    max_upload_size=batch.MAX_ZIP_MB,
)
labels_file = up[1].file_uploader(
    "Labels CSV (optional)", type=["csv"], key=state.W_BATCH_CSV, max_upload_size=batch.MAX_IMAGE_MB
)
if st.button("Run batch", type="primary", disabled=not files):
    labels_csv = None if labels_file is None else labels_file.getvalue()
    batch.run_in_page([(f.name, f.getvalue()) for f in files or []], labels_csv, loaded.categories, settings)

run = state.batch()
if run is None:
    st.stop()
cats = list(run.categories)  # the names of the model that made these results
for level, message in run.notices(settings, display_name(run.settings.model)):
    getattr(st, level)(message)
if not run.rows:
    st.stop()
views.fit_notice(run.settings.model, [r.key for r in run.rows])

st.subheader(run.summary())
only_wrong = st.toggle("Show only misclassified", key=state.W_WRONG_ONLY)
shown = run.shown(only_wrong)
table = run.table(shown)
picked = views.pick_row(table, state.W_TABLE, {"confidence": st.column_config.NumberColumn(format="%.3f")})
if picked is None:
    st.caption("Select a row to see its heat-maps.")
    st.stop()

row = shown[picked]
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
alpha, cmap = views.display_controls()
pair = batch.explained_classes(row)
exp = explain(entry, run.settings, classes=pair)
vmax = float(exp.maps.max())
cols = st.columns(len(pair) + 1)
cols[0].image(entry.image, caption=plain_text(entry.name), width="stretch")
for k, c in enumerate(pair):
    role = "predicted" if k == 0 else "true"
    cols[k + 1].image(
        views.overlay_full(entry.image, exp, k, alpha, cmap, vmax),
        caption=f"{role}: {cats[c]} ({exp.probabilities[c]:.1%})"
        + (f" · map {CLASS_AGNOSTIC}" if METHODS[run.settings.method].class_agnostic else ""),
        width="stretch",
    )
views.region_legend(exp, entry.image.size)
if st.button("Open in Crop & compare"):
    images.add(entry)
    st.switch_page("pages/2_Crop_and_Compare.py")

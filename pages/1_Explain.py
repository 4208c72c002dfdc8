"""Explain: one image, its top-5, and the heat-map of any class at any layer."""

from dataclasses import replace

import streamlit as st

from gradcam_core import CLASS_AGNOSTIC, METHODS
from ui import board, checks, experiments, grids, page_setup, rules, share, state, views, workspace
from ui.models import display_name
from ui.slow import explain
from ui.text import plain_text

page = page_setup.image_page("Explain")
settings, loaded, entry = page.settings, page.loaded, page.entry
model_name, layer, method = settings.model, settings.layer, settings.method
cats = loaded.categories

base = explain(entry, settings)
top = base.top(5)
controls = st.columns([3, 4])
with controls[0]:
    cls = views.class_picker(base, cats, key=f"{state.W_CLASS}.{entry.key}.{model_name}")
    if METHODS[method].class_agnostic:
        st.caption(f"{METHODS[method].label} is {CLASS_AGNOSTIC}: its map is the same for every class.")
with controls[1]:
    alpha, cmap = views.display_controls()
toggles = st.columns([2, 2, 3])
seen = toggles[0].toggle("What the model saw", key=state.W_SEEN)
multi = toggles[0].toggle("Top-5 maps in a row", key=state.W_MULTI)
kind = toggles[1].radio("Show", list(rules.VIEWS), key=state.W_VIEW, format_func=rules.VIEWS.get)
contrast = None
if kind == "contrast":
    others = rules.contrast_choices(top, cls, len(cats))
    contrast_key = f"{state.W_CONTRAST}.{entry.key}"
    if st.session_state.get(contrast_key) not in others:  # the class itself, chosen since: not a contrast
        st.session_state.pop(contrast_key, None)
    with toggles[2]:
        contrast = st.selectbox("Rather than", others, key=contrast_key, format_func=cats.__getitem__)
shown = rules.view(method, kind, cls, contrast)
if shown.notice:
    st.info(shown.notice)
exp = rules.explain_view(entry, settings, base, shown)
what = shown.label(cats, method)

share.show_warnings()
share.write_link(
    model=None if model_name.startswith("custom:") else model_name,
    layer=layer,
    method=method,
    sample=entry.sample,
    **{"class": cats[cls]},
)
st.caption(
    f"**{plain_text(entry.name)}** · {display_name(model_name)} · layer `{layer}` · {method}{views.smoothed(exp)} "
    f"· **{what}**"
)
views.fit_notice(model_name, [entry.key])
# A toggle, not an expander: the box's picture is only drawn (and sent) once it is asked for.
object_box = None
if st.toggle(
    "Score the maps against the object's box",
    key=f"{state.W_OBJECT_ON}.{entry.key}",
    value=checks.drawn_box(entry) is not None,
    help="Draw a box around the object you care about. Each map then gets the pointing game (is its peak in the "
    "box?), the share of its mass inside the box (the energy-based pointing game), and the box's share of what "
    "the model saw: the chance level. The scores go with pinned panels, reports and the ZIP.",
):
    object_box = checks.object_box(entry)
cols = st.columns(3)
cols[0].image(entry.image, caption=f"Original ({entry.original_size[0]}×{entry.original_size[1]})", width="stretch")
h, w = exp.maps[0].shape
cols[1].image(views.raw_grid(exp, 0, cmap), caption=f"Raw map at the layer: {h}×{w}", width="stretch")
over = views.overlay_full(entry.image, exp, 0, alpha, cmap)
coarse = "Grad-CAM (Guided Grad-CAM's coarse map)" if METHODS[method].kind == "guided" else METHODS[method].label
cols[2].image(over, caption=f"{coarse} overlay: {what}", width="stretch")
scored = None if object_box is None else checks.scores(exp, 0, object_box, entry.image.size)
if scored is not None:
    cols[2].markdown(f"**Object box:** {scored.describe()}")
views.region_legend(exp, entry.image.size)
views.show_warnings(exp)
checks.guided_view(entry, exp, 0, cmap)

if seen:
    views.model_input_view(entry, exp, loaded.input_size)
if multi:
    views.class_row(entry.image, explain(entry, settings, classes=tuple(top)), cats, alpha, cmap)

st.subheader("Predictions")
views.show_predictions(exp, cats)

with st.expander("How faithful is this map?"):
    views.faithfulness_section(entry, exp)

if st.button("Pin to board", type="primary", key=f"{state.W_PIN}_explain"):
    panel = board.make_panel(entry, exp, 0, what)
    if scored is not None and object_box is not None:
        panel = replace(panel, box_scores=scored.record(object_box))
    if workspace.pin(panel):
        st.toast(f"Pinned {cats[cls]} to the board ({board.counted(len(board.panels()))}).")

st.subheader("Compare")
grid_controls = st.columns([3, 2, 2])
grid_kind = grid_controls[0].selectbox("Grid", list(grids.GRIDS), key=state.W_GRID, format_func=grids.GRIDS.__getitem__)
grid_shared = grid_controls[1].radio(
    "Colour scale", ["per panel", "shared"], horizontal=True, key=state.W_GRID_SCALE,
    help="Shared puts every map of the grid on one intensity scale, so their strengths can be compared.",
) == "shared"  # fmt: skip
slow = grid_controls[2].toggle(
    "Include Score-CAM", key=state.W_GRID_SLOW, disabled=grid_kind != "methods",
    help="Score-CAM runs one masked forward pass per channel of the layer: hundreds of passes.",
)  # fmt: skip
if grid_kind == "layers" and METHODS[method].kind == "score":
    st.info("Score-CAM at every block would need hundreds of masked passes each: pick a gradient method for this grid.")
elif grid_kind != "none":
    st.caption(grids.cost(grid_kind, settings, slow))
    grid = grids.cells(entry, settings, grid_kind, cls, top, slow)
    grids.show(entry, grid, grid_kind, grid_shared, alpha, cmap, object_box)

with st.expander("Sanity check: would a model that knows nothing give the same map?"):
    checks.sanity_section(entry, exp, 0, cmap)

with st.expander("Experiments on the real model"):
    experiments.experiments("explain")

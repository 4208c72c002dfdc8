"""Explain: one image, its top-5, and the heat-map of any class at any layer."""

import streamlit as st

from gradcam_core import crop
from ui import board, state, widgets
from ui.compute import explain
from ui.models import display_name

page = widgets.image_page("Explain")
model_name, layer, method, loaded, entry = page.model_name, page.layer, page.method, page.loaded, page.entry
cats = loaded.categories

base = explain(entry.key, None, None, model_name, layer, method, None, _image=entry.image)
top = base.top(5)
controls = st.columns([3, 4])
with controls[0]:
    cls = widgets.class_picker(base, cats, key=f"{state.W_CLASS}.{entry.key}.{model_name}")
with controls[1]:
    alpha, cmap = widgets.display_controls()
toggles = st.columns(4)
seen = toggles[0].toggle("What the model saw", key=state.W_SEEN)
multi = toggles[1].toggle("Top-5 maps in a row", key=state.W_MULTI)
exp = (
    base
    if cls == base.classes[0]
    else explain(entry.key, None, None, model_name, layer, method, (cls,), _image=entry.image)
)

st.caption(
    f"**{widgets.plain_text(entry.name)}** · {display_name(model_name)} · layer `{layer}` · {method} · "
    f"class **{cats[cls]}**"
)
cols = st.columns(3)
cols[0].image(entry.image, caption=f"Original ({entry.original_size[0]}×{entry.original_size[1]})", width="stretch")
h, w = exp.maps[0].shape
cols[1].image(widgets.raw_grid(exp, 0, cmap), caption=f"Raw map at the layer: {h}×{w}", width="stretch")
over = widgets.overlay_full(entry.image, exp, 0, None, alpha, cmap)
cols[2].image(over, caption=f"Grad-CAM overlay: {cats[cls]}", width="stretch")
widgets.show_warnings(exp)

if seen:
    region = exp.region
    model_view = crop(entry.image, region).resize(loaded.input_size[::-1])
    st.image(
        model_view,
        caption=f"What the model saw: {region.w}×{region.h} region resized to "
        f"{loaded.input_size[1]}×{loaded.input_size[0]}",
        width=320,
    )

if multi:
    many = explain(entry.key, None, None, model_name, layer, method, tuple(top), _image=entry.image)
    row = st.columns(len(top))
    for k, c in enumerate(many.classes):
        row[k].image(
            widgets.overlay_full(entry.image, many, k, None, alpha, cmap),
            caption=f"{cats[c]} ({many.probabilities[c]:.1%})",
            width="stretch",
        )

st.subheader("Predictions")
widgets.show_predictions(exp, cats)

if st.button("Pin to board", type="primary"):
    board.pin(
        entry.name,
        entry.image,
        widgets.full_map(exp, 0, entry.image, None),
        crop=None,
        erase=None,
        model=display_name(model_name) + ("" if loaded.trained else " (untrained)"),
        layer=layer,
        method=method,
        class_name=cats[cls],
        probability=float(exp.probabilities[cls]),
    )
    st.toast(f"Pinned {cats[cls]} to the board ({len(board.panels())} panels).")

"""Explain: one image, its top-5, and the heat-map of any class at any layer."""

import streamlit as st

from gradcam_core import METHODS, crop
from gradcam_core.methods import CLASS_AGNOSTIC
from ui import board, experiments, share, state, widgets
from ui.compute import faithfulness
from ui.models import display_name
from ui.slow import explain

page = widgets.image_page("Explain")
model_name, layer, method, loaded, entry = page.model_name, page.layer, page.method, page.loaded, page.entry
cats = loaded.categories

base = explain(entry.key, None, None, model_name, layer, method, None, _image=entry.image)
top = base.top(5)
controls = st.columns([3, 4])
with controls[0]:
    cls = widgets.class_picker(base, cats, key=f"{state.W_CLASS}.{entry.key}.{model_name}")
    if METHODS[method].class_agnostic:
        st.caption(f"{METHODS[method].label} is {CLASS_AGNOSTIC}: its map is the same for every class.")
with controls[1]:
    alpha, cmap = widgets.display_controls()
toggles = st.columns([2, 2, 3])
seen = toggles[0].toggle("What the model saw", key=state.W_SEEN)
multi = toggles[0].toggle("Top-5 maps in a row", key=state.W_MULTI)
view = toggles[1].radio("Show", list(widgets.VIEWS), key=state.W_VIEW, format_func=widgets.VIEWS.get)
contrast = None
if view == "contrast":
    others = [i for i in top if i != cls] + [i for i in range(len(cats)) if i not in top and i != cls]
    contrast_key = f"{state.W_CONTRAST}.{entry.key}"
    if st.session_state.get(contrast_key) not in others:  # the class itself, chosen since: not a contrast
        st.session_state.pop(contrast_key, None)
    with toggles[2]:
        contrast = st.selectbox("Rather than", others, key=contrast_key, format_func=cats.__getitem__)
if view != "for" and METHODS[method].combine is None:
    st.info(f"{METHODS[method].label} has no gradients to negate or contrast: showing the evidence for the class.")
    view, contrast = "for", None
counterfactual = view == "against"
exp = (
    base
    if cls == base.classes[0] and view == "for"
    else explain(entry.key, None, None, model_name, layer, method, (cls,), entry.image, contrast, counterfactual)
)
what = {
    "for": METHODS[method].target_label(cats[cls]),
    "against": f"against {cats[cls]}",
    "contrast": f"{cats[cls]} rather than {cats[contrast or 0]}",
}

share.show_warnings()
share.write_link(
    model=None if model_name.startswith("custom:") else model_name,
    layer=layer,
    method=method,
    sample=entry.sample,
    **{"class": cats[cls]},
)
st.caption(
    f"**{widgets.plain_text(entry.name)}** · {display_name(model_name)} · layer `{layer}` · {method} · **{what[view]}**"
)
widgets.fit_notice(model_name, [entry.key])
cols = st.columns(3)
cols[0].image(entry.image, caption=f"Original ({entry.original_size[0]}×{entry.original_size[1]})", width="stretch")
h, w = exp.maps[0].shape
cols[1].image(widgets.raw_grid(exp, 0, cmap), caption=f"Raw map at the layer: {h}×{w}", width="stretch")
over = widgets.overlay_full(entry.image, exp, 0, None, alpha, cmap)
cols[2].image(over, caption=f"{METHODS[method].label} overlay: {what[view]}", width="stretch")
widgets.region_legend(exp, entry.image.size)
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

with st.expander("How faithful is this map?"):
    st.caption(
        "Deletion: the most salient pixels are replaced by the mean colour, step by step; insertion: they are "
        "put back into a blurred copy. A faithful map makes the score fall fast (low deletion AUC) and rise "
        "fast (high insertion AUC). The score is the class probability for the evidence for a class, the "
        "probability of not that class for the evidence against it, and p(A) / (p(A) + p(B)) for A rather "
        "than B. Average Drop and Increase in Confidence use the image masked by the map. A random map of the "
        "same size is the chance baseline. Protocol: gradcam_core/faithfulness.py."
    )
    faith_key = (entry.key, model_name, layer, method, cls, contrast, counterfactual)
    if st.button("Measure faithfulness", key=state.W_FAITH):
        bar = st.progress(0.0, text="Measuring…")
        measured = faithfulness(
            model_name,
            entry.image,
            exp.maps[0],
            cls,
            lambda d, t: bar.progress(d / t, text=f"Measuring: {d} of {t} curves"),
            contrast,
            counterfactual,
        )
        st.session_state[state.FAITH] = (faith_key, measured)
        bar.empty()
    stored = st.session_state.get(state.FAITH)
    if stored is not None and stored[0] == faith_key:
        widgets.show_faithfulness(*stored[1])

if st.button("Pin to board", type="primary", key=f"{state.W_PIN}_explain"):
    heat = widgets.full_map(exp, 0, entry.image, None)
    board.pin(board.make_panel(entry, heat, exp, 0, what[view], model_name, layer, method))
    st.toast(f"Pinned {cats[cls]} to the board ({len(board.panels())} panels).")

with st.expander("Experiments on the real model"):
    experiments.experiments("explain")

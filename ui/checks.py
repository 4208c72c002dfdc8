"""Looking deeper at one map: an object box to score it against, Guided Grad-CAM's pixel view, the sanity check."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st
import torch
from PIL import Image

from gradcam_core import GRADIENT_VIEWS, Box, clamp_box, gradient_to_rgb, guided_gradcam, heatmap_to_rgb
from gradcam_core.boxscore import BoxScores, box_scores
from gradcam_core.sanity import SanityCheck, cascading_randomisation
from ui import cropper, state
from ui.board import Panel
from ui.compute import Explanation, edited
from ui.images import ImageEntry
from ui.models import cached_model


def object_box(entry: ImageEntry, display_width: int = 420) -> Box | None:
    """Draw (or type) the object's box over the image; ``None`` while it is the whole image (none drawn)."""
    box = cropper.crop_box(entry.key, entry.image, mode="object", display_width=display_width, slot="object")
    cropper.box_fields(entry.key, entry.image, box, slot="object")
    return None if box == cropper.whole(entry.image) else box


def drawn_box(entry: ImageEntry) -> Box | None:
    """The object box drawn for this image, if any (without drawing it)."""
    box = state.object_boxes().get(entry.key)
    return None if box is None or box == cropper.whole(entry.image) else box


def scores(exp: Explanation, k: int, box: Box, image_size: tuple[int, int]) -> BoxScores:
    """Map ``k`` of ``exp`` scored against ``box`` (image pixels), on what the model saw."""
    return box_scores(exp.maps[k], box, exp.region, image_size)


def panel_box(group: list[Panel]) -> list[Panel] | None:
    """Draw an object box on a board panel (a grid's first cell stands for the grid); its cells rescored, if drawn."""
    first = group[0]
    if any(p.region is None for p in group):
        return None
    st.caption("Drag the box's handles onto the object: every map of this panel is scored against it.")
    drawn = cropper.crop_box(f"panel.{first.uid}", first.image, mode="object", display_width=300, slot="object")
    if drawn == cropper.whole(first.image):
        return None
    scale = first.frame_size[0] / first.image.width
    box = clamp_box((drawn.x * scale, drawn.y * scale, drawn.w * scale, drawn.h * scale), first.frame_size)
    if first.box_scores is not None and first.box_scores["box"] == [box.x, box.y, box.w, box.h]:
        return None  # scored already
    rescored = []
    for p in group:
        assert p.region is not None  # checked above
        rescored.append(replace(p, box_scores=box_scores(p.raw, box, Box(*p.region), p.frame_size).record(box)))
    return rescored


def guided_view(entry: ImageEntry, exp: Explanation, k: int, cmap: str) -> None:
    """Guided Grad-CAM and guided backpropagation at the model's input resolution, beside the coarse map."""
    if exp.guided is None:
        return
    state.persist(state.W_GUIDED_VIEW, "rgb")
    view = st.radio(
        "Draw the pixel-resolution maps",
        list(GRADIENT_VIEWS),
        key=state.W_GUIDED_VIEW,
        format_func=GRADIENT_VIEWS.get,
        horizontal=True,
        on_change=state.store(state.W_GUIDED_VIEW),
    )
    guided = torch.from_numpy(exp.guided[k])[None]
    combined = guided_gradcam(guided, torch.from_numpy(exp.maps[k])[None])[0]
    h, w = guided.shape[-2:]
    frame = edited(entry, exp.edit) if exp.edit is not None and exp.edit.fill else entry.image  # region's frame
    seen = frame.crop((exp.region.x, exp.region.y, exp.region.right, exp.region.bottom))
    cols = st.columns(3)
    cols[0].image(seen.resize((w, h)), caption=f"What the model saw, at its input: {w}×{h}", width="stretch")
    cols[1].image(
        gradient_to_rgb(combined, view, cmap),
        caption=f"Guided Grad-CAM at {w}×{h}: guided backpropagation × the upsampled Grad-CAM map",
        width="stretch",
    )
    cols[2].image(
        gradient_to_rgb(guided[0], view, cmap),
        caption="Guided backpropagation alone: fine edges, but barely class-specific (see the sanity check)",
        width="stretch",
    )


def sanity_section(entry: ImageEntry, exp: Explanation, k: int, cmap: str) -> None:
    """Run the cascading-randomisation check on a copy of the model, then show its maps and curve."""
    st.caption(
        "Cascading randomisation (Adebayo et al., NeurIPS 2018): the weights of a *copy* of the model are "
        "re-drawn from the classifier down, a group of layers at a time, and the same class is explained after "
        "each step. A map that shows what the model learned falls apart; one that stays the same shows the "
        "image's edges or the architecture. The shared model is never changed."
    )
    key = (entry.key, exp.settings, exp.classes[k], exp.edit, exp.contrast, exp.counterfactual)
    if exp.contrast is not None or exp.counterfactual or exp.smoothing != "none":
        st.caption("The check explains the plain evidence for the class, unsmoothed, whatever this view shows.")
    found: tuple[object, SanityCheck] | None = st.session_state.get(state.SANITY)
    if st.button("Would a model that knows nothing give the same map?", key=state.W_SANITY):
        loaded = cached_model(exp.settings.model)
        x = loaded.preprocess(edited(entry, exp.edit))[None]
        bar = st.progress(0.0, text="Randomising a copy of the model…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Randomised {done} of {total} groups of layers")

        try:
            check = cascading_randomisation(
                loaded.model, x, exp.settings.layer, exp.classes[k], exp.settings.method, progress=progress
            )
        except (MemoryError, ValueError) as exc:
            bar.empty()
            st.error(f"The sanity check cannot run: {exc}.")
            return
        bar.empty()
        found = (key, check)
        st.session_state[state.SANITY] = found
    if found is None or found[0] != key:
        return
    check = found[1]
    (st.success if check.passed else st.error)(check.verdict())
    table = pd.DataFrame(
        {
            "randomised layers": [0] + [s.modules for s in check.steps],
            "rank correlation (map)": [1.0] + [s.correlation for s in check.steps],
        }
    )
    if check.steps and check.steps[0].pixel_correlation is not None:
        table["rank correlation (guided backprop)"] = [1.0] + [s.pixel_correlation or 0.0 for s in check.steps]
    st.line_chart(table, x="randomised layers", y_label="rank correlation with the original", height=240)
    pictures = [check.original.numpy()] + [s.map.numpy() for s in check.steps]
    labels = ["original"] + [f"{s.modules} random: {s.randomised} (ρ = {s.correlation:.2f})" for s in check.steps]
    row = st.columns(min(5, len(pictures)))
    for i, (picture, label) in enumerate(zip(pictures, labels, strict=True)):
        h, w = picture.shape
        side = max(1, 160 // max(h, w))
        row[i % len(row)].image(
            Image.fromarray(heatmap_to_rgb(picture, (w * side, h * side), cmap, interpolation="nearest")),
            caption=label,
            width="stretch",
        )

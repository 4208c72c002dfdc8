"""Crop & compare: crop or erase a region, re-run, and compare the maps before and after."""

import dataclasses

import pandas as pd
import streamlit as st
from PIL import Image

from gradcam_core import METHODS, overlay
from gradcam_core.methods import CLASS_AGNOSTIC
from ui import board, cropper, report, state, widgets
from ui.compute import edited
from ui.slow import explain

DISPLAY_WIDTH = 460  # the crop box's picture, in CSS pixels (it shrinks to fit a narrower column)

page = widgets.image_page("Crop & compare")
model_name, layer, method, loaded, entry = page.model_name, page.layer, page.method, page.loaded, page.entry
cats = loaded.categories
image = entry.image

settings = st.columns([3, 2])
with settings[1]:
    mode = st.radio(
        "Mode",
        ["crop", "erase"],
        horizontal=True,
        key=state.W_MODE,
        help="Crop keeps only the box; erase hides the box and keeps the rest.",
    )
    fill = st.selectbox("Erase with", ["blur", "mean", "black"], key=state.W_FILL, disabled=mode != "erase")
    shared = st.toggle(
        "Shared colour scale",
        key=state.W_SHARED,
        help="Put all panels on one intensity scale, so their strengths can be compared.",
    )
    alpha, cmap = widgets.display_controls()
with settings[0]:
    box = cropper.crop_box(entry.key, image, mode=mode, display_width=DISPLAY_WIDTH)
    st.caption(
        f"Box: {box.w}×{box.h} at ({box.x}, {box.y}) of {image.width}×{image.height}. "
        "Drag a handle to resize it, its middle to move it, or the image outside it to draw a new one."
    )
    cropper.box_fields(entry.key, image, box)

erase = fill if mode == "erase" else None
args = (model_name, layer, method)
first_before = explain(entry.key, None, None, *args, None, _image=image)
first_after = explain(entry.key, tuple(box), erase, *args, None, _image=image)
b_cls, a_cls = first_before.classes[0], first_after.classes[0]
pair = (b_cls, a_cls) if a_cls != b_cls else (b_cls,)
# When the top-1 class is unchanged, the top-1 explanations already hold every map needed.
before = first_before if pair == (b_cls,) else explain(entry.key, None, None, *args, pair, _image=image)
after = first_after if pair == (a_cls,) else explain(entry.key, tuple(box), erase, *args, pair, _image=image)

pb, pa = before.probabilities, after.probabilities
changed = "changed" if a_cls != b_cls else "unchanged"
summary = f"top-1 {changed}: {cats[b_cls]} ({pb[b_cls]:.2f}) → {cats[a_cls]} ({pa[a_cls]:.2f})"
st.subheader(summary)
widgets.fit_notice(model_name, [entry.key])

frame = tuple(box) if erase is None else None
full_before = [widgets.full_map(before, k, image, None) for k in range(len(pair))]
full_after = [widgets.full_map(after, k, image, frame) for k in range(len(pair))]
vmax = max(float(m.max()) for m in (*before.maps, *after.maps)) if shared else None
widgets.region_legend(before, image.size)

# Each side's maps are drawn over the image its model saw: after an erase, the erased image (a crop's maps
# are placed over the whole image, whose pixels in the box are the crop's).
after_image = edited(image, tuple(box), erase)
panels: dict[str, board.Panel] = {}
left, right = st.columns(2)
for col, title, exp, fulls, shown_image, seen in (
    (left, "Before", before, full_before, image, image),
    (right, "After", after, full_after, after_image, after_image if erase else image),
):
    with col:
        st.markdown(f"#### {title}")
        st.image(shown_image, caption=f"{title}: {shown_image.width}×{shown_image.height}", width="stretch")
        delta = pd.DataFrame(
            {
                "class": [cats[i] for i in exp.top(5)],
                "probability": [float(exp.probabilities[i]) for i in exp.top(5)],
                "change": [float(pa[i] - pb[i]) for i in exp.top(5)],
            }
        )
        st.dataframe(
            delta,
            hide_index=True,
            width="stretch",
            column_config={
                "probability": st.column_config.NumberColumn(format="%.3f"),
                "change": st.column_config.NumberColumn(format="%+.3f"),
            },
        )
        maps = st.columns(len(pair))
        for k, c in enumerate(pair):
            tag = "predicted before" if c == b_cls else "predicted after"
            shown, tag = (CLASS_AGNOSTIC, f"{tag}: {cats[c]}") if METHODS[method].class_agnostic else (cats[c], tag)
            maps[k].image(
                overlay(seen, fulls[k], alpha=alpha, colormap=cmap, vmax=vmax),
                caption=f"{shown} ({tag}), {exp.probabilities[c]:.2f}",
                width="stretch",
            )
        widgets.show_warnings(exp)
        shown_cls = b_cls if exp is before else a_cls
        k = pair.index(shown_cls)
        panel = board.make_panel(
            entry, fulls[k], exp, k, METHODS[method].target_label(cats[shown_cls]), model_name, layer, method,
            crop=None if exp is before else tuple(box), erase=None if exp is before else erase,
        )  # fmt: skip
        if seen is not image:  # the board and the report draw the map over the erased image too
            panel = dataclasses.replace(panel, image=seen.resize(panel.image.size, Image.Resampling.LANCZOS))
        panels[title] = panel
        if st.button(f"Pin {title.lower()} to board", key=f"{state.W_PIN}_{title}"):
            board.pin(panels[title])
            st.toast(f"Pinned {title.lower()} ({len(board.panels())} panels on the board).")

downloads = st.columns(2)
downloads[0].download_button(
    "Download report (HTML)",
    report.html_report(list(panels.values()), alpha, cmap, vmax, title=f"Crop & compare: {summary}"),
    file_name="gradcam_crop_report.html",
    mime="text/html",
)
downloads[1].download_button(
    "Download data (ZIP)",
    report.zip_bytes(list(panels.values()), alpha, cmap, vmax),
    file_name="gradcam_crop_data.zip",
    mime="application/zip",
)

"""Crop & compare: crop or erase a region, re-run, and compare the maps before and after."""

import pandas as pd
import streamlit as st
from streamlit_cropper import st_cropper

from gradcam_core import METHODS, Box, clamp_box, overlay
from ui import board, report, state, widgets
from ui.compute import edited
from ui.slow import explain

DISPLAY_WIDTH = 460  # the cropper's canvas has a fixed pixel size: keep it inside its column

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
    scale = min(4.0, DISPLAY_WIDTH / image.width)  # small images are enlarged so the box is easy to grab
    shown = image.resize((round(image.width * scale), round(image.height * scale))) if scale != 1 else image
    saved = state.get(state.CROP, {}).get(entry.key) or Box(0, 0, *image.size)  # start from the whole image
    default = (round(saved.x * scale), round(saved.right * scale), round(saved.y * scale), round(saved.bottom * scale))
    raw = st_cropper(
        shown,
        realtime_update=True,
        box_color="#d9480f",
        return_type="box",
        stroke_width=2,
        should_resize_image=False,
        default_coords=default,
        key=f"{state.W_CROPPER}.{entry.key}",
    )
    box = clamp_box((raw["left"] / scale, raw["top"] / scale, raw["width"] / scale, raw["height"] / scale), image.size)
    state.get(state.CROP, {})[entry.key] = box
    st.caption(f"Box: {box.w}×{box.h} at ({box.x}, {box.y}) of {image.width}×{image.height}. Drag or resize it.")

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

frame = tuple(box) if erase is None else None
full_before = [widgets.full_map(before, k, image, None) for k in range(len(pair))]
full_after = [widgets.full_map(after, k, image, frame) for k in range(len(pair))]
vmax = max(float(m.max()) for m in (*before.maps, *after.maps)) if shared else None

panels: dict[str, board.Panel] = {}
left, right = st.columns(2)
for col, title, exp, fulls, shown_image in (
    (left, "Before", before, full_before, image),
    (right, "After", after, full_after, edited(image, tuple(box), erase)),
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
            maps[k].image(
                overlay(image, fulls[k], alpha=alpha, colormap=cmap, vmax=vmax),
                caption=f"{METHODS[method].target_label(cats[c])} ({tag}: {cats[c]}), {exp.probabilities[c]:.2f}",
                width="stretch",
            )
        widgets.show_warnings(exp)
        shown_cls = b_cls if exp is before else a_cls
        k = pair.index(shown_cls)
        panels[title] = board.make_panel(
            entry, fulls[k], exp, k, METHODS[method].target_label(cats[shown_cls]), model_name, layer, method,
            crop=None if exp is before else tuple(box), erase=None if exp is before else erase,
        )  # fmt: skip
        if st.button(f"Pin {title.lower()} to board", key=f"pin_{title}"):
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

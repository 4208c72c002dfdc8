"""Crop & compare: crop or erase a region, re-run, and compare the maps before and after."""

import streamlit as st

from gradcam_core import CLASS_AGNOSTIC, METHODS
from ui import board, cropper, page_setup, report, rules, state, views, workspace
from ui.compute import Edit, edited

DISPLAY_WIDTH = 460  # the crop box's picture, in CSS pixels (it shrinks to fit a narrower column)

page = page_setup.image_page("Crop & compare")
settings, loaded, entry = page.settings, page.loaded, page.entry
cats = loaded.categories
image = entry.image

controls = st.columns([3, 2])
with controls[1]:
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
    alpha, cmap = views.display_controls()
with controls[0]:
    box = cropper.crop_box(entry.key, image, mode=mode, display_width=DISPLAY_WIDTH)
    st.caption(
        f"Box: {box.w}×{box.h} at ({box.x}, {box.y}) of {image.width}×{image.height}. "
        "Drag a handle to resize it, its middle to move it, or the image outside it to draw a new one."
    )
    cropper.box_fields(entry.key, image, box)

edit = Edit((box.x, box.y, box.w, box.h), fill if mode == "erase" else None)
comparison = rules.compare(entry, settings, edit)
summary = comparison.summary()
st.subheader(summary)
views.fit_notice(settings.model, [entry.key])
vmax = comparison.vmax() if shared else None
views.region_legend(comparison.before, image.size)

# Each side's maps are drawn over the image its model saw: after an erase, the erased image (a crop's maps
# are placed over the whole image, whose pixels in the box are the crop's).
after_image = edited(entry, edit)
panels: dict[str, board.Panel] = {}
left, right = st.columns(2)
for col, title, exp, shown_image, seen in (
    (left, "Before", comparison.before, image, image),
    (right, "After", comparison.after, after_image, after_image if edit.fill else image),
):
    with col:
        st.markdown(f"#### {title}")
        st.image(shown_image, caption=f"{title}: {shown_image.width}×{shown_image.height}", width="stretch")
        st.dataframe(
            comparison.deltas(exp),
            hide_index=True,
            width="stretch",
            column_config={
                "probability": st.column_config.NumberColumn(format="%.3f"),
                "change": st.column_config.NumberColumn(format="%+.3f"),
            },
        )
        maps = st.columns(len(comparison.pair))
        for k, c in enumerate(comparison.pair):
            tag = "predicted before" if c == comparison.before_class else "predicted after"
            agnostic = METHODS[settings.method].class_agnostic
            shown, tag = (CLASS_AGNOSTIC, f"{tag}: {cats[c]}") if agnostic else (cats[c], tag)
            maps[k].image(
                views.overlay_full(seen, exp, k, alpha, cmap, vmax),
                caption=f"{shown} ({tag}), {exp.probabilities[c]:.2f}",
                width="stretch",
            )
        views.show_warnings(exp)
        shown_cls = comparison.before_class if exp is comparison.before else comparison.after_class
        k = comparison.pair.index(shown_cls)
        panels[title] = board.make_panel(entry, exp, k, METHODS[settings.method].target_label(cats[shown_cls]))
        if st.button(f"Pin {title.lower()} to board", key=f"{state.W_PIN}_{title}") and workspace.pin(panels[title]):
            st.toast(f"Pinned {title.lower()} ({board.counted(len(board.panels()))} on the board).")

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

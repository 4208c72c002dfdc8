"""Board: every pinned panel side by side, labelled with its provenance, downloadable as one PNG."""

import streamlit as st

from ui import board, checks, page_setup, report, share, state, views, workspace
from ui.text import plain_text
from workspaces import StorageError

page_setup.page_setup("Board")
st.title("Board")
share.show_warnings()
viewer = workspace.shared() if workspace.viewing_shared() else None
if viewer is not None:  # a board shared read-only: shown and downloadable, never changed
    if workspace.handle() is not None:
        st.button("Show your own board", on_click=workspace.show_board, args=(workspace.OWN,))
    try:
        shared = workspace.shared_board(viewer)
    except StorageError as exc:
        st.error(f"This shared board could not be read: {exc}. Ask whoever shared it for a new link.")
        st.stop()
    panels, title, notes = shared.panels, shared.title, shared.notes
    st.info("A board shared with you, **read-only**: you can look at it and download its report and data.")
    if title:
        st.subheader(plain_text(title))
else:
    if workspace.shared() is not None:
        st.button("Show the board shared with you", on_click=workspace.show_board, args=(workspace.SHARED,))
    panels, title, notes = board.panels(), st.session_state.get(state.TITLE, ""), state.notes()
if not panels:
    st.info("The board is empty. Pin heat-maps from **Explain** or **Crop & compare**.")
    st.stop()
if viewer is None:
    st.session_state[state.W_TITLE] = title
    st.text_input(
        "Report title", key=state.W_TITLE, max_chars=300, placeholder="Grad-CAM board",
        on_change=lambda: workspace.set_title(st.session_state[state.W_TITLE]),
        help="Printed at the top of the HTML report, and shown to whoever opens the read-only link.",
    )  # fmt: skip

controls = st.columns([2, 2, 1])
with controls[0]:
    norm = st.radio(
        "Normalisation",
        ["per panel", "shared"],
        horizontal=True,
        key=state.W_BOARD_NORM,
        help="Shared puts every panel on one intensity scale.",
    )
with controls[1]:
    alpha, cmap = views.display_controls()
if viewer is None:
    controls[2].button("Clear board", on_click=workspace.unpin, args=([p.uid for p in panels],))

vmax = max(float(p.heat.max()) for p in panels) if norm == "shared" else None
pictures = [board.render(p, alpha, cmap, vmax) for p in panels]
st.caption(f"{board.counted(len(panels))} · normalisation: {norm}")
shown = board.groups(panels)  # a grid pinned as one panel is drawn as one sheet
width = min(3, len(shown))  # as many columns as panels, up to 3: none is left empty
columns = st.columns(width)
for n, group in enumerate(shown):
    with columns[n % width]:
        first = panels[group[0]]
        if len(group) == 1:
            st.image(pictures[group[0]], caption=plain_text(first.caption()), width="stretch")
        else:
            cells = board.sheet([pictures[i] for i in group], [board.cell_caption(panels[i]) for i in group], 4, 240)
            st.image(cells, caption=plain_text(f"{first.grid} · {len(group)} maps"), width="stretch")
        uid = first.uid
        if viewer is not None:
            if notes.get(uid):
                st.markdown(f":gray[Note:] {plain_text(notes[uid])}")
            continue
        note_key = f"{state.W_NOTE}.{uid}"
        st.session_state[note_key] = notes.get(uid, "")
        st.text_area(
            "Note", key=note_key, height=68, max_chars=5000, placeholder="What this panel shows (printed in reports)",
            help="Saved when you click elsewhere or press Ctrl+Enter.",
            on_change=lambda uid=uid, key=note_key: workspace.set_note(uid, st.session_state[key]),
        )  # fmt: skip
        with st.expander("Score against an object box"):
            rescored = checks.panel_box([panels[i] for i in group])
            if rescored is not None and workspace.pin(*rescored, failed="Not saved"):
                st.rerun()
        uids = [panels[i].uid for i in group]
        st.button("Remove", key=f"{state.W_REMOVE}.{uid}", on_click=workspace.unpin, args=(uids,))

# Each file is made when its button is clicked (on its own thread, from this run's values): drawing 20 panels
# into a report, a ZIP and a sheet took 3.5 s, which every rerun of this page (a note, a setting) paid.
# The title and notes are read as saved when the button is clicked: one typed just before the click (saved as the
# field loses the focus) is in the file, although this run drew the button.
captions, texts = [p.caption() for p in panels], workspace.ReportText(viewer or workspace.handle(), title, dict(notes))
downloads = st.columns(3)
downloads[0].download_button(
    "Download report (HTML)",
    lambda: report.html_report(panels, alpha, cmap, vmax, title=texts.title() or "Grad-CAM board", notes=texts.notes()),
    file_name="gradcam_report.html",
    mime="text/html",
    on_click="ignore",  # a download changes nothing: no rerun, so the other buttons' files stay valid
)
downloads[1].download_button(
    "Download data (ZIP)", lambda: report.zip_bytes(panels, alpha, cmap, vmax, texts.title(), texts.notes()),
    file_name="gradcam_data.zip", mime="application/zip", on_click="ignore",
)  # fmt: skip
downloads[2].download_button(
    "Download the board as PNG", lambda: report.png_bytes(board.sheet(pictures, captions)),
    file_name="gradcam_board.png", mime="image/png", on_click="ignore",
)  # fmt: skip
if viewer is None and (own := workspace.handle()) is not None:
    with st.expander("Share read-only"):
        st.caption(
            "Whoever opens this link sees this board with its provenance and can download its report and data, "
            "but cannot change it or reach the rest of your workspace."
        )
        if st.button("Make a read-only link", key=state.W_SHARE):
            try:
                st.session_state[state.SHARE_LINK] = workspace.share_link(own)
            except StorageError as exc:
                st.error(f"No link was made: {exc}")
        if (link := st.session_state.get(state.SHARE_LINK)) is not None:
            st.code(link, language=None)

"""Page setup: the router, the page's config, and the frame of a page that explains one image."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from gradcam_core import LoadedModel
from ui import images, share, state, workspace
from ui.compute import Settings
from ui.models import cached_model
from ui.sidebar import image_picker, sidebar
from ui.text import plain_text

#: A sidebar wide enough for model, layer and method names (EfficientNet's layers run to 45 characters).
SIDEBAR_CSS = '<style>section[data-testid="stSidebar"] { min-width: 28rem; }</style>'


def page_setup(title: str) -> None:
    """Configure the page; every page calls this first."""
    _route_through_app()
    if (target := st.session_state.pop(state.GO_TO, None)) is not None:
        st.switch_page(target)
    st.set_page_config(page_title=f"{title} · Grad-CAM Explorer", layout="wide")
    st.html(SIDEBAR_CSS)
    workspace.attach()  # restores the link's workspace once, then saves what the last run changed


def _route_through_app() -> None:
    """Make app.py's ``st.navigation`` the router, even for a first visit at a page's own URL.

    Streamlit decides at start-up, from the ``pages/`` folder, to route the first run the old way
    (each file of ``pages/`` a page, app.py shown as "app"), and only ``st.navigation`` switches
    that off. A session whose run came here without app.py (a fresh server opened at ``/Explain``,
    or several sessions opened at once, before the first of them switched the old routing off)
    would draw the old navigation and skip app.py's save at the end of the run. So this switches
    the old routing off, as ``st.navigation`` does, and reruns, so that app.py routes the same URL
    to the same page (both name it after the file: same page hash). app.py marks each run it routes
    (``state.VIA_APP``); a session is rerouted at most once, as a rerun drops the clicks of its run.
    """
    via_app = st.session_state.pop(state.VIA_APP, False)
    if not via_app and not st.session_state.get(state.ROUTED):
        PagesManager.uses_pages_directory = False
        st.session_state[state.ROUTED] = True
        st.rerun()


@dataclass(frozen=True)
class PageContext:
    """What a page that explains one image works with (see :func:`image_page`)."""

    settings: Settings
    loaded: LoadedModel
    entry: images.ImageEntry


def image_page(title: str) -> PageContext:
    """Set up a page that explains one image: sidebar, image picker, title.

    Stops the page, with a message, when the model is unusable or no image is chosen yet.
    """
    page_setup(title)
    share.read_link()
    choice = sidebar()
    entry = image_picker()
    st.title(title)
    share.show_warnings()
    if entry is not None:
        image_credit(entry)
    if choice is None:
        st.stop()
    if entry is None:
        st.info("Pick a sample or upload an image in the sidebar.")
        st.stop()
    return PageContext(choice, cached_model(choice.model), entry)


def image_credit(entry: images.ImageEntry) -> None:
    """Say whose picture a sample is, under which licence."""
    sample = images.sample_of(entry.key)
    if sample is not None:
        st.markdown(f":gray[Sample image **{plain_text(sample.name)}**: {plain_text(sample.credit)}.]")

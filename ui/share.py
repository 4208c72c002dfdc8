"""Shareable links: the URL's query parameters carry model, layer, method, class and sample.

A link is read once per session, when it opens; every value is validated, and a bad one gives a
warning and the default instead of an error. The page then keeps the URL in step with the view.
"""

from __future__ import annotations

import streamlit as st

from gradcam_core import METHODS, list_models
from ui import images, state
from ui.text import plain_text

PARAMS = ("model", "layer", "method", "class", "sample")
#: The workspace's parameters (ui/workspace.py), kept as the view changes.
KEPT = ("ws", "board")


def read_link() -> None:
    """Apply the opening URL's parameters (once per session); warn about each value not used."""
    if st.session_state.get(state.LINK_READ):
        return
    st.session_state[state.LINK_READ] = True
    query = st.query_params
    if (model := query.get("model")) is not None:
        if model in list_models():
            state.remember(state.W_MODEL, model)
        else:
            reject(f"the link's model '{model}' is not available here")
    if (method := query.get("method")) is not None:
        if method in METHODS:
            state.remember(state.W_METHOD, method)
        else:
            reject(f"the link's method '{method}' is unknown")
    if (sample := query.get("sample")) is not None:
        if sample in images.samples():
            if model is None:  # the link leaves the model to the sample: the one it was made for
                images.use_sample(sample)
            else:
                images.add(images.load_sample(sample))
        else:
            reject(f"the link's sample '{sample}' is not a bundled sample")
    st.session_state[state.LINK_PENDING] = {k: query[k] for k in ("layer", "class") if k in query}


def pending(name: str) -> str | None:
    """A link value (``layer`` or ``class``) still to be validated by the page that knows its options."""
    return state.link_pending().pop(name, None)


def reject(message: str) -> None:
    """Record a link value that could not be used (the default is used instead)."""
    state.link_warnings().append(f"{message}; using the default instead.")


def note(message: str) -> None:
    """Record what the link's workspace or board could not give (a whole sentence, shown as it is)."""
    state.link_warnings().append(message if message.endswith(".") else f"{message}.")


def show_warnings() -> None:
    """Show (once) what the opening link asked for but could not get."""
    for message in st.session_state.pop(state.LINK_WARNINGS, []):
        st.warning(f"Link: {plain_text(message)}")


def write_link(**values: str | None) -> None:
    """Make the URL reproduce the current view."""
    wanted = {k: v for k, v in values.items() if v is not None and k in PARAMS}
    wanted |= {k: st.query_params[k] for k in KEPT if k in st.query_params}  # the workspace's link stays
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)

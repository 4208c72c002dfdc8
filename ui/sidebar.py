"""The sidebar: model, layer and method pickers, Your model, and the image picker (samples and uploads)."""

from __future__ import annotations

import streamlit as st

from gradcam_core import DEFAULT_MODEL, DEMO_MODEL, METHODS, list_models
from ui import images, server, share, state, workspace
from ui.compute import SMOOTHING, Settings
from ui.models import available, get_model, label, layers_of
from ui.text import plain_text
from ui.your_model import your_model

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]

#: The upload cap in MB per image (model files: ui.server.ServerSettings.max_model_mb).
MAX_IMAGE_MB = 50


def _method_label(method: str) -> str:
    return f"{METHODS[method].label} ({METHODS[method].citation})" if method in METHODS else method


def _full_name(text: str) -> str:
    """A help line naming the current choice in full (a long name can still be cut off in the box)."""
    return f"Now: {plain_text(text)}"


def sidebar() -> Settings | None:
    """Model, layer and method pickers; returns their :class:`Settings`, or None if the model is unusable."""
    have = available()
    uploads = server.settings().model_uploads
    names = list_models() + (state.custom_models() if uploads else [])
    state.persist(state.W_MODEL, DEFAULT_MODEL)
    if st.session_state[state.W_MODEL] not in names:
        st.session_state[state.W_MODEL] = DEFAULT_MODEL
    with st.sidebar:
        name = st.selectbox(
            "Model",
            names,
            key=state.W_MODEL,
            format_func=lambda n: label(n, have),
            on_change=state.store(state.W_MODEL),
            help=_full_name(label(st.session_state[state.W_MODEL], have)),
        )
        if uploads:  # off on a server that runs no one's uploaded code
            your_model()
        loaded = get_model(name, workspace.handle())
        if loaded is None:
            return None
        infos = layers_of(name)
        by_name = {info.name: info for info in infos}
        layer_key = f"{state.W_LAYER}.{name}"
        if (linked := share.pending("layer")) is not None:
            if linked in by_name:
                state.remember(layer_key, linked)
            else:
                share.reject(f"the link's layer '{linked}' is not a spatial layer of {name}")
        state.persist(layer_key, loaded.default_layer)
        if st.session_state[layer_key] not in by_name:
            st.session_state[layer_key] = loaded.default_layer
        shown_layer = by_name.get(st.session_state[layer_key])
        layer = st.selectbox(
            "Target layer",
            list(by_name),
            key=layer_key,
            format_func=lambda n: f"{by_name[n]}" + (" · default" if n == loaded.default_layer else ""),
            on_change=state.store(layer_key),
            help="Every module whose output is a spatial map, with its output shape (channels × height × width)."
            + ("" if shown_layer is None else f"\n\n{_full_name(str(shown_layer))}"),
        )
        state.persist(state.W_METHOD, "gradcam")
        method = st.selectbox(
            "Method",
            list(METHODS),
            key=state.W_METHOD,
            format_func=_method_label,
            on_change=state.store(state.W_METHOD),
            help=_full_name(_method_label(st.session_state.get(state.W_METHOD, ""))),
        )
        state.persist(state.W_SMOOTH, "none")
        smoothing = st.selectbox(
            "Smoothing",
            list(SMOOTHING),
            key=state.W_SMOOTH,
            format_func=SMOOTHING.__getitem__,
            on_change=state.store(state.W_SMOOTH),
            help="Eigen smoothing keeps the first principal component of the weighted activations (gradient "
            "methods; no extra pass). Test-time augmentation averages the maps of the image flipped and at three "
            "scales, aligned back. Both are recorded with every pinned panel and export.",
        )
        if not loaded.trained:
            st.warning("This model has random weights: its maps are meaningless.")
    return Settings(name, layer, method, smoothing)


def image_picker() -> images.ImageEntry | None:
    """Upload one or many images, or pick a bundled sample; returns the image being explained.

    There is one current image (``state.CURRENT``), and every widget here is re-seeded from it on
    each run: the sample picker names it when it is a sample (and is empty otherwise), and the
    image picker selects it. So no widget can show an image the page is not explaining.
    """
    found = images.samples()
    if images.current() is None and not state.images():  # a newcomer: show a sample at once
        first = FIRST_SAMPLE.get(state.setting(state.W_MODEL, DEFAULT_MODEL), FIRST_SAMPLE[DEFAULT_MODEL])
        if first in found:
            images.add(images.load_sample(first))
    with st.sidebar:
        st.divider()
        current = images.current()
        st.session_state[state.W_SAMPLE] = current.sample if current is not None else None
        st.selectbox(
            "Sample image",
            list(found),
            key=state.W_SAMPLE,
            index=None,
            placeholder="Pick a sample photo or shapes scene",
            on_change=_pick_sample,
            help="Photos for the ImageNet models, drawn shapes scenes for the shapes model: picking one switches "
            "to the model it was made for when the current one was not.",
        )
        if (switched := st.session_state.pop(state.MODEL_SWITCHED, None)) is not None:
            st.info(switched)

        def take_uploads() -> None:
            files = st.session_state[state.upload_key()] or []
            st.session_state[state.UPLOAD_ERRORS] = images.add_files(
                [(f.name, f.getvalue()) for f in files], keep=workspace.save_image
            )
            st.session_state[state.UPLOAD_ROUND] = st.session_state.get(state.UPLOAD_ROUND, 0) + 1

        st.file_uploader(
            "Or upload images",
            type=UPLOAD_TYPES,
            accept_multiple_files=True,
            max_upload_size=MAX_IMAGE_MB,
            key=state.upload_key(),
            on_change=take_uploads,
        )
        for name, reason in st.session_state.get(state.UPLOAD_ERRORS, []):
            st.error(f"Could not read **{plain_text(name)}**: {reason}")
        entries = state.images()
        if len(entries) > 1 and current is not None:
            st.session_state[state.W_IMAGE] = current.key
            st.selectbox(
                "Image",
                list(entries),
                format_func=lambda k: entries[k].name,
                key=state.W_IMAGE,
                on_change=lambda: st.session_state.__setitem__(state.CURRENT, st.session_state[state.W_IMAGE]),
                help="Every image of this session: the samples picked and the files uploaded.",
            )
    return images.current()


#: The sample a newcomer sees first, by the model they start with.
FIRST_SAMPLE = {DEFAULT_MODEL: "Chelsea the cat (photo)", DEMO_MODEL: "tagged circle called star"}


def _pick_sample() -> None:
    """Make the picked sample current (with the model it was made for, if the current one was not)."""
    if st.session_state[state.W_SAMPLE]:
        images.use_sample(st.session_state[state.W_SAMPLE])

"""Models for the app: loaded once per process, shared by all sessions, downloaded with a progress bar."""

from __future__ import annotations

import os

import streamlit as st

from gradcam_core import CheckpointError, LoadedModel, WeightsUnavailable, list_models, load_model, model_spec
from gradcam_core.demo.model import DEMO_NAME
from gradcam_core.models import weights_path
from gradcam_core.weights import download

#: Set to a base URL to download torchvision weights from a mirror instead of download.pytorch.org.
MIRROR_ENV = "GRADCAM_WEIGHTS_MIRROR"


def available() -> dict[str, bool]:
    """Whether each model's pretrained weights are on this machine (no network is touched)."""
    return {name: weights_path(name).is_file() for name in list_models()}


def label(name: str, have: dict[str, bool]) -> str:
    """How a model is listed in the sidebar."""
    if name == DEMO_NAME:
        return f"{name} (bundled, offline)"
    return name if have.get(name) else f"{name} (weights not downloaded)"


@st.cache_resource(max_entries=3, show_spinner=False)
def cached_model(name: str) -> LoadedModel:
    """Load ``name`` from weights already on disk; one shared copy per process.

    The engine is thread-safe on a shared model, so sessions need no lock around it.
    """
    return load_model(name, device="auto", download_missing=False)


def get_model(name: str) -> LoadedModel | None:
    """The model, or None with a message saying what to do (download button, how to add weights).

    Failures are shown in the page with what to do next; the demo model is always offered.
    """
    path = weights_path(name)
    if not path.is_file():
        st.warning(
            f"Pretrained weights for **{name}** are not on this machine: expected `{path.name}` in "
            f"`{path.parent}`. Download them below (the machine must be online), or copy the file there, "
            f"or set `TORCH_HOME` to a folder whose `hub/checkpoints` holds it. The bundled **{DEMO_NAME}** "
            "model works offline."
        )
        if not st.button(f"Download {path.name}", key=f"download_{name}") or not _fetch(name):
            return None
    try:
        with st.spinner(f"Loading {name}…"):
            return cached_model(name)
    except (WeightsUnavailable, CheckpointError) as exc:
        st.error(f"{exc}\n\nThe bundled **{DEMO_NAME}** model works offline: pick it in the sidebar.")
        return None


def _fetch(name: str) -> bool:
    """Download ``name``'s weights with a byte-accurate progress bar; True when they arrived."""
    spec = model_spec(name)
    url = spec.weights_url
    if url is None:
        return False
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        url = f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}"
    dest = weights_path(name)
    bar = st.progress(0.0, text=f"Downloading {dest.name}…")

    def progress(done: int, total: int) -> None:
        if total:
            bar.progress(
                min(done / total, 1.0), text=f"Downloading {dest.name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB"
            )
        else:
            bar.progress(0.0, text=f"Downloading {dest.name}: {done / 1e6:.1f} MB")

    try:
        download(url, dest, progress)
    except WeightsUnavailable as exc:  # the bar stays, showing how far the download got
        st.error(
            f"The weights for **{name}** could not be downloaded ({exc}).\n\n"
            f"To add them by hand, copy `{dest.name}` into `{dest.parent}`, or set `TORCH_HOME` to a folder "
            f"whose `hub/checkpoints` holds it. Meanwhile the bundled **{DEMO_NAME}** model works offline."
        )
        return False
    bar.empty()
    return True

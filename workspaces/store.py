"""Workspaces in SQLite (WAL): ids, state, board panels, file references, sharing, quotas and cleanup.

A workspace is reached by its id, an unguessable ``secrets.token_urlsafe(24)`` (192 bits). Sharing
makes a second, separate id that reads the same board but can change nothing, and from which the
owner's id cannot be learnt. Every write is one ``BEGIN IMMEDIATE`` transaction, committed with
``synchronous=FULL`` before the call returns: what a call acknowledged survives a ``kill -9``.
Each call opens its own connection, so any number of threads (Streamlit's sessions) can share
one :class:`Store`; writers wait for each other (``busy_timeout``) instead of failing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import time
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workspaces.blobs import ContentStore, sha256
from workspaces.errors import QuotaExceededError, ReadOnlyError, StorageError, WorkspaceNotFoundError
from workspaces.limits import Limits
from workspaces.schema import migrate

_ID = re.compile(r"[A-Za-z0-9_-]{32}")
#: How long a stored file nobody references yet is kept: a write in flight references it within this.
_GRACE_S = 3600.0
_BUSY_MS = 15_000


def is_workspace_id(text: object) -> bool:
    """Whether ``text`` has the form of a workspace or share id (32 URL-safe characters)."""
    return isinstance(text, str) and _ID.fullmatch(text) is not None


def new_id() -> str:
    """A fresh id: 24 random bytes (192 bits), URL-safe."""
    return secrets.token_urlsafe(24)


def safe_name(name: object, fallback: str = "unnamed") -> str:
    """A file name fit to show and to export: the last path part, no control characters, at most 120 long.

    ``../../x.png`` gives ``x.png``, a Windows path gives its last part, NUL bytes are dropped.
    """
    text = str(name) if name is not None else ""
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return text[:120] or fallback


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The data folder: ``GRADCAM_DATA``, else the user's data dir (``$XDG_DATA_HOME/gradcam-explorer``)."""
    env = os.environ if env is None else env
    if env.get("GRADCAM_DATA"):
        return Path(env["GRADCAM_DATA"]).expanduser()
    base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else Path.home() / ".local" / "share"
    return base / "gradcam-explorer"


@dataclass(frozen=True)
class PanelRow:
    """A stored board panel: its id, the app's record of it (JSON), and the owner's note."""

    uid: str
    record: dict[str, Any]
    note: str


class Store:
    """The database ``root/workspaces.sqlite3`` and the content store ``root/files``.

    Raises:
        StorageError: the database is damaged or cannot be created (the message says which file
            and what to do; the file is left as it is).
        SchemaTooNewError: it was written by a newer app.
    """

    def __init__(self, root: Path, limits: Limits | None = None) -> None:
        self.root = root
        self.limits = limits or Limits()
        self.path = root / "workspaces.sqlite3"
        self.files = ContentStore(root / "files")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the data folder {root}: {exc.strerror or exc}") from exc
        with self._connect() as db:
            self._check(db)
            migrate(db)

    # -- connections -------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._explain(exc) from exc
        try:
            db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            yield db
        except sqlite3.Error as exc:
            raise self._explain(exc) from exc
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _check(self, db: sqlite3.Connection) -> None:
        row = db.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            raise StorageError(self._damaged(str(row[0] if row else "no answer")))

    def _damaged(self, detail: str) -> str:
        return (
            f"the workspace database {self.path} is damaged ({detail}). It was left as it is: move it aside "
            "(or restore it from a backup) and start the app again. Saving is off until then."
        )

    def _explain(self, exc: sqlite3.Error) -> StorageError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return StorageError(self._damaged(text))
        if "full" in text or "disk I/O" in text:
            return StorageError(
                f"the change was not saved: the disk holding {self.root} is full or cannot be written ({text}). "
                "Free some space; what was saved before is intact."
            )
        if "locked" in text or "busy" in text:
            return StorageError("the workspace is busy with another change: try again in a moment")
        return StorageError(f"the workspace database failed: {text}")

    # -- workspaces -----------------------------------------------------------------------------
    def create(self) -> Handle:
        """A new, empty workspace, writable through its id."""
        ws, now = new_id(), time.time()
        with self._write() as db:
            db.execute("INSERT INTO workspaces (id, created, touched) VALUES (?, ?, ?)", (ws, now, now))
        return Handle(self, ws, ws, writable=True)

    def open(self, token: object) -> Handle:
        """The workspace a link's id reaches: writable through its own id, read-only through its share id.

        Raises:
            WorkspaceNotFoundError: ``token`` is malformed, unknown, or its workspace expired (nothing is created).
        """
        if not is_workspace_id(token):
            raise WorkspaceNotFoundError("its id is not one this app makes: check that the link is complete")
        assert isinstance(token, str)
        with self._connect() as db:
            row = db.execute(
                "SELECT id, id = ?, touched FROM workspaces WHERE id = ? OR share_id = ?", (token, token, token)
            ).fetchone()
        if row is None or self._expired(row[2]):
            raise WorkspaceNotFoundError(
                "nothing has this id: it was mistyped, or it expired after "
                f"{self.limits.expiry_days:g} days unused. Start again from the Home page"
            )
        return Handle(self, row[0], token, writable=bool(row[1]))

    def _expired(self, touched: float, now: float | None = None) -> bool:
        return (now or time.time()) - touched > self.limits.expiry_days * 86400

    def cleanup(self, now: float | None = None) -> tuple[int, int]:
        """Delete expired workspaces, then stored files that no workspace references; (workspaces, files) deleted.

        A file younger than an hour is kept even when unreferenced: a write may be about to reference it.
        """
        now = time.time() if now is None else now
        cutoff = now - self.limits.expiry_days * 86400
        with self._write() as db:
            gone = db.execute("DELETE FROM workspaces WHERE touched < ?", (cutoff,)).rowcount
        with self._connect() as db:
            used = {row[0] for row in db.execute("SELECT DISTINCT digest FROM refs")}
        candidates = [d for d, mtime in self.files.digests() if d not in used and now - mtime > _GRACE_S]
        return gone, self._delete_unused(candidates, now - _GRACE_S)

    def _delete_unused(self, digests: list[str], older_than: float = float("inf")) -> int:
        """Delete those of ``digests`` that no workspace references and whose file is older than ``older_than``.

        Each is checked again inside one write transaction, as :meth:`Handle.put_files` references
        its files: a file referenced, or stored again (a fresh mtime), since it was listed is kept.
        """
        deleted = 0
        with self._write() as db:
            for digest in digests:
                if db.execute("SELECT 1 FROM refs WHERE digest = ? LIMIT 1", (digest,)).fetchone() is not None:
                    continue
                if self.files.mtime(digest) < older_than:
                    deleted += self.files.has(digest)
                    self.files.delete(digest)
        return deleted

    def collect(self, digests: list[str]) -> int:
        """Delete those of ``digests`` that no workspace references now (say, a model just released); how many."""
        return self._delete_unused(digests)

    def referenced(self, digest: str) -> bool:
        """Whether any workspace references ``digest``."""
        with self._connect() as db:
            return db.execute("SELECT 1 FROM refs WHERE digest = ? LIMIT 1", (digest,)).fetchone() is not None


@dataclass(frozen=True)
class Handle:
    """One workspace as a link reaches it.

    Attributes:
        store: where it is kept.
        ws: its own id (the key in the database).
        token: the id the link used: ``ws`` itself, or the share id.
        writable: False through a share id: every change raises :class:`ReadOnlyError`.
    """

    store: Store
    ws: str
    token: str
    writable: bool

    def _require_writable(self) -> None:
        if not self.writable:
            raise ReadOnlyError("this board was shared read-only: it cannot be changed through this link")

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:
        self._require_writable()
        return self.store._write()

    def _touch(self, db: sqlite3.Connection) -> None:
        if db.execute("UPDATE workspaces SET touched = ? WHERE id = ?", (time.time(), self.ws)).rowcount != 1:
            raise WorkspaceNotFoundError("this workspace no longer exists (it expired, or was cleaned up): start again")

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The workspace's saved values, by key (JSON values)."""
        with self.store._connect() as db:
            return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM state WHERE ws = ?", (self.ws,))}

    def set_state(self, changes: Mapping[str, Any]) -> None:
        """Save ``changes`` (a value of ``None`` deletes its key) in one transaction."""
        with self._writing() as db:
            self._touch(db)
            for key, value in changes.items():
                if value is None:
                    db.execute("DELETE FROM state WHERE ws = ? AND key = ?", (self.ws, key))
                else:
                    db.execute(
                        "INSERT INTO state (ws, key, value) VALUES (?, ?, ?) "
                        "ON CONFLICT (ws, key) DO UPDATE SET value = excluded.value",
                        (self.ws, key, json.dumps(value)),
                    )

    def title(self) -> str:
        """The report's title ('' when none was set)."""
        with self.store._connect() as db:
            row = db.execute("SELECT title FROM workspaces WHERE id = ?", (self.ws,)).fetchone()
        return str(row[0]) if row else ""

    def set_title(self, title: str) -> None:
        """Set the report's title."""
        with self._writing() as db:
            self._touch(db)
            db.execute("UPDATE workspaces SET title = ? WHERE id = ?", (title[:300], self.ws))

    # -- files -----------------------------------------------------------------------------------
    def put_file(self, owner: str, data: bytes) -> str:
        """Store ``data`` for ``owner`` (say ``"image:<key>"``), counted against the byte quota; its digest.

        Raises:
            QuotaExceededError: the workspace would hold more than its byte limit (nothing is referenced).
        """
        return self.put_files(owner, [data])[0]

    def put_files(self, owner: str, blobs: list[bytes]) -> list[str]:
        """Store several files for one ``owner`` in one transaction; their digests (see :meth:`put_file`)."""
        return self._put([(owner, blobs, None)])[0]

    def _put(self, groups: list[tuple[str, list[bytes], tuple[str, dict[str, Any]] | None]]) -> list[list[str]]:
        """Store each group's files for its owner, and add its panel if it has one, all in one transaction.

        Raises:
            QuotaExceededError: the files or panels would pass a limit (nothing is stored or referenced).
        """
        self._require_writable()
        blobs = {sha256(b): b for _owner, group, _panel in groups for b in group}
        with self.store._connect() as db:  # before writing anything: a full quota writes nothing
            self._quota_bytes(db, self._new_bytes(db, blobs))
        digests = [[self.store.files.put(b) for b in group] for _owner, group, _panel in groups]
        with self._writing() as db:
            self._touch(db)
            self._quota_bytes(db, self._new_bytes(db, blobs))
            for digest, data in blobs.items():  # a cleanup ran between the put and now
                if not self.store.files.has(digest):
                    self.store.files.put(data)
            for (owner, group, panel), found in zip(groups, digests, strict=True):
                if panel is not None:
                    self._insert_panel(db, *panel)  # before the references: a changed panel's old ones go first
                db.executemany(
                    "INSERT OR IGNORE INTO refs (ws, owner, digest, size) VALUES (?, ?, ?, ?)",
                    [(self.ws, owner, d, len(b)) for d, b in zip(found, group, strict=True)],
                )
        return digests

    def _new_bytes(self, db: sqlite3.Connection, blobs: dict[str, bytes]) -> int:
        """The bytes of those ``blobs`` (by digest) this workspace does not reference yet."""
        have = {r[0] for r in db.execute("SELECT DISTINCT digest FROM refs WHERE ws = ?", (self.ws,))}
        return sum(len(b) for d, b in blobs.items() if d not in have)

    def _quota_bytes(self, db: sqlite3.Connection, extra: int) -> None:
        used = self._used_bytes(db)
        limit = self.store.limits.max_bytes
        if used + extra > limit:
            raise QuotaExceededError(
                f"this workspace holds {used / 2**20:.1f} MB of its {limit / 2**20:.0f} MB, and this would add "
                f"{extra / 2**20:.1f} MB: remove board panels you no longer need, or start a new workspace"
            )

    def _used_bytes(self, db: sqlite3.Connection) -> int:
        """The bytes this workspace references, each distinct file once."""
        row = db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM (SELECT DISTINCT digest, size FROM refs WHERE ws = ?)", (self.ws,)
        )
        return int(row.fetchone()[0])

    def get_file(self, digest: str) -> bytes:
        """A file this workspace references, hashed again; no other workspace's files are reachable.

        Raises:
            WorkspaceNotFoundError: this workspace does not reference ``digest``.
            BlobError: the file is missing or changed on disk.
        """
        if not self.has_file(digest):
            raise WorkspaceNotFoundError(f"file {str(digest)[:12]} is not part of this workspace")
        return self.store.files.get(digest)

    def has_file(self, digest: str) -> bool:
        """Whether this workspace references ``digest``."""
        with self.store._connect() as db:
            row = db.execute("SELECT 1 FROM refs WHERE ws = ? AND digest = ? LIMIT 1", (self.ws, digest)).fetchone()
        return row is not None

    def release(self, owner: str) -> None:
        """Drop ``owner``'s references (its files go at the next cleanup if nothing else needs them)."""
        with self._writing() as db:
            self._touch(db)
            db.execute("DELETE FROM refs WHERE ws = ? AND owner = ?", (self.ws, owner))

    def usage(self) -> tuple[int, int]:
        """(bytes referenced, panels) of this workspace."""
        with self.store._connect() as db:
            count = db.execute("SELECT COUNT(*) FROM panels WHERE ws = ?", (self.ws,)).fetchone()[0]
            return self._used_bytes(db), int(count)

    # -- the board -------------------------------------------------------------------------------
    def panels(self) -> list[PanelRow]:
        """The board's panels, in the order they were added."""
        with self.store._connect() as db:
            rows = db.execute(
                "SELECT uid, record, note FROM panels WHERE ws = ? ORDER BY position, uid", (self.ws,)
            ).fetchall()
        return [PanelRow(uid, json.loads(record), note) for uid, record, note in rows]

    def add_panel(self, uid: str, record: dict[str, Any], blobs: list[bytes]) -> list[str]:
        """Add a panel with its files (its picture and maps) in one transaction; the files' digests.

        Raises:
            QuotaExceededError: the board is full, or the files would pass the byte limit (nothing is added).
        """
        return self.add_panels([(uid, record, blobs)])[0]

    def add_panels(self, panels: list[tuple[str, dict[str, Any], list[bytes]]]) -> list[list[str]]:
        """Add (or, under a uid already there, change) several panels with their files, all or none."""
        return self._put([(f"panel:{uid}", blobs, (uid, record)) for uid, record, blobs in panels])

    def _insert_panel(self, db: sqlite3.Connection, uid: str, record: dict[str, Any]) -> None:
        old = db.execute("SELECT position FROM panels WHERE ws = ? AND uid = ?", (self.ws, uid)).fetchone()
        if old is not None:  # the panel again, changed: same place, its old files released
            db.execute("DELETE FROM refs WHERE ws = ? AND owner = ?", (self.ws, f"panel:{uid}"))
            db.execute("UPDATE panels SET record = ? WHERE ws = ? AND uid = ?", (json.dumps(record), self.ws, uid))
            return
        count, last = db.execute(
            "SELECT COUNT(*), COALESCE(MAX(position), -1) FROM panels WHERE ws = ?", (self.ws,)
        ).fetchone()
        limit = self.store.limits.max_panels
        if count >= limit:
            raise QuotaExceededError(
                f"the board holds its limit of {limit} panels: remove some on the Board page, or start a new workspace"
            )
        db.execute(
            "INSERT OR REPLACE INTO panels (ws, uid, position, record) VALUES (?, ?, ?, ?)",
            (self.ws, uid, last + 1, json.dumps(record)),
        )

    def remove_panel(self, uid: str) -> None:
        """Remove a panel and its file references."""
        self.remove_panels([uid])

    def remove_panels(self, uids: list[str]) -> None:
        """Remove several panels and their file references in one transaction."""
        with self._writing() as db:
            self._touch(db)
            db.executemany("DELETE FROM panels WHERE ws = ? AND uid = ?", [(self.ws, u) for u in uids])
            db.executemany("DELETE FROM refs WHERE ws = ? AND owner = ?", [(self.ws, f"panel:{u}") for u in uids])

    def set_note(self, uid: str, note: str) -> None:
        """Set a panel's note (printed under it in the report)."""
        with self._writing() as db:
            self._touch(db)
            db.execute("UPDATE panels SET note = ? WHERE ws = ? AND uid = ?", (note[:5000], self.ws, uid))

    def share(self) -> str:
        """The board's read-only id, made on first use and the same afterwards."""
        with self._writing() as db:
            self._touch(db)
            row = db.execute("SELECT share_id FROM workspaces WHERE id = ?", (self.ws,)).fetchone()
            if row[0]:
                return str(row[0])
            share_id = new_id()
            db.execute("UPDATE workspaces SET share_id = ? WHERE id = ?", (share_id, self.ws))
            return share_id

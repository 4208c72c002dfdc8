"""The workspace store on a real SQLite file: ids, sharing, quotas, expiry, migrations, damage, full disk, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from workspaces import (
    SCHEMA_VERSION,
    BlobError,
    Limits,
    QuotaExceededError,
    ReadOnlyError,
    SchemaTooNewError,
    StorageError,
    Store,
    WorkspaceNotFoundError,
    data_dir,
    is_workspace_id,
    safe_name,
)
from workspaces.schema import MIGRATIONS, version_of

ROOT = Path(__file__).resolve().parents[1]


def count(store: Store, table: str) -> int:
    with sqlite3.connect(store.path) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_a_workspace_outlives_its_store_and_its_id_is_unguessable(tmp_path: Path) -> None:
    ws = Store(tmp_path).create()
    assert is_workspace_id(ws.token) and len(ws.token) == 32  # 24 random bytes: 192 bits
    ws.set_state({"model": "efficientnet_lite0", "crop": {"k": [1, 2, 3, 4]}})
    digest = ws.put_file("image:k", b"png bytes")
    ws.add_panel("p1", {"layer": "blocks.6"}, [b"thumb", b"heat"])
    ws.set_note("p1", "the head, not the ears")
    ws.set_state({"model": None, "layer": "blocks.5"})
    again = Store(tmp_path).open(ws.token)  # a new process would do just this
    assert again.writable and again.state() == {"crop": {"k": [1, 2, 3, 4]}, "layer": "blocks.5"}
    assert again.get_file(digest) == b"png bytes"
    [panel] = again.panels()
    assert (panel.uid, panel.record, panel.note) == ("p1", {"layer": "blocks.6"}, "the head, not the ears")
    assert Store(tmp_path).create().token != ws.token


@pytest.mark.parametrize(
    "token",
    ["", "short", "../../etc/passwd", "/etc/passwd", "a" * 31 + "\x00", "a" * 33, "a" * 31 + "/", None, 42],
)
def test_a_forged_id_is_refused_and_creates_nothing(tmp_path: Path, token: object) -> None:
    store = Store(tmp_path)
    with pytest.raises(WorkspaceNotFoundError, match="link"):
        store.open(token)
    assert count(store, "workspaces") == 0


def test_a_mutated_id_reaches_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ws = store.create()
    mutated = ("B" if ws.token[5] != "B" else "C").join((ws.token[:5], ws.token[6:]))
    with pytest.raises(WorkspaceNotFoundError, match="mistyped"):
        store.open(mutated)


def test_a_shared_board_reads_the_panels_and_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ws = store.create()
    [thumb, heat] = ws.add_panel("p1", {"layer": "x"}, [b"thumb", b"heat"])
    secret = ws.put_file("image:k", b"the owner's upload")
    share = ws.share()
    assert share == ws.share() and share != ws.token and is_workspace_id(share)
    viewer = store.open(share)
    assert not viewer.writable and viewer.token == share
    assert [p.uid for p in viewer.panels()] == ["p1"] and viewer.get_file(heat) == b"heat"
    writes = [
        lambda: viewer.set_state({"a": 1}),
        lambda: viewer.add_panel("p2", {}, [b"x"]),
        lambda: viewer.remove_panel("p1"),
        lambda: viewer.set_note("p1", "mine"),
        lambda: viewer.set_title("mine"),
        lambda: viewer.put_file("image:x", b"x"),
        lambda: viewer.release("panel:p1"),
        viewer.share,
    ]
    for write in writes:
        with pytest.raises(ReadOnlyError, match="read-only"):
            write()
    assert [p.note for p in ws.panels()] == [""] and ws.state() == {} and ws.title() == ""
    assert viewer.get_file(secret) == b"the owner's upload"  # a file of the same workspace, as the report needs
    other = store.create()
    with pytest.raises(WorkspaceNotFoundError, match="not part of this workspace"):
        other.get_file(thumb)  # no other workspace's files are reachable, even by digest


def test_quotas_refuse_a_change_whole(tmp_path: Path) -> None:
    store = Store(tmp_path, Limits(max_bytes=1000, max_panels=2))
    ws = store.create()
    ws.add_panel("a", {}, [b"x" * 300])
    ws.add_panel("b", {}, [b"x" * 300])  # the same bytes again: counted once
    with pytest.raises(QuotaExceededError, match="limit of 2 panels"):
        ws.add_panel("c", {}, [b"y"])
    ws.remove_panel("a")
    with pytest.raises(QuotaExceededError, match="MB"):
        ws.add_panel("c", {}, [b"z" * 800])
    assert [p.uid for p in ws.panels()] == ["b"] and ws.usage() == (300, 1)
    ws.add_panel("c", {}, [b"z" * 600])
    assert ws.usage() == (900, 2)


def test_cleanup_deletes_expired_workspaces_and_unreferenced_files(tmp_path: Path) -> None:
    store = Store(tmp_path, Limits(expiry_days=1))
    old, new = store.create(), store.create()
    [gone] = old.add_panel("a", {}, [b"old only"])
    [kept] = new.add_panel("a", {}, [b"still used"])
    shared = old.put_file("image:k", b"both")
    new.put_file("image:k", b"both")
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE workspaces SET touched = touched - 2 * 86400 WHERE id = ?", (old.ws,))
    later = time.time() + 7200  # past the hour an unreferenced file is kept for
    assert store.cleanup(now=later) == (1, 1)
    assert not store.files.has(gone) and store.files.has(kept) and store.files.has(shared)
    with pytest.raises(WorkspaceNotFoundError, match="expired"):
        store.open(old.token)
    assert new.get_file(kept) == b"still used"


def test_a_stored_file_changed_on_disk_is_refused(tmp_path: Path) -> None:
    ws = Store(tmp_path).create()
    digest = ws.put_file("model:m", b"weights")
    ws.store.files.path(digest).write_bytes(b"tampered")
    with pytest.raises(BlobError, match="changed on disk"):
        ws.get_file(digest)
    with pytest.raises(BlobError, match="not a content digest"):
        ws.store.files.path("../../etc/passwd")


def test_an_older_database_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "workspaces.sqlite3"
    with sqlite3.connect(path) as db:  # what the first release wrote: schema 1
        db.executescript(MIGRATIONS[0])
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.execute("INSERT INTO workspaces VALUES (?, NULL, ?, ?)", ("w" * 32, time.time(), time.time()))
        db.execute("INSERT INTO panels VALUES (?, 'p', 0, '{\"layer\": \"x\"}')", ("w" * 32,))
    ws = Store(tmp_path).open("w" * 32)
    assert [(p.uid, p.note) for p in ws.panels()] == [("p", "")] and ws.title() == ""
    with sqlite3.connect(path) as db:
        assert version_of(db) == SCHEMA_VERSION == 2
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    before = path.read_bytes()
    with pytest.raises(SchemaTooNewError, match="newer Grad-CAM Explorer"):
        Store(tmp_path)
    assert path.read_bytes() == before


def filled_store(root: Path) -> Store:
    """A store with a workspace of some 100 KB of state, all of it in the database file (the WAL checkpointed)."""
    store = Store(root)
    ws = store.create()
    for i in range(200):
        ws.set_state({f"k{i}": "x" * 500})
    with sqlite3.connect(store.path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_database_is_reported_and_left_alone(tmp_path: Path, damage: str) -> None:
    store = filled_store(tmp_path)
    data = store.path.read_bytes()
    store.path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a database" * 100)
    damaged = store.path.read_bytes()
    with pytest.raises(StorageError, match="damaged") as caught:
        Store(tmp_path)
    assert "move it aside" in str(caught.value)
    assert store.path.read_bytes() == damaged


FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from workspaces import Store, StorageError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
store = Store(Path(sys.argv[1]))
ws = store.open(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
for what, change in [("file", lambda: ws.put_file("image:big", b"x" * 300_000)),
                     ("state", lambda: ws.set_state({"big": "y" * 400_000}))]:
    try:
        change()
        print(what, "saved")
    except StorageError as exc:
        print(what, "refused:", exc)
"""


def test_a_full_disk_refuses_the_change_and_keeps_what_was_saved(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ws = store.create()
    ws.set_state({"model": "lite0"})
    ws.add_panel("p", {"layer": "x"}, [b"thumb"])
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path), ws.token],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all("refused:" in line for line in lines), done.stdout + done.stderr
    assert "full or cannot be written" in lines[0] and "full or cannot be written" in lines[1]
    again = Store(tmp_path).open(ws.token)
    assert again.state() == {"model": "lite0"} and [p.uid for p in again.panels()] == ["p"]
    assert not list(store.files.root.glob("*/.*"))  # no part-written file is left behind


def test_threads_writing_at_once_lose_nothing_and_cross_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    own = [store.create() for _ in range(8)]
    together = store.create()
    errors: list[BaseException] = []

    def writer(name: str, ws_token: str, n: int = 40) -> None:
        ws = store.open(ws_token)
        try:
            for i in range(n):
                ws.add_panel(f"{name}-{i}", {"by": name, "i": i}, [f"{name}-{i}".encode()])
                ws.set_state({f"{name}.last": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"own{i}", ws.token)) for i, ws in enumerate(own)]
    threads += [threading.Thread(target=writer, args=(f"tab{i}", together.token)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, ws in enumerate(own):
        assert [p.record for p in ws.panels()] == [{"by": f"own{i}", "i": j} for j in range(40)]
        assert ws.state() == {f"own{i}.last": 39}
    mixed = together.panels()
    assert len(mixed) == 80 and {p.record["by"] for p in mixed} == {"tab0", "tab1"}
    assert together.state() == {"tab0.last": 39, "tab1.last": 39}


KILLED = """
import sys
from pathlib import Path
from workspaces import Store
ws = Store(Path(sys.argv[1])).open(sys.argv[2])
for i in range(100000):
    ws.add_panel(f"p{i}", {"i": i}, [f"blob {i}".encode()])
    print(i, flush=True)  # acknowledged: the call returned
"""


def test_every_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ws = store.create()
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(tmp_path), ws.token], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert child.stdout is not None
    acked = -1
    for line in child.stdout:
        acked = int(line)
        if acked >= 60:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    found = Store(tmp_path).open(ws.token).panels()
    assert len(found) >= acked + 1 and [p.record["i"] for p in found] == list(range(len(found)))
    assert all(Store(tmp_path).open(ws.token).get_file(d) for d in [store.files.put(b"blob 0")])


@pytest.mark.parametrize(
    ("name", "shown"),
    [("../../x.png", "x.png"), ("/etc/passwd", "passwd"), ("C:\\tmp\\y.jpg", "y.jpg"), ("a\x00b.png", "ab.png"),
     ("..", "unnamed"), ("", "unnamed"), (".hidden.png", "hidden.png"), ("é" * 200, "é" * 120)],
)  # fmt: skip
def test_path_like_names_become_plain_file_names(name: str, shown: str) -> None:
    assert safe_name(name) == shown


def test_limits_and_the_data_folder_come_from_the_settings(tmp_path: Path) -> None:
    assert Limits.from_settings({}) == Limits()
    got = Limits.from_settings({"GRADCAM_WORKSPACE_MB": "5", "GRADCAM_WORKSPACE_PANELS": "20"}, {"workspace_days": 2})
    assert got == Limits(5 * 2**20, 20, 2.0)
    with pytest.raises(ValueError, match="GRADCAM_WORKSPACE_PANELS"):
        Limits.from_settings({"GRADCAM_WORKSPACE_PANELS": "lots"})
    assert data_dir({"GRADCAM_DATA": str(tmp_path)}) == tmp_path
    assert data_dir({"XDG_DATA_HOME": "/srv/x"}) == Path("/srv/x/gradcam-explorer")

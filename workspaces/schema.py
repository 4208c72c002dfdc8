"""The database's schema, its version, and the migrations that bring an older database up to date."""

from __future__ import annotations

import sqlite3

from workspaces.errors import StorageError

#: The schema this app writes. An older database is migrated step by step; a newer one is refused.
SCHEMA_VERSION = 2

#: MIGRATIONS[v] takes a database from schema v to v + 1 (v = 0: an empty file).
MIGRATIONS: dict[int, str] = {
    0: """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE workspaces (
            id TEXT PRIMARY KEY,
            share_id TEXT UNIQUE,
            created REAL NOT NULL,
            touched REAL NOT NULL
        );
        CREATE TABLE state (
            ws TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (ws, key)
        );
        CREATE TABLE panels (
            ws TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            uid TEXT NOT NULL,
            position INTEGER NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (ws, uid)
        );
        CREATE TABLE refs (
            ws TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            owner TEXT NOT NULL,
            digest TEXT NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (ws, owner, digest)
        );
        CREATE INDEX refs_digest ON refs (digest);
    """,
    # Schema 2: the report's title per workspace and a note per panel.
    1: """
        ALTER TABLE workspaces ADD COLUMN title TEXT NOT NULL DEFAULT '';
        ALTER TABLE panels ADD COLUMN note TEXT NOT NULL DEFAULT '';
    """,
}


class SchemaTooNewError(StorageError):
    """The database was written by a newer version of the app."""


def version_of(db: sqlite3.Connection) -> int:
    """The schema version recorded in ``db`` (0 for an empty database)."""
    has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    if not has_meta:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring ``db`` to schema ``target``, each step in one transaction; the version it was at.

    Raises:
        SchemaTooNewError: ``db`` records a schema newer than ``target`` (nothing is changed).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        start = version_of(db)
        if start > target:
            raise SchemaTooNewError(
                f"this workspace database has schema {start}, written by a newer Grad-CAM Explorer; this app "
                f"knows schema {target} at most. Upgrade the app, or set GRADCAM_DATA to another folder."
            )
        for version in range(start, target):
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(version + 1),),
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return start

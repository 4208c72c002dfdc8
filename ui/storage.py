"""The process's workspace store, shared by every session, and its periodic cleanup."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import streamlit as st

from ui import server
from workspaces import Limits, StorageError, Store, data_dir

#: How often a session's run may start a cleanup of expired workspaces and unreferenced files.
CLEANUP_EVERY_S = 3600.0


@st.cache_resource(show_spinner=False)
def store() -> tuple[Store | None, str | None]:
    """The process's store, or why there is none (shown to every session)."""
    settings = server.secrets()
    root = Path(str(settings["data_dir"])).expanduser() if settings.get("data_dir") else data_dir()
    try:
        return Store(root, Limits.from_settings(os.environ, settings)), None
    except (StorageError, ValueError) as exc:
        return None, str(exc)


class _Schedule:
    """When the last cleanup ran (one per process; the lock lets one session at a time start one)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last = float("-inf")


@st.cache_resource(show_spinner=False)
def _schedule() -> _Schedule:
    return _Schedule()


def tidy() -> None:
    """At most once an hour per process: delete expired workspaces and files no workspace references.

    It runs at the server's first session too, so a server restarted daily still cleans up.
    A failure is left for the next time: it never reaches a user's page.
    """
    found, _error = store()
    schedule = _schedule()
    if found is None or time.monotonic() - schedule.last < CLEANUP_EVERY_S or not schedule.lock.acquire(False):
        return
    try:
        schedule.last = time.monotonic()
        found.cleanup()
    except (StorageError, OSError):
        pass
    finally:
        schedule.lock.release()

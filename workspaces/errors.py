"""What can go wrong with stored work, each error saying what was wrong and what to do next."""

from __future__ import annotations


class StorageError(Exception):
    """The database or the content store could not be used (damaged, full, busy): nothing was changed."""


class WorkspaceNotFoundError(StorageError):
    """No workspace or shared board has this id (mistyped, forged, or expired)."""


class ReadOnlyError(StorageError):
    """A write through a read-only (shared) id."""


class QuotaExceededError(StorageError):
    """A change would take a workspace past one of its limits (bytes or panels)."""

"""A content-addressed store: each file under its SHA-256, written atomically, re-hashed when read."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from workspaces.errors import StorageError

_DIGEST = re.compile(r"[0-9a-f]{64}")


class BlobError(StorageError):
    """A stored file is missing, or its bytes no longer match its SHA-256."""


def is_digest(text: str) -> bool:
    """Whether ``text`` is a SHA-256 in lower-case hex: the only names the store accepts."""
    return isinstance(text, str) and _DIGEST.fullmatch(text) is not None


def sha256(data: bytes) -> str:
    """The SHA-256 of ``data``, in hex."""
    return hashlib.sha256(data).hexdigest()


class ContentStore:
    """Files named by their SHA-256 under ``root/ab/abcdef…``.

    A name never comes from a user: every method takes a digest and refuses anything else, so no
    path can be built from an upload's name. A file is written to a temporary name, flushed to
    disk and renamed, so no reader ever sees part of one; :meth:`get` hashes what it read again
    and refuses bytes that changed on disk.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        """Where ``digest``'s file lies (it may not exist).

        Raises:
            BlobError: ``digest`` is not a SHA-256 in hex.
        """
        if not is_digest(digest):
            raise BlobError(f"not a content digest: {digest[:80]!r}")
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` (once: the same bytes are not written again); its digest.

        Raises:
            StorageError: the disk is full or cannot be written (nothing is left behind).
        """
        digest = sha256(data)
        path = self.path(digest)
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            os.utime(path)  # a fresh mtime keeps it from a cleanup racing this write's reference
            return digest  # (a file damaged on disk is written again)
        tmp = path.with_name(f".{digest}.{os.getpid()}.{time.monotonic_ns()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(
                f"could not store {len(data) / 1e6:.1f} MB: the disk is full or cannot be written "
                f"({exc.strerror or exc}). Free some space; what was saved before is intact."
            ) from exc
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes stored under ``digest``, hashed again.

        Raises:
            BlobError: no such file, or its bytes do not hash to ``digest`` (changed on disk).
        """
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobError(f"stored file {digest[:12]} is missing") from None
        if sha256(data) != digest:
            raise BlobError(f"stored file {digest[:12]} was changed on disk: its SHA-256 no longer matches")
        return data

    def verified(self, digest: str) -> Path:
        """The path of ``digest``'s file after hashing it again, for loaders that read a path (models).

        Raises:
            BlobError: no such file, or its bytes do not hash to ``digest`` (changed on disk).
        """
        path = self.path(digest)
        try:
            with path.open("rb") as file:
                found = hashlib.file_digest(file, "sha256").hexdigest()
        except FileNotFoundError:
            raise BlobError(f"stored file {digest[:12]} is missing") from None
        if found != digest:
            raise BlobError(f"stored file {digest[:12]} was changed on disk: its SHA-256 no longer matches")
        return path

    def has(self, digest: str) -> bool:
        """Whether a file is stored under ``digest``."""
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        """The stored file's size in bytes (0 when absent)."""
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return 0

    def mtime(self, digest: str) -> float:
        """When the file was last written or stored again (infinity when absent: nothing to delete)."""
        try:
            return self.path(digest).stat().st_mtime
        except FileNotFoundError:
            return float("inf")

    def digests(self) -> Iterator[tuple[str, float]]:
        """Every stored digest with its file's mtime (a file deleted meanwhile is left out)."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir() and len(folder.name) == 2:
                for file in folder.iterdir():
                    if is_digest(file.name) and (mtime := self.mtime(file.name)) != float("inf"):
                        yield file.name, mtime

    def delete(self, digest: str) -> None:
        """Remove ``digest``'s file, if present."""
        self.path(digest).unlink(missing_ok=True)

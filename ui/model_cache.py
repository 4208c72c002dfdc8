"""The loaded models a process keeps, bounded by their number and by the bytes of their weights.

Three VGG19s hold about 1.7 GB, so a count alone does not bound a shared server's memory. Sessions
share the models: each is loaded once (a second session asking for a model being loaded waits for
it), the least recently used go first, and a session still using an evicted model keeps its own
reference until it is done.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

from torch import nn

from gradcam_core import LoadedModel


def weight_bytes(model: nn.Module) -> int:
    """The bytes of a model's parameters and buffers (what keeping it loaded costs)."""
    return sum(t.numel() * t.element_size() for t in itertools.chain(model.parameters(), model.buffers()))


class ModelCache:
    """A thread-safe least-recently-used cache of loaded models.

    Args:
        max_entries: how many models it keeps.
        max_bytes: how many bytes of weights they may hold together. The model just loaded is
            always kept, even alone above the limit: a session asked for it.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[LoadedModel, int]] = OrderedDict()
        self._loading: dict[str, Future[LoadedModel]] = {}

    def get(self, key: str, load: Callable[[], LoadedModel]) -> LoadedModel:
        """The model under ``key``, loaded with ``load`` on a miss (an error is raised, and nothing kept).

        One load per key at a time: sessions asking for a model being loaded wait for that load,
        and get its model or its error.
        """
        with self._lock:
            if (hit := self._hit(key)) is not None:
                return hit
            pending = self._loading.get(key)
            if pending is None:
                pending = self._loading[key] = Future()
                loader = True
            else:
                loader = False
        if not loader:
            return pending.result()
        try:
            loaded = load()
            size = weight_bytes(loaded.model)
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            self._entries[key] = (loaded, size)
            self._evict(keep=key)
            del self._loading[key]
        pending.set_result(loaded)
        return loaded

    def _hit(self, key: str) -> LoadedModel | None:
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return self._entries[key][0]

    def _evict(self, keep: str) -> None:
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries or self.total_bytes > self.max_bytes):
            oldest = next(k for k in self._entries if k != keep)
            del self._entries[oldest]

    @property
    def total_bytes(self) -> int:
        """The bytes of weights the kept models hold."""
        return sum(size for _model, size in self._entries.values())

    def keys(self) -> list[str]:
        """The kept models' keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget every kept model."""
        with self._lock:
            self._entries.clear()

"""The process's model cache: bounded by entries and by the bytes of real torchvision models, one load per key."""

from __future__ import annotations

import threading
import time

import pytest
import torchvision

from gradcam_core import LoadedModel, from_module
from ui.model_cache import ModelCache, weight_bytes


def real(arch: str) -> LoadedModel:
    return from_module(getattr(torchvision.models, arch)(weights=None).eval(), name=arch)


def test_the_cache_keeps_models_within_its_bytes_and_drops_the_least_recently_used() -> None:
    sizes = {arch: weight_bytes(real(arch).model) for arch in ("resnet18", "squeezenet1_1", "mobilenet_v3_small")}
    # 46.8 MB, 4.9 MB and 10.2 MB of float32: resnet18 with either of the others fits, all three do not
    assert sizes["resnet18"] > 40e6 and sizes["squeezenet1_1"] < sizes["mobilenet_v3_small"] < 12e6
    cache = ModelCache(max_entries=3, max_bytes=sizes["resnet18"] + sizes["mobilenet_v3_small"] + 1)
    for arch in ("resnet18", "squeezenet1_1"):
        cache.get(arch, lambda arch=arch: real(arch))
    assert cache.keys() == ["resnet18", "squeezenet1_1"] and cache.total_bytes <= cache.max_bytes
    cache.get("resnet18", lambda: pytest.fail("a hit loads nothing"))  # now the most recently used
    cache.get("mobilenet_v3_small", lambda: real("mobilenet_v3_small"))  # 3 entries fit, the bytes do not
    assert cache.keys() == ["resnet18", "mobilenet_v3_small"] and cache.total_bytes <= cache.max_bytes
    small = ModelCache(max_entries=3, max_bytes=1)  # a model alone above the limit is kept: it was asked for
    small.get("resnet18", lambda: real("resnet18"))
    assert small.keys() == ["resnet18"]
    counted = ModelCache(max_entries=1, max_bytes=10**12)
    for arch in ("squeezenet1_1", "mobilenet_v3_small"):
        counted.get(arch, lambda arch=arch: real(arch))
    assert counted.keys() == ["mobilenet_v3_small"]


def test_sessions_asking_at_once_share_one_load_and_a_failed_load_is_not_kept() -> None:
    cache, calls = ModelCache(3, 10**12), []

    def slow() -> LoadedModel:
        calls.append(1)
        time.sleep(0.2)
        return real("squeezenet1_1")

    got: list[LoadedModel] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("m", slow))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(got) == 8 and all(g is got[0] for g in got)

    def broken() -> LoadedModel:
        raise ValueError("bad file")

    with pytest.raises(ValueError, match="bad file"):
        cache.get("x", broken)
    assert cache.keys() == ["m"]


def test_sessions_waiting_on_a_failing_load_get_its_error_and_no_second_load_runs() -> None:
    cache, calls, errors = ModelCache(3, 10**12), [], []

    def failing() -> LoadedModel:
        calls.append(1)
        time.sleep(0.2)
        raise ValueError("bad file")

    def ask() -> None:
        try:
            cache.get("m", failing)
        except ValueError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and errors == ["bad file"] * 6 and cache.keys() == []
    assert cache.get("m", lambda: real("squeezenet1_1")).name == "squeezenet1_1"  # a later ask loads again

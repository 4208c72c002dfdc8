"""A long run: 300 explanations across pages must leave no hooks and let memory settle."""

from __future__ import annotations

import itertools

import pytest

from bench.engine import rss_mb
from gradcam_core import METHODS
from tests.conftest import hook_count
from tests.test_app import TAGGED, crop_to, ok, pick_sample, start
from ui import state
from ui.models import cached_model

pytestmark = pytest.mark.slow


def test_300_explanations_leave_no_hooks_and_memory_settles() -> None:
    at = pick_sample(start("pages/1_Explain.py"), TAGGED)
    model = cached_model("shapes-demo").model
    passes: list[int] = []
    counter = model.register_forward_hook(lambda *_: passes.append(1))
    layers = ["features.block4", "features.block3", "features.block2", "features.block4.0"]
    methods = [m for m in METHODS if m != "scorecam"]
    combos = itertools.cycle(itertools.product(layers, methods, range(5)))
    class_key = f"{state.W_CLASS}.{at.session_state[state.CURRENT]}.shapes-demo"
    samples: list[float] = []
    try:
        for i in range(300):
            if i % 50 == 0:  # alternate pages in blocks
                at.switch_page("pages/1_Explain.py" if (i // 50) % 2 == 0 else "pages/2_Crop_and_Compare.py").run()
                ok(at)
            if (i // 50) % 2 == 0:
                layer, method, cls = next(combos)
                at.selectbox(key=f"{state.W_LAYER}.shapes-demo").select(layer)
                at.selectbox(key=state.W_METHOD).select(method)
                at.run()
                at.selectbox(key=class_key).select(cls).run()
            else:
                crop_to(at, [i % 40, (3 * i) % 40, 60 + i % 50, 60 + (7 * i) % 50])
            ok(at)
            if i in (19, 149):  # 149: past the 140 combinations, so the bounded result cache is full
                samples.append(rss_mb())
        samples.append(rss_mb())
    finally:
        counter.remove()
    warm, full, end = samples
    growth = end - full  # once the caches are full, memory must stay level; before, they fill
    print(
        f"RSS after 20 explanations {warm:.0f} MB, after 150 (caches full) {full:.0f} MB, after 300 {end:.0f} MB: "
        f"growth over the last 150 {growth:+.1f} MB"
    )
    assert len(passes) >= 300, "every step ran the model at least once"
    assert growth < 50
    assert hook_count(model) == 0

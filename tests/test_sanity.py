"""The cascading-randomisation sanity check: its curve on real models, the shared model untouched, memory refused."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from gradcam_core import compute_cam, load_image, load_model
from gradcam_core.demo.model import SAMPLES_DIR
from gradcam_core.sanity import FELL_APART, cascading_randomisation, model_bytes, rank_correlation
from tests.conftest import hook_count


def test_rank_correlation_by_hand() -> None:
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties share their average rank: [0, 0, 1, 2] ranks 1.5 1.5 3 4 against 1 2 3 4: ρ = 4.5 / √(4.5 · 5)
    assert rank_correlation([0, 0, 1, 2], [1, 2, 3, 4]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    assert rank_correlation([0, 0, 0], [1, 2, 3]) == 0.0  # a blank map has no order


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_demo_models_map_falls_apart_and_the_shared_model_is_unchanged() -> None:
    loaded = load_model("shapes-demo")
    x = loaded.preprocess(load_image(SAMPLES_DIR / "star.png"))[None]
    before = state(loaded.model)
    flags = [p.requires_grad for p in loaded.model.parameters()]
    expected = compute_cam(loaded.model, x, loaded.default_layer).maps
    seen: list[tuple[int, int]] = []
    check = cascading_randomisation(loaded.model, x, loaded.default_layer, 3, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] == len(check.steps) and 4 <= len(check.steps) <= 8
    assert check.steps[-1].modules == sum(1 for m in loaded.model.modules() if list(m.parameters(recurse=False)))
    assert check.passed and abs(check.final) <= FELL_APART, [s.correlation for s in check.steps]
    assert "falls apart" in check.verdict()
    assert check.steps[0].randomised.startswith("head ")  # from the top down: the classifier first
    # The shared model: the same weights, flags and hooks, and the same map as before.
    after = state(loaded.model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert flags == [p.requires_grad for p in loaded.model.parameters()] and hook_count(loaded.model) == 0
    torch.testing.assert_close(compute_cam(loaded.model, x, loaded.default_layer).maps, expected)


def test_guided_backprop_barely_changes_as_adebayo_found_while_grad_cam_does(shared_images) -> None:  # type: ignore[no-untyped-def]
    loaded = load_model("efficientnet_lite0")
    x = loaded.preprocess(load_image(shared_images / "elephant.jpg"))[None]
    check = cascading_randomisation(loaded.model, x, loaded.default_layer, 386, "guided-gradcam", steps=4)
    first = check.steps[0]
    assert first.pixel_correlation is not None and first.pixel_correlation > 0.8, first
    assert abs(first.correlation) < 0.5, first  # the Grad-CAM map is gone once the top layers are
    assert check.passed


def test_other_sessions_keep_using_the_model_while_a_check_runs() -> None:
    loaded = load_model("shapes-demo")
    x = loaded.preprocess(load_image(SAMPLES_DIR / "circle.png"))[None]
    expected = compute_cam(loaded.model, x, loaded.default_layer).maps
    errors: list[BaseException] = []

    def explain() -> None:
        try:
            for _ in range(10):
                torch.testing.assert_close(compute_cam(loaded.model, x, loaded.default_layer).maps, expected)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=explain) for _ in range(4)]
    for t in threads:
        t.start()
    cascading_randomisation(loaded.model, x, loaded.default_layer, 0)
    for t in threads:
        t.join()
    assert not errors, errors


def test_a_model_too_large_to_copy_is_refused_with_a_message() -> None:
    huge = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(10, 2))
    huge.register_parameter("big", nn.Parameter(torch.empty(2**38, device="meta")))  # 1 TiB, never allocated
    assert model_bytes(huge) > 2**40
    with pytest.raises(MemoryError, match=r"needs a copy of the model \(1,048,576 MB\)"):
        cascading_randomisation(huge.eval(), torch.rand(1, 3, 8, 8), "0", 0)
    small = load_model("shapes-demo")
    with pytest.raises(MemoryError, match="of memory is free"):
        cascading_randomisation(small.model, torch.rand(1, 3, 128, 128), small.default_layer, 0, available=1000)

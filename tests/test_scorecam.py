"""Score-CAM: the batched, batch-size-measuring implementation gives the old loop's maps; progress, stop, estimate."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torchvision.models import resnet18

from gradcam_core import compute_cam
from gradcam_core.scorecam import estimate_scorecam, masked_passes, scorecam
from tests.conftest import Counter, TinyNet, hook_count
from tests.scorecam_reference import layer_acts, old_scorecam


def test_tiny_net_with_constant_channels_matches_the_old_loop(tiny: TinyNet, images: Tensor) -> None:
    acts = layer_acts(tiny, "features.1", images).clone()
    acts[0, 1] = 0.0  # a dead channel: no pass needed, zero term
    acts[1, 2] = 0.7  # constant but not zero: the blank input's weight, as the old loop gave it
    acts[2, :3] = -1.5
    classes = torch.tensor([[0, 3], [1, 1], [4, 2]])
    calls: list[tuple[int, int]] = []
    new = scorecam(tiny, images, acts, classes, batch_size=4, progress=lambda d, t: calls.append((d, t)))
    torch.testing.assert_close(new, old_scorecam(tiny, images, acts, classes), rtol=1e-5, atol=1e-6)
    total = 3 * 6 - 1 - 1 - 3 + 1  # 18 channels, 5 constant, one blank pass
    assert masked_passes(acts) == total
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_resnet18_layer4_matches_the_old_loop_with_fewer_image_passes() -> None:
    model = resnet18(weights=None).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    acts = layer_acts(model, "layer4", x)
    expected = old_scorecam(model, x, acts, torch.tensor([[7, 100]]))
    counter = Counter(model)
    try:
        result = compute_cam(model, x, "layer4", classes=[7, 100], method="scorecam", batch_size=16)
    finally:
        counter.handle.remove()
    torch.testing.assert_close(result.maps, expected.permute(1, 0, 2, 3), rtol=1e-4, atol=1e-6)
    assert counter.images == 1 + masked_passes(acts) <= 1 + 512  # the engine's own forward, then the masks


def test_progress_can_stop_the_run_and_leaves_nothing_behind(tiny: TinyNet, images: Tensor) -> None:
    class StopError(Exception):
        pass

    def progress(done: int, total: int) -> None:
        if done >= 5:
            raise StopError

    counter = Counter(tiny)
    try:
        with pytest.raises(StopError):
            compute_cam(tiny, images, "features.3", method="scorecam", batch_size=2, progress=progress)
        images_run = counter.images
    finally:
        counter.handle.remove()
    assert images_run < 3 + masked_passes(layer_acts(tiny, "features.3", images))  # stopped early
    assert hook_count(tiny) == 0
    assert not any(p.grad is not None for p in tiny.parameters())
    # And it runs again afterwards, unchanged.
    again = compute_cam(tiny, images, "features.3", method="scorecam", batch_size=2)
    assert again.maps.shape == (3, 1, 8, 8)


def test_estimate_counts_the_passes_and_times_a_forward(tiny: TinyNet, images: Tensor) -> None:
    estimate = estimate_scorecam(tiny, images, "features.3")
    assert estimate.channels == 8
    assert estimate.passes == masked_passes(layer_acts(tiny, "features.3", images))
    assert estimate.seconds_per_pass > 0 and estimate.seconds == estimate.passes * estimate.seconds_per_pass
    assert hook_count(tiny) == 0
    with pytest.raises(ValueError, match="unknown layer"):
        estimate_scorecam(tiny, images, "features.9")


def test_scorecam_rejects_a_zero_batch_size(tiny: TinyNet, images: Tensor) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        scorecam(tiny, images, layer_acts(tiny, "features.3", images), torch.zeros(3, 1, dtype=torch.long), 0)

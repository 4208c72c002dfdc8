"""Score-CAM (Wang et al., CVPR Workshops 2020): channel weights from masked forward passes.

Score-CAM needs one forward pass per channel and image (1280 for EfficientNet-Lite0's last
layer), so this module also says beforehand how many passes it needs and about how long they
take (:func:`estimate_scorecam`), reports progress while it runs, and lets the caller stop it: the
``progress`` callback may raise, and the exception propagates with nothing left behind (no
hooks, no state). Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradcam_core.hooks import model_device
from gradcam_core.layers import resolve_layer
from gradcam_core.layout import spatial_layout
from gradcam_core.logits import model_logits
from gradcam_core.progress import Progress
from gradcam_core.taps import taps_of

__all__ = ["Progress", "ScoreCamEstimate", "estimate_scorecam", "masked_passes", "scorecam"]


# Each candidate batch size is timed on at least this many masked images (they are real work).
_PROBE_IMAGES = 4
# Larger candidates are not tried once one is this much slower per image than the best so far.
_GIVE_UP = 1.5


@dataclass(frozen=True, slots=True)
class ScoreCamEstimate:
    """How much work Score-CAM needs for some images at one layer.

    Attributes:
        passes: masked forward passes (one per image and non-constant channel, plus one for the
            blank input when a channel is constant but not zero).
        channels: the layer's channel count C.
        seconds_per_pass: one plain forward pass of one image, timed just now.
    """

    passes: int
    channels: int
    seconds_per_pass: float

    @property
    def seconds(self) -> float:
        """About how long the masked passes take (they run batched, so usually a little less)."""
        return self.passes * self.seconds_per_pass


def _constant(acts: Tensor) -> tuple[Tensor, Tensor]:
    """Per [N, C]: whether each channel is constant, and whether it is constant and not zero."""
    flat = acts.flatten(2)
    low, high = flat.amin(dim=2), flat.amax(dim=2)
    constant = ~(high > low)
    return constant, constant & (low != 0)


def masked_passes(acts: Tensor) -> int:
    """The masked forward passes :func:`scorecam` runs for activations ``acts`` [N, C, h, w].

    A constant channel's mask is blank, so every such channel shares one pass on the blank
    input, which only matters (and only runs) when some constant channel is not zero.
    """
    constant, nonzero = _constant(acts)
    return int((~constant).sum()) + int(bool(nonzero.any()))


def estimate_scorecam(model: nn.Module, inputs: Tensor, layer: str) -> ScoreCamEstimate:
    """How many masked passes Score-CAM needs for ``inputs`` at ``layer``, and about how long they take.

    Runs two plain forward passes: one of ``inputs`` to read the layer's activations, and a timed
    one of the first image alone, whose time is the estimate per masked pass.

    Raises:
        ValueError: an unknown layer, or one whose output is not a spatial map.
    """
    resolve_layer(model, layer)
    x = inputs.detach().to(device=model_device(model), dtype=torch.float32)
    out = taps_of(model).read(x, layer)
    if not isinstance(out, Tensor) or (layout := spatial_layout(tuple(out.shape), (x.shape[-2], x.shape[-1]))) is None:
        raise ValueError(f"layer '{layer}' gives no spatial map: choose a layer from list_layers()")
    acts = layout.to_map(out)
    with torch.inference_mode():
        start = time.perf_counter()
        model_logits(model, x[:1]).cpu()
        seconds = time.perf_counter() - start
    return ScoreCamEstimate(masked_passes(acts), int(acts.shape[1]), seconds)


def _batch_sizes(limit: int) -> list[int]:
    """The batch sizes to try, smallest first: powers of two below ``limit``, and ``limit``."""
    sizes, b = [], 1
    while b < limit:
        sizes.append(b)
        b *= 2
    return [*sizes, limit]


def scorecam(
    model: nn.Module,
    inputs: Tensor,
    acts: Tensor,
    classes: Tensor,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> Tensor:
    """Weight each channel by the class probability of the input masked with that channel.

    Each activation channel is upsampled bilinearly to the input size and min-max scaled to
    [0, 1]; the input is multiplied by it and run forward. The channel's weight is the softmax
    probability of the target class for that masked input (the authors' reference
    implementation: no baseline is subtracted and no softmax is taken across channels). The
    map is ReLU(Σ_k w_k A^k). All K classes share the same masked passes.

    A constant channel has no range to scale: its mask is zero, so its input is blank. All such
    channels share one pass on the blank input, which is skipped when they are all zero (their
    term is zero whatever the weight). The masked passes of all N images run in batches of one
    size, the fastest per image among 1, 2, 4, … up to ``batch_size``, found by timing the first
    batches (which are real work, not extra passes): some models run fastest one image at a time.

    Args:
        model: the classifier, in eval mode.
        inputs: the preprocessed images [N, 3, H, W], on the model's device.
        acts: the layer's activations [N, C, h, w].
        classes: class indices [N, K].
        batch_size: the most masked images per forward pass; lower it to save memory.
        progress: called as ``progress(done, total)`` with the masked passes done so far, at the
            start and after each batch. It may raise to stop the run; the exception propagates.

    Returns:
        Maps [K, N, h, w].
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}")
    acts = acts.detach()
    constant, nonzero = _constant(acts)
    work = (~constant).nonzero().tolist()  # (image, channel) pairs, image by image
    total = len(work) + int(bool(nonzero.any()))
    weights = torch.zeros(*acts.shape[:2], classes.shape[1], dtype=torch.float32)  # [N, C, K], on the CPU
    cpu_classes = classes.cpu()
    done = 0
    if progress:
        progress(0, total)
    with torch.inference_mode():
        if nonzero.any():
            blank = torch.softmax(model_logits(model, torch.zeros_like(inputs[:1])).float(), dim=1)[0].cpu()
            weights[nonzero.cpu()] = blank[cpu_classes][:, None, :].expand_as(weights)[nonzero.cpu()]
            done += 1
            if progress:
                progress(done, total)

        def run(pairs: Sequence[list[int]]) -> float:
            """Score the masked inputs of ``pairs``; return the seconds it took."""
            nonlocal done
            start = time.perf_counter()
            image = torch.tensor([p[0] for p in pairs], device=inputs.device)
            channel = torch.tensor([p[1] for p in pairs], device=inputs.device)
            masks = F.interpolate(
                acts[image, channel][:, None], size=inputs.shape[-2:], mode="bilinear", align_corners=False
            )
            low = masks.amin(dim=(-2, -1), keepdim=True)
            span = masks.amax(dim=(-2, -1), keepdim=True) - low
            masks = torch.where(span > 0, (masks - low) / torch.where(span > 0, span, 1.0), 0.0)
            probs = torch.softmax(model_logits(model, inputs[image] * masks).float(), dim=1)
            chosen = probs.gather(1, classes[image]).cpu()  # [B, K]; the copy also waits for a GPU
            weights[image.cpu(), channel.cpu()] = chosen
            done += len(pairs)
            if progress:
                progress(done, total)
            return time.perf_counter() - start

        at = 0
        if work:  # the first pass warms the model up, so it is not timed
            run(work[:1])
            at = 1
        best, best_time = 1, float("inf")
        for size in _batch_sizes(batch_size):
            if len(work) - at < size:
                break
            spent, timed = 0.0, 0
            while timed < max(size, _PROBE_IMAGES) and len(work) - at >= size:
                spent += run(work[at : at + size])
                at, timed = at + size, timed + size
            per_image = spent / timed
            if per_image < best_time:
                best, best_time = size, per_image
            elif per_image > _GIVE_UP * best_time:
                break
        for start in range(at, len(work), best):
            run(work[start : start + best])
    cam = torch.einsum("nck,nchw->knhw", weights.to(device=acts.device, dtype=acts.dtype), acts)
    return torch.relu(cam)

"""Score-CAM's speed against the plain forward passes it cannot avoid, and against the old implementation.

    python -m bench.scorecam [--models resnet18,efficientnet] [--no-old] [--sample 64] [--threads N]

For each model (eager, one 224 × 224 image) it prints:

* ``forwards``: the C plain forward passes Score-CAM needs at least, at the model's best batch size
  (each candidate batch size 1, 2, 4, … 32 is timed on ``--sample`` images, and the fastest per image
  is scaled to C);
* ``scorecam``: :func:`gradcam_core.compute_cam` with ``method="scorecam"`` (its one forward included);
* ``old``: the implementation as of 8b8347c (all masks of an image at once, batches of 32), in the
  same run, as the fair baseline;
* ``torch-cam``: its ``ScoreCAM`` in the same run, when ``torchcam`` is installed (it is no requirement);
* the ratios. The target is ``scorecam / forwards`` at most 1.2, and faster than torch-cam, which
  the issue measured on a quiet machine at 9.1 s (resnet18 ``layer4``) and 41.4 s
  (EfficientNet-Lite0 ``_swish``); without torchcam installed those figures are printed instead.

Timings on a shared machine are noisy: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from gradcam_core import compute_cam, load_image
from tests.scorecam_reference import layer_acts, old_scorecam

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "images" / "elephant.jpg"
TORCHCAM_QUIET = {"resnet18": 9.1, "efficientnet": 41.4}  # seconds, from issue 11


def _models() -> dict[str, Callable[[], tuple[nn.Module, str]]]:
    def resnet() -> tuple[nn.Module, str]:
        from torchvision.models import resnet18

        return resnet18(weights=None).eval(), "layer4"

    def efficientnet() -> tuple[nn.Module, str]:
        from tests.efficientnet import eager

        return eager(), "_swish"

    return {"resnet18": resnet, "efficientnet": efficientnet}


def _input() -> Tensor:
    if PHOTO.is_file():
        from tests.efficientnet import loaded

        return loaded().preprocess(load_image(PHOTO))[None]
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def _best_forward(model: nn.Module, x: Tensor, sample: int) -> tuple[int, float, dict[int, float]]:
    """(best batch size, seconds per image there, seconds per image by batch size)."""
    per: dict[int, float] = {}
    with torch.inference_mode():
        model(x)  # warm up
        for b in (1, 2, 4, 8, 16, 32):
            batch = x.expand(b, -1, -1, -1).contiguous() * 0.5
            rounds = max(1, sample // b)
            start = time.perf_counter()
            for _ in range(rounds):
                model(batch)
            per[b] = (time.perf_counter() - start) / (rounds * b)
    best = min(per, key=per.__getitem__)
    return best, per[best], per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,efficientnet")
    parser.add_argument("--no-old", action="store_true", help="skip the old implementation (slow)")
    parser.add_argument("--sample", type=int, default=64, help="images timed per candidate batch size")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x = _input()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; input {tuple(x.shape)}")
    for name in args.models.split(","):
        model, layer = _models()[name]()
        acts = layer_acts(model, layer, x)
        c = acts.shape[1]
        best, per_image, per = _best_forward(model, x, args.sample)
        forwards = per_image * c
        table = ", ".join(f"{b}: {t * 1000:.1f}" for b, t in per.items())
        print(f"\n{name} `{layer}` ({c} channels); ms per image by batch size: {table}")
        print(f"  forwards: {c} at batch {best}: {forwards:.2f} s")
        start = time.perf_counter()
        result = compute_cam(model, x, layer, method="scorecam")
        new = time.perf_counter() - start
        print(f"  scorecam: {new:.2f} s  ({new / forwards:.2f}x the forwards; target <= 1.2x)")
        if not args.no_old:
            start = time.perf_counter()
            expected = old_scorecam(model, x, acts, result.classes)
            old = time.perf_counter() - start
            same = torch.allclose(result.maps, expected.permute(1, 0, 2, 3), rtol=1e-4, atol=1e-6)
            print(f"  old (8b8347c, batch 32): {old:.2f} s  (new is {old / new:.2f}x faster; maps equal: {same})")
        if importlib.util.find_spec("torchcam") is None:
            print(f"  torch-cam: not installed (issue 11 measured {TORCHCAM_QUIET[name]} s on a quiet machine)")
        else:
            print(f"  torch-cam: {_torchcam(model, layer, x):.2f} s  (this run)")


def _torchcam(model: nn.Module, layer: str, x: Tensor) -> float:
    """torch-cam's ScoreCAM (batch 32, its default) on the same input and layer, when it is installed."""
    from torchcam.methods import ScoreCAM

    start = time.perf_counter()
    with ScoreCAM(model, target_layer=layer, input_shape=tuple(x.shape[1:])) as extractor:
        scores = model(x)
        extractor(int(scores[0].argmax()), scores)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

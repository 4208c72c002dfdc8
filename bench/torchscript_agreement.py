"""How closely TorchScript maps match the eager model's, at every layer (prints figures, asserts nothing).

Each model is compiled with torch.jit.script and with torch.jit.trace, saved and loaded back as
users do, and explained through ScriptedModel at every spatial layer; the maps are compared with
the eager model's. It prints the layer counts, whether the layer lists are identical (names,
types, shapes, calls), and the worst relative difference over all layers, methods and classes.

The torchvision models have random weights. ``efficientnet-lite0`` is the real EfficientNet-Lite0
with ImageNet weights from the test requirements (``tests/efficientnet.py``): its blocks sit in a
ModuleList, whose name TorchScript's recorded module paths leave out. It does not script
(torch.jit.script rejects its code); that is reported, and only the traced model is compared.

    python -m bench.torchscript_agreement [--models resnet18,densenet121,efficientnet-lite0] [--size 64]
    python -m bench.torchscript_agreement --models efficientnet-lite0 --methods gradcam
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

from gradcam_core import ScriptedModel, compute_cam, list_layers
from gradcam_core.torchscript import load_scripted

EFFICIENTNET = "efficientnet-lite0"


def eager_model(name: str) -> nn.Module:
    """The eager model: torchvision's with random weights, or the real EfficientNet-Lite0."""
    if name == EFFICIENTNET:
        from tests.efficientnet import eager

        return eager()
    return torchvision.models.get_model(name, weights=None).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=f"resnet18,densenet121,{EFFICIENTNET}")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--methods", default="gradcam,gradcam++,hirescam")
    args = parser.parse_args()
    methods = args.methods.split(",")
    torch.manual_seed(0)
    x = torch.randn(2, 3, args.size, args.size)
    print(f"torch {torch.__version__}; input {tuple(x.shape)}; methods {', '.join(methods)}; classes 3 and 7")
    for name in args.models.split(","):
        eager = eager_model(name)
        for how in ("script", "trace"):
            with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit is deprecated in torch 2.14; tracer warnings
                path = Path(folder) / f"{name}.pt"
                try:
                    (torch.jit.script(eager) if how == "script" else torch.jit.trace(eager, x)).save(str(path))
                except Exception as exc:  # any compile failure is a figure to report
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    print(f"{name:<18} {how:<6} does not compile: {type(exc).__name__}: {first[:100]}")
                    continue
                scripted = ScriptedModel(load_scripted(path))
            start = time.perf_counter()
            ours, theirs = list_layers(scripted, args.size), list_layers(eager, args.size)
            worst, failed = 0.0, []
            for info in ours:
                try:
                    for method in methods:
                        a = compute_cam(eager, x, info.name, classes=[3, 7], method=method).maps
                        b = compute_cam(scripted, x, info, classes=[3, 7], method=method).maps
                        worst = max(worst, float((a - b).abs().max()) / max(float(a.abs().max()), 1e-12))
                except (ValueError, RuntimeError, AttributeError) as exc:
                    failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
            print(
                f"{name:<18} {how:<6} {len(ours):>4} layers (eager {len(theirs)}, identical lists: {ours == theirs}); "
                f"{len(ours) - len(failed)} explained, worst relative difference {worst:.2e}; "
                f"{time.perf_counter() - start:.0f} s"
            )
            for line in failed[:10]:
                print(f"    failed {line}")


if __name__ == "__main__":
    main()

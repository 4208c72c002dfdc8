"""How closely TorchScript maps match the eager model's, at every layer (prints figures, asserts nothing).

Each model (random weights) is compiled with torch.jit.script and with torch.jit.trace, saved and
loaded back as users do, and explained through ScriptedModel at every spatial layer; the maps are
compared with the eager model's. It prints the layer counts, whether the layer lists are identical,
and the worst relative difference over all layers, methods and classes.

    python -m bench.torchscript_agreement [--models resnet18,densenet121] [--size 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torchvision

from gradcam_core import ScriptedModel, compute_cam, list_layers
from gradcam_core.torchscript import load_scripted

METHODS = ("gradcam", "gradcam++", "hirescam")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet18,densenet121")
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(2, 3, args.size, args.size)
    print(f"torch {torch.__version__}; input {tuple(x.shape)}; methods {', '.join(METHODS)}; classes 3 and 7")
    for name in args.models.split(","):
        eager = torchvision.models.get_model(name, weights=None).eval()
        for how in ("script", "trace"):
            with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.14
                path = Path(folder) / f"{name}.pt"
                (torch.jit.script(eager) if how == "script" else torch.jit.trace(eager, x)).save(str(path))
                scripted = ScriptedModel(load_scripted(path))
            start = time.perf_counter()
            ours, theirs = list_layers(scripted, args.size), list_layers(eager, args.size)
            worst = 0.0
            for info in ours:
                for method in METHODS:
                    a = compute_cam(eager, x, info.name, classes=[3, 7], method=method).maps
                    b = compute_cam(scripted, x, info.name, classes=[3, 7], method=method).maps
                    worst = max(worst, float((a - b).abs().max()) / max(float(a.abs().max()), 1e-12))
            print(
                f"{name:<12} {how:<6} {len(ours):>4} layers (eager {len(theirs)}, identical lists: {ours == theirs}); "
                f"worst relative difference {worst:.2e}; {time.perf_counter() - start:.0f} s"
            )


if __name__ == "__main__":
    main()

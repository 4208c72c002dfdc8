"""Dataset audit throughput, here and on a local Ray (a benchmark: it prints figures, it asserts nothing).

For each dataset it times, in images per second:
  plain loop   - decode + preprocess + an inference forward (torch.inference_mode), batch by batch:
                 the least any audit must do; with the model already loaded;
  local audit  - gradcam_core.audit(..., ray=None), end to end, model load and file writing included;
  Ray, 1 and 2 actors (--ray) - the same Auditor as Ray Data actors (1 CPU and 1 torch thread each) on
                 one local Ray started here with every CPU: start-up (ray.init, actors up, first
                 block back from every actor) apart from the steady state (the rest of the rows over the
                 rest of the time).
Each kind runs --repeats times, alternated with its partner, and the medians are reported.
It then states the break-even size: the dataset at which Ray's start-up is paid back by its faster
steady state, against the local audit.

Datasets: N shapes scenes (gradcam_core.demo.dataset, shapes-demo at 128 px) and the photos of
../shared/images repeated to M images (efficientnet_lite0 at 224 px).

    python -m bench.audit [--scenes 2000] [--photos 660] [--batch-size 16] [--threads 2] [--ray [--repeats 2]]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning, as in the app and the tests.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from gradcam_core import audit, load_image, load_model, read_dataset
from gradcam_core.auditor import Auditor
from gradcam_core.datasets import read_bytes
from gradcam_core.demo.dataset import write_dataset
from gradcam_core.modelref import ModelRef

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def photos(folder: Path, n: int) -> Path | None:
    """An ImageFolder of ``n`` links to the shared photos (one class folder: labels do not change speed)."""
    files = sorted(p for p in SHARED.glob("*") if p.suffix.lower() in (".jpg", ".png")) if SHARED.is_dir() else []
    if not files:
        return None
    (folder / "photo").mkdir(parents=True)
    for i in range(n):
        (folder / "photo" / f"{i:05d}{files[i % len(files)].suffix}").symlink_to(files[i % len(files)])
    return folder


def plain_loop(model: str, data: Path, batch_size: int) -> float:
    """Images per second of decode + preprocess + inference forward, the model loaded beforehand."""
    loaded = load_model(model, device="cpu")
    items = read_dataset(data, loaded.categories).items
    start = time.perf_counter()
    with torch.inference_mode():
        for at in range(0, len(items), batch_size):
            part = items[at : at + batch_size]
            x = torch.stack([loaded.preprocess(load_image(read_bytes(i.uri))) for i in part])
            loaded.model(x)
    return len(items) / (time.perf_counter() - start)


def local_audit(model: str, data: Path, out: Path, batch_size: int) -> float:
    """Images per second of the whole local audit, start to written file."""
    n = len(read_dataset(data, load_model(model, device="cpu").categories).items)
    start = time.perf_counter()
    audit(data, model=model, out=out, batch_size=batch_size, overwrite=True, progress=False)
    return n / (time.perf_counter() - start)


def ray_run(model: str, data: Path, batch_size: int, actors: int) -> tuple[float, float, int]:
    """(start-up seconds, steady images per second, images) of ``actors`` Ray actors on a fresh local Ray.

    Start-up runs until every actor has sent its first block back (Ray up, actors started, models
    loaded, first batches done); the steady state is the rest of the rows over the rest of the time.
    """
    import ray

    from gradcam_core.audit_ray import run_on_ray

    loaded = load_model(model, device="cpu")
    items = read_dataset(data, loaded.categories).items
    layers = [i.name for i in Auditor(loaded, None, "gradcam").layers]
    start = time.perf_counter()
    arrivals: list[tuple[float, int]] = []
    for table in run_on_ray(
        ModelRef(model), layers, "gradcam", items, batch_size=batch_size, actors=actors, progress=False
    ):
        arrivals.append((time.perf_counter(), table.num_rows))
    assert len(arrivals) > actors, "too few blocks to tell the start-up from the steady state"
    assert not ray.is_initialized(), "run_on_ray left its Ray running"
    ready = arrivals[actors - 1][0]
    steady = sum(n for _, n in arrivals[actors:]) / (arrivals[-1][0] - ready)
    return ready - start, steady, sum(n for _, n in arrivals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=2000)
    parser.add_argument("--photos", type=int, default=660)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the plain loop and local audit")
    parser.add_argument("--ray", action="store_true", help="also time Ray with 1 and 2 actors")
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs of each kind, alternated (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        tagged = args.scenes // 5
        sets = [("shapes-demo", write_dataset(tmp / "shapes", clean=args.scenes - tagged, tagged=tagged))]
        if args.photos and (folder := photos(tmp / "photos", args.photos)) is not None:
            sets.append(("efficientnet_lite0", folder))
        print(f"{os.cpu_count()} CPUs, torch threads {args.threads}, batch {args.batch_size}")
        for model, data in sets:
            n = len(read_dataset(data, load_model(model, device="cpu").categories).items)
            print(f"\n{model}: {n} images")
            pairs = []
            for r in range(args.repeats):  # paired and alternated: this machine's speed drifts by tens of %
                order = ("loop", "local") if r % 2 == 0 else ("local", "loop")
                got = {
                    k: plain_loop(model, data, args.batch_size)
                    if k == "loop"
                    else local_audit(model, data, tmp / f"{model}.parquet", args.batch_size)
                    for k in order
                }
                pairs.append((got["loop"], got["local"]))
                print(f"  plain loop {got['loop']:7.1f} img/s, local audit {got['local']:7.1f} img/s")
            loop = statistics.median(p[0] for p in pairs)
            local = statistics.median(p[1] for p in pairs)
            ratios = ", ".join(f"{b / a:.2f}" for a, b in pairs)
            paired = statistics.median(b / a for a, b in pairs)
            print(f"  plain loop (decode+preprocess+forward) {loop:8.1f} img/s (median)")
            print(f"  local audit (Grad-CAM, end to end)     {local:8.1f} img/s (median), {local / loop:.2f}x")
            print(f"  local audit / plain loop, per pair     {paired:8.2f}x (median of {ratios})")
            if not args.ray:
                continue
            runs: dict[int, list[tuple[float, float, int]]] = {1: [], 2: []}
            for _ in range(args.repeats):  # alternated, so that drift in machine speed hits both alike
                for a in runs:
                    runs[a].append(ray_run(model, data, args.batch_size, a))
                    startup, steady, rows = runs[a][-1]
                    print(f"  Ray, {a} actor(s): start-up {startup:5.1f} s, steady {steady:8.1f} img/s ({rows} rows)")
            r1, r2 = (statistics.median(r[1] for r in runs[a]) for a in (1, 2))
            s2 = statistics.median(r[0] for r in runs[2])
            ratios = ", ".join(f"{b[1] / a[1]:.2f}" for a, b in zip(runs[1], runs[2], strict=True))
            print(f"  Ray steady state, 2 actors / 1 actor   {r2 / r1:8.2f}x (medians; per repeat {ratios})")
            if r2 > local:
                even = s2 / (1 / local - 1 / r2)
                print(f"  break-even against the local audit: {even:,.0f} images (start-up {s2:.1f} s)")
            else:
                print(f"  break-even: none here (Ray's steady {r2:.1f} img/s <= local {local:.1f} img/s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""App responsiveness, on the real model and on the shapes model (a benchmark: it prints figures, it asserts nothing).

For efficientnet_lite0 (real photos: scikit-image's chelsea, coffee, rocket and astronaut, as
JPEGs) and the bundled shapes-demo (its own 128 px scenes), with the model cached:
  engine      - the app's path without Streamlit: ui.images.decode (decode, downscale), then
                ui.compute.explanation (preprocess, one forward pass, Grad-CAM at the default
                layer given as its LayerInfo), then the raw grid and the full-size overlay the
                Explain page draws (ui.views.raw_grid, ui.views.overlay_full);
  new image   - server side through the real Streamlit runtime (AppTest): a new upload to its
                first heat-map, the whole Explain script run;
  opacity     - moving the opacity slider (display only: no forward pass);
  colour map  - changing the colour map (display only);
  12 MP JPEG  - a 4000×3000 photo from upload to first heat-map (efficientnet_lite0).
Every upload is a distinct file (one byte after the JPEG's end), so no cache is hit, and each run
is checked to show the uploaded image. The first run of each series warms caches and is left out.
Times are wall-clock, and the process runs torch's default thread count and app.py's OpenMP wait
policy (set here before torch loads, as app.py does), as the app does. On a busy machine,
``--clock cpu`` times the process's CPU time instead (all threads; the AppTest driver's polling
adds a little), steadier than wall time there; with ``OMP_NUM_THREADS=1`` it is the single-core
cost of each step.

    python -m bench.app_speed [--repeats 7] [--models efficientnet_lite0,shapes-demo] [--clock cpu]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads, as app.py sets it for the app

import argparse
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from gradcam_core import DEMO_MODEL as DEMO_NAME
from gradcam_core.demo.world import draw_scene, scene_rng
from ui import images, state, views
from ui.compute import Settings, explanation
from ui.models import cached_model, layers_of
from ui.text import plain_text

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def scene_png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(draw_scene(scene_rng(5000, i), i % 5).image).save(buf, "PNG")
    return buf.getvalue()


def photo_jpegs() -> list[bytes]:
    """scikit-image's colour photos (at most 640 px a side) as JPEGs, as a camera or the web gives them."""
    import skimage.data

    out = []
    for name in PHOTOS:
        buf = io.BytesIO()
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB").save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def big_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    big = Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def upload(model: str, i: int, photos: list[bytes]) -> tuple[str, bytes, str]:
    """The i-th distinct upload for ``model``: a photo, or a shapes scene."""
    if model == DEMO_NAME:
        return f"s{i}.png", scene_png(i), "image/png"
    return f"photo{i}.jpg", photos[i % len(photos)] + bytes([i % 256]), "image/jpeg"  # after EOI: still valid


CLOCK: list[Callable[[], float]] = [time.perf_counter]  # --clock cpu: time.process_time


def timed(fn: Callable[[], object]) -> float:
    start = CLOCK[0]()
    fn()
    return (CLOCK[0]() - start) * 1000


def engine(model: str, files: list[tuple[str, bytes, str]]) -> list[float]:
    """The app's compute and render path for each file, without Streamlit."""
    infos = layers_of(model)  # cached by the app after the model's first use
    layer = cached_model(model).default_layer
    assert any(info.name == layer for info in infos)
    times = []
    for name, data, _ in files:

        def one(name: str = name, data: bytes = data) -> None:
            entry = images.decode(name, data)
            exp = explanation(entry.image, Settings(model, layer, "gradcam"))
            views.raw_grid(exp, 0, "jet")
            views.overlay_full(entry.image, exp, 0, 0.45, "jet")

        times.append(timed(one))
    return times


def app_runs(at: AppTest, model: str, repeats: int, photos: list[bytes]) -> dict[str, list[float]]:
    """New image, opacity and colour map through the Explain page, for ``model``."""
    at.selectbox(key=state.W_MODEL).select(model).run()
    times: dict[str, list[float]] = {"new": [], "opacity": [], "cmap": []}
    for i in range(repeats + 1):
        name, data, mime = upload(model, 1000 + i, photos)
        uploader = next(u for u in at.file_uploader if u.key and u.key.startswith(state.W_UPLOAD))
        times["new"].append(timed(lambda: uploader.set_value((name, data, mime)).run()))
        check(at, name)
        times["opacity"].append(timed(lambda: at.slider(key=state.W_ALPHA).set_value(0.3 + 0.05 * (i % 8)).run()))
        times["cmap"].append(timed(lambda: at.selectbox(key=state.W_CMAP).select(["jet", "viridis"][i % 2]).run()))
        check(at, name)
    return times


def check(at: AppTest, name: str) -> None:
    """The run ended cleanly and explains the uploaded file (not the one before: a refused upload keeps it)."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    shown = plain_text(name)
    assert any(shown in c.value for c in at.caption), f"{name} is not the image explained"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", default=f"efficientnet_lite0,{DEMO_NAME}")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: process CPU time")
    args = parser.parse_args()
    wait = os.environ.get("OMP_WAIT_POLICY", "unset")
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
    models = args.models.split(",")
    photos = photo_jpegs()

    results: dict[str, list[float]] = {}
    for model in models:
        cached_model(model)
        results[f"{model}: engine: decode + explain + overlay"] = engine(
            model, [upload(model, i, photos) for i in range(args.repeats + 1)]
        )

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/1_Explain.py").run()
    for model in models:
        runs = app_runs(at, model, args.repeats, photos)
        results[f"{model}: app: new image -> first heat-map"] = runs["new"]
        results[f"{model}: app: opacity change (no forward pass)"] = runs["opacity"]
        results[f"{model}: app: colour map change (no forward pass)"] = runs["cmap"]
    if "efficientnet_lite0" in models:
        at.selectbox(key=state.W_MODEL).select("efficientnet_lite0").run()
        photo, big = big_jpeg(), []
        for i in range(3):
            name = f"big{i}.jpg"
            uploader = next(u for u in at.file_uploader if u.key and u.key.startswith(state.W_UPLOAD))
            big.append(timed(lambda: uploader.set_value((name, photo + bytes([i]), "image/jpeg")).run()))
            check(at, name)
        results["efficientnet_lite0: app: 12 MP JPEG upload -> first heat-map"] = big

    load = os.getloadavg()[0]
    clock = "process CPU time" if args.clock == "cpu" else "wall time"
    print(f"{args.repeats} repeats after one warm-up, {clock}; app times are whole script runs (server side)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY {wait}")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs")
    for label, values in results.items():
        values = values[1:]  # the first run warms caches
        q1, q2, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
        print(f"{label:<62} median {q2:7.1f} ms   IQR {q1:7.1f}-{q3:7.1f}   max {max(values):7.1f} ms")


if __name__ == "__main__":
    main()

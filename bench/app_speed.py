"""App responsiveness on the demo model (a benchmark: it prints figures, it asserts nothing).

Measures, server-side through the real Streamlit runtime (AppTest), with the model cached:
  new image   - a new upload to its first heat-map (decode, forward, Grad-CAM, render);
  opacity     - moving the opacity slider (display only: no forward pass);
  colour map  - changing the colour map (display only);
  12 MP JPEG  - a 4000×3000 photo from upload to first heat-map.
And the engine alone: one demo image through load_image + compute_cam + overlay.

    python -m bench.app_speed [--repeats 7]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from gradcam_core import compute_cam, load_image, load_model, overlay, paste_map
from gradcam_core.demo.world import draw_scene, scene_rng
from ui import state
from ui.models import cached_model

ROOT = Path(__file__).resolve().parents[1]


def scene_png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(draw_scene(scene_rng(5000, i), i % 5).image).save(buf, "PNG")
    return buf.getvalue()


def photo_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    big = Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    loaded = load_model("shapes-demo", device="cpu")
    engine = []
    for i in range(args.repeats + 1):
        data = scene_png(100 + i)

        def one() -> None:
            image = load_image(data)
            result = compute_cam(loaded.model, loaded.preprocess(image)[None], loaded.default_layer)
            overlay(image, paste_map(result.maps[0, 0], loaded.input_region(image.size), image.size))

        engine.append(timed(one))

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/1_Explain.py").run()
    cached_model("shapes-demo")
    new_image, opacity, cmap = [], [], []
    for i in range(args.repeats + 1):
        uploader = next(u for u in at.file_uploader if u.key and u.key.startswith(state.W_UPLOAD))
        new_image.append(timed(lambda: uploader.set_value((f"s{i}.png", scene_png(i), "image/png")).run()))
        assert not at.exception, [e.value for e in at.exception]
        opacity.append(timed(lambda: at.slider(key=state.W_ALPHA).set_value(0.3 + 0.05 * (i % 8)).run()))
        cmap.append(timed(lambda: at.selectbox(key=state.W_CMAP).select(["jet", "viridis"][i % 2]).run()))
    photo = photo_jpeg()
    big = []
    for i in range(3):
        data = photo[:-2] + bytes([i, 0xD9])  # a distinct file each time (no cache hit), still a valid JPEG
        big.append(
            timed(
                lambda: (
                    next(u for u in at.file_uploader if u.key and u.key.startswith(state.W_UPLOAD))
                    .set_value(("big.jpg", data, "image/jpeg"))
                    .run()
                )
            )
        )
        assert not at.exception, [e.value for e in at.exception]

    def report(label: str, values: list[float]) -> None:
        values = values[1:]  # the first run warms caches
        print(f"{label:<44} median {statistics.median(values):7.1f} ms   max {max(values):7.1f} ms")

    print(f"{args.repeats} repeats after one warm-up; times are whole script runs (server side)")
    report("engine: decode + Grad-CAM + overlay (128 px)", engine)
    report("app: new image -> first heat-map", new_image)
    report("app: opacity change (no forward pass)", opacity)
    report("app: colour map change (no forward pass)", cmap)
    report("app: 12 MP JPEG upload -> first heat-map", [big[0], *big])


if __name__ == "__main__":
    main()

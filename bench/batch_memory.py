"""What a Misclassifications batch keeps in the session (a benchmark: it prints figures, it asserts nothing).

Builds N photo-like JPEGs (smooth random colour fields with grain, 1600×1200 by default: the size
uploads are downscaled to), runs them through ``ui.batch.run`` on the demo model, and reports:
  before - what the app kept until issue 11: every decoded image (RGB, at most 1600 px a side);
  after  - what a batch keeps now: each file's bytes as uploaded and a 96 px JPEG thumbnail,
           plus the one row being looked at, decoded again.

    python -m bench.batch_memory [--images 500] [--width 1600] [--height 1200]
"""

from __future__ import annotations

import argparse
import io
import logging
import time

import numpy as np
from PIL import Image

from ui import batch
from ui.compute import Settings


def photo(rng: np.random.Generator, width: int, height: int) -> bytes:
    field = rng.integers(0, 255, (height // 40, width // 40, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(field).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-6, 7, smooth.shape, dtype=np.int16)
    buf = io.BytesIO()
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    args = parser.parse_args()
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # bare mode: no session, caches still work
    rng = np.random.default_rng(0)
    files = [(f"circle/{i:03d}.jpg", photo(rng, args.width, args.height)) for i in range(args.images)]
    file_mb = sum(len(d) for _, d in files) / 1e6
    start = time.perf_counter()
    run = batch.run(files, {}, ["circle", "square", "triangle", "star", "cross"],
                    Settings("shapes-demo", "features.block4", "gradcam"), lambda *_: None)  # fmt: skip
    seconds = time.perf_counter() - start
    shown = run.rows[0].entry()  # the row being looked at
    decoded = [r.entry().image for r in run.rows]
    before = sum(im.width * im.height * len(im.getbands()) for im in decoded)
    view = shown.image.width * shown.image.height * 3
    thumbs = sum(len(r.thumbnail) for r in run.rows)
    print(f"{len(run.rows)} images of {args.width}×{args.height}, {file_mb:.0f} MB of JPEG files; run {seconds:.0f} s")
    print(f"before: decoded images kept     {before / 1e9:6.2f} GB")
    print(f"after:  file bytes + thumbnails {run.held_bytes() / 1e6:6.0f} MB (thumbnails {thumbs / 1e6:.1f} MB)")
    print(f"        + the row looked at     {view / 1e6:6.1f} MB = {(run.held_bytes() + view) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()

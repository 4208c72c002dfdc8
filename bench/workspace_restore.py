"""Restoring a workspace with a 20-panel board (a benchmark: it prints figures, it asserts nothing).

Builds the board the way a person does, through the real Streamlit runtime (AppTest): N real
photos uploaded (``../shared/images``, else scikit-image's), each explained by EfficientNet-Lite0
and pinned. Then, in the same process, it times what a reload does on the server before the page
draws anything (``ui.workspace``'s restore): open the link's id, read the saved state, read back
and decode every uploaded image (each file hashed again), and read back every panel's picture,
map and raw map (hashed again). It also times the whole first run of the Board page in a new
session opened at the link (restore plus drawing 20 panels), and reports the size on disk.

    python -m bench.workspace_restore [--panels 20] [--rounds 15]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def photos(count: int) -> list[Path]:
    from ui.samples import SHARED_PHOTOS, SKIMAGE_PHOTOS

    found = sorted(p for p in SHARED_PHOTOS.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(found) < count:
        import skimage

        found += [Path(skimage.data.__file__).parent / f for _, f, _ in SKIMAGE_PHOTOS]
    return [found[i % len(found)] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="gradcam-bench-"))
    os.environ["GRADCAM_DATA"] = str(data)
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    sys.path.insert(0, str(ROOT))
    from streamlit.testing.v1 import AppTest

    from ui import state, workspace
    from workspaces import Store

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/1_Explain.py").run()
    start = time.perf_counter()
    for path in photos(args.panels):
        uploader = next(u for u in at.file_uploader if u.key and u.key.startswith(state.W_UPLOAD))
        uploader.upload(path.name, path.read_bytes(), "image/jpeg" if path.suffix == ".jpg" else "image/png").run()
        next(b for b in at.button if b.label == "Pin to board").click().run()
        if at.exception or at.error:
            raise SystemExit(f"{path.name}: {[e.value for e in [*at.exception, *at.error]]}")
    token = at.session_state[state.WORKSPACE].token
    print(f"built: {args.panels} uploads on efficientnet_lite0, each pinned, in {time.perf_counter() - start:.0f} s")

    store = Store(data)  # what the app's process holds: one Store, opened once
    timings: dict[str, list[float]] = {"open": [], "state": [], "images": [], "panels": [], "total": []}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        ws = store.open(token)
        t1 = time.perf_counter()
        saved = ws.state()
        t2 = time.perf_counter()
        restored = [workspace.image_of(ws, entry) for entry in saved["images"]]
        t3 = time.perf_counter()
        board = workspace.panels_of(ws, ws.panels())
        t4 = time.perf_counter()
        for name, a, b in (("open", t0, t1), ("state", t1, t2), ("images", t2, t3), ("panels", t3, t4)):
            timings[name].append((b - a) * 1000)
        timings["total"].append((t4 - t0) * 1000)
    if len(board) != args.panels or len(restored) < args.panels:
        raise SystemExit(f"restored {len(restored)} images and {len(board)} panels, not {args.panels} of each")
    print(f"restore of {len(restored)} images (the first sample and {args.panels} uploads) and {len(board)} panels, "
          f"server-side, median of {args.rounds} (min-max), ms:")  # fmt: skip
    for name, values in timings.items():
        print(f"  {name:7s} {statistics.median(values):7.1f}  ({min(values):.1f}-{max(values):.1f})")

    page_runs = []
    for _ in range(3):
        fresh = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        fresh.query_params[workspace.OWN] = token
        t0 = time.perf_counter()
        fresh.run()
        fresh.switch_page("pages/3_Board.py").run()
        page_runs.append((time.perf_counter() - t0) * 1000)
        if len(fresh.session_state[state.BOARD]) != args.panels:
            raise SystemExit("the Board page did not restore every panel")
    print(f"a new session at the link, Home then the Board page drawn (restore included): "
          f"median {statistics.median(page_runs):.0f} ms of 3")  # fmt: skip

    used, panels = store.open(token).usage()
    db = sum(p.stat().st_size for p in data.glob("workspaces.sqlite3*"))
    print(f"size on disk: {used / 2**20:.1f} MB of files referenced ({panels} panels, {args.panels} uploads), "
          f"database {db / 2**10:.0f} KB (with its WAL)")  # fmt: skip


if __name__ == "__main__":
    main()

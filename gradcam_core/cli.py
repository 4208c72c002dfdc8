"""Command line: explain many images reproducibly, writing overlays, raw maps and a manifest.

    python -m gradcam_core explain IMAGE_OR_DIR... --model M --out DIR [options]
    python -m gradcam_core audit DATA --model M --out FILE.parquet [--ray auto|local|ADDRESS] [options]
    python -m gradcam_core app [STREAMLIT_ARGS]      (installed: gradcam-explorer explain | audit | app)

Bad files are skipped and listed (in the manifest and on stderr); the exit status is 0 when
every image was explained, 1 when some were skipped, and 2 for unusable arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from gradcam_core.boxscore import box_scores
from gradcam_core.cam import CamResult, compute_cams
from gradcam_core.guided import can_guide, guided_gradcam
from gradcam_core.hooks import model_device
from gradcam_core.images import ImageError, load_image
from gradcam_core.layers import depth_layers, list_layers, resolve_layer
from gradcam_core.logits import model_logits
from gradcam_core.methods import METHODS
from gradcam_core.modelref import ModelRef
from gradcam_core.models import list_models
from gradcam_core.preprocess import parse_stats
from gradcam_core.provenance import manifest_header, safe_stem, sha256_hex, top_classes
from gradcam_core.regions import Box, clamp_box, crop, paste_map
from gradcam_core.render import COLORMAPS, gradient_to_rgb, overlay
from gradcam_core.smoothing import TTA_SCALES, smoothing_label, tta_cam
from gradcam_core.weights import CheckpointError, WeightsUnavailable

__all__ = ["main"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcam-explorer" if Path(sys.argv[0]).name == "gradcam-explorer" else "python -m gradcam_core",
        description="Class activation maps from the command line, and the app.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    app = sub.add_parser(
        "app",
        help="start the Streamlit app",
        description="Start the app (streamlit run app.py); arguments after `app` go to streamlit, such as "
        "--server.port 8502.",
    )
    app.add_argument("streamlit_args", nargs="*", metavar="STREAMLIT_ARGS")
    ex = sub.add_parser(
        "explain",
        help="explain images and write overlays, raw maps and manifest.json",
        description="Explain images (files, or every image in a folder) and write, into --out, an overlay "
        "PNG and a raw .npy map per image and class, plus manifest.json recording how they were made.",
    )
    ex.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_DIR")
    _model_arguments(ex)
    ex.add_argument("--layer", help="target layer (default: the model's own default)")
    ex.add_argument("--method", default="gradcam", choices=list(METHODS))
    ex.add_argument(
        "--methods",
        metavar="M,M,…",
        help="a grid: these methods (comma-separated, or 'all' for every method but Score-CAM), sharing one "
        "forward pass per layer; replaces --method",
    )
    ex.add_argument(
        "--layers",
        metavar="L,L,…",
        help="a grid: these layers (comma-separated, or 'blocks' for the model's blocks from the stem to the head); "
        "replaces --layer",
    )
    ex.add_argument(
        "--smoothing",
        default="none",
        choices=["none", "eigen", "tta", "tta+eigen"],
        help="eigen smoothing (no extra pass) and/or test-time augmentation (flips × 3 scales: ×6 passes)",
    )
    ex.add_argument("--classes", default="top1", help="'top1', 'top5' or comma-separated class indices")
    ex.add_argument("--crop", help="explain only this box of each image: x,y,w,h in pixels")
    ex.add_argument(
        "--object-box",
        metavar="X,Y,W,H",
        help="the object's box in image pixels: each map gets the pointing game, the share of its mass in the "
        "box and the chance level (the box's share of the image) in the manifest",
    )
    ex.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    ex.add_argument("--alpha", type=float, default=0.45, help="overlay opacity, 0 to 1 (default 0.45)")
    ex.add_argument("--colormap", default="jet", choices=list(COLORMAPS))
    au = sub.add_parser(
        "audit",
        help="explain a whole labelled dataset into one Parquet file, here or on a Ray cluster",
        description="Explain every image of a labelled dataset (an ImageFolder, a CSV of path,label, or a ZIP "
        "of either) and write one Parquet file: predictions, the raw map and its statistics per image, layer "
        "and method, with the run's provenance in the schema's metadata (see gradcam_core.audit).",
    )
    au.add_argument("data", type=Path, metavar="DATA")
    _model_arguments(au)
    au.add_argument(
        "--labels-map", type=Path, help="a JSON {label: class} or CSV label,class for labels that are not class names"
    )
    au.add_argument(
        "--layer",
        action="append",
        dest="layers",
        metavar="L",
        help="a layer to explain at (repeat for more; default: the model's own)",
    )
    au.add_argument(  # Guided Grad-CAM's coarse maps are Grad-CAM's: an audit stores no pixel maps
        "--method", default="gradcam", choices=[m for m, spec in METHODS.items() if spec.kind != "guided"]
    )
    au.add_argument("--out", required=True, type=Path, help="the Parquet file to write")
    au.add_argument("--batch-size", type=int, default=16, metavar="N", help="images per batch (default 16)")
    au.add_argument("--limit", type=int, metavar="N", help="audit only the first N images (by path)")
    au.add_argument("--resume", action="store_true", help="continue an interrupted run into --out")
    au.add_argument("--overwrite", action="store_true", help="replace --out and any parts left by a run")
    au.add_argument(
        "--ray",
        metavar="auto|local|ADDRESS",
        help="run on Ray: a local one, this machine's cluster, or a cluster's address",
    )
    au.add_argument(
        "--actors", type=int, metavar="N", help="Ray actors, one model each (default: as the CPUs or GPUs allow)"
    )
    au.add_argument("--cpus-per-actor", type=float, default=1, metavar="C", help="CPUs per Ray actor (default 1)")
    au.add_argument("--gpus-per-actor", type=float, default=0, metavar="G", help="GPUs per Ray actor (default 0)")
    au.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _model_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments that name a model, its weights, labels and preprocessing (see :class:`ModelRef`)."""
    p.add_argument(
        "--model",
        required=True,
        metavar="M",
        help="a TorchScript file (torch.jit.save), or one of: " + ", ".join(list_models()),
    )
    p.add_argument("--weights", default="pretrained", help="'pretrained' (default), 'random' or a state_dict path")
    p.add_argument("--labels", type=Path, help="class names: one per line, a JSON list or a JSON {index: name}")
    pre = p.add_argument_group(
        "preprocessing",
        "How the model's input is made (default: the registry's for a listed model; ImageNet's, 224 × 224, for "
        "a TorchScript file). Any of these replaces a listed model's own preprocessing.",
    )
    pre.add_argument("--input-size", metavar="H,W", help="the input's height and width (default 224,224)")
    pre.add_argument(
        "--resize",
        metavar="N",
        help="resize the shorter side to N, then crop the centre to the input size; 'none' resizes the whole "
        "image to the input size (default: 256/224 of the input, as for ImageNet)",
    )
    pre.add_argument("--mean", help="normalisation mean: one value or R,G,B (default ImageNet's)")
    pre.add_argument("--std", help="normalisation std: one value or R,G,B (default ImageNet's)")


def _files(inputs: Sequence[Path]) -> list[Path]:
    """Named files as given; folders contribute their image files, sorted by name."""
    out: list[Path] = []
    for item in inputs:
        if item.is_dir():
            out.extend(sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(item)
    return out


def _model_ref(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ModelRef:
    """The model the arguments name, with their labels and preprocessing."""
    if args.model not in list_models() and not Path(args.model).is_file():
        parser.error(f"--model must be a TorchScript file or one of {', '.join(list_models())}, got '{args.model}'")
    size: tuple[int, int] | None = None
    if args.input_size:
        try:
            values = [int(v) for v in args.input_size.split(",")]
        except ValueError:
            values = []
        if len(values) != 2 or min(values) < 1:
            parser.error(f"--input-size must be H,W with positive numbers, got '{args.input_size}'")
        size = (values[0], values[1])
    resize: int | None = None
    if args.resize:
        if args.resize != "none" and not args.resize.isdigit():
            parser.error(f"--resize must be a number of pixels or 'none', got '{args.resize}'")
        resize = 0 if args.resize == "none" else int(args.resize)
    return ModelRef(
        model=args.model,
        weights=args.weights,
        labels=str(args.labels) if args.labels else None,
        input_size=size,
        mean=tuple(parse_stats(args.mean, "mean")) if args.mean else None,
        std=tuple(parse_stats(args.std, "std")) if args.std else None,
        resize=resize,
    )


def _box(text: str, option: str, parser: argparse.ArgumentParser) -> tuple[int, int, int, int]:
    """``x,y,w,h`` in pixels, with a positive width and height."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0:
        parser.error(f"{option} must be x,y,w,h with a positive width and height, got '{text}'")
    return values[0], values[1], values[2], values[3]


def _audit(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    """The ``audit`` command: 0 when every image was audited, 1 when some could not be read."""
    import pyarrow.parquet as pq

    from gradcam_core.audit import AuditError, audit
    from gradcam_core.datasets import DatasetError, parse_labels_map

    if args.batch_size < 1 or (args.limit is not None and args.limit < 0):
        parser.error("--batch-size must be at least 1 and --limit at least 0")
    try:
        labels_map = parse_labels_map(args.labels_map.read_bytes()) if args.labels_map else None
        path = audit(
            args.data, model=_model_ref(args, parser), out=args.out, layers=args.layers, method=args.method,
            batch_size=args.batch_size, limit=args.limit, resume=args.resume, overwrite=args.overwrite,
            labels_map=labels_map, ray=args.ray, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
            gpus_per_actor=args.gpus_per_actor, progress=not args.quiet,
            note=lambda line: print(f"note: {line}", file=sys.stderr),
            command=["gradcam-explorer", *argv],
        )  # fmt: skip
    except (AuditError, DatasetError, WeightsUnavailable, CheckpointError, ValueError, OSError, RuntimeError) as exc:
        parser.exit(2, f"error: {exc}\n")
    found = pq.read_table(path, columns=["path", "error", "correct"]).to_pandas()  # every layer's rows
    failed = found.loc[found["error"].notna(), "path"].nunique()
    known = found[found["correct"].notna()]
    accuracy = (
        f"{known['correct'].mean():.1%} top-1 on {len(known)} labelled rows" if len(known) else "no labelled rows"
    )
    print(f"wrote {len(found)} rows to {path}: {accuracy}; {failed} image(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def _cams(
    model: torch.nn.Module, x: torch.Tensor, layer: Any, classes: Any, methods: list[str], smoothing: str
) -> list[tuple[str, CamResult]]:
    """Each method's result at ``layer``: one shared pass, or one test-time augmentation per method."""
    eigen = "eigen" in smoothing
    if "tta" in smoothing:
        return [(m, tta_cam(model, x, layer, classes, m, eigen_smooth=eigen)) for m in methods]
    return list(compute_cams(model, x, layer, classes, methods, eigen_smooth=eigen).items())


def _sheet(cells: list[tuple[str, Image.Image]], columns: int, side: int = 256) -> Image.Image:
    """The grid's overlays on one white sheet, a caption under each, ``columns`` to a row."""
    columns = max(1, min(columns, len(cells)))
    rows = -(-len(cells) // columns)
    out = Image.new("RGB", (columns * (side + 8) + 8, rows * (side + 30) + 8), "white")
    draw = ImageDraw.Draw(out)
    for i, (caption, picture) in enumerate(cells):
        x0, y0 = 8 + (i % columns) * (side + 8), 8 + (i // columns) * (side + 30)
        thumb = picture.copy()
        thumb.thumbnail((side, side))
        out.paste(thumb, (x0, y0))
        draw.text((x0, y0 + thumb.height + 4), caption[:48], fill="black")
    return out


def _app(streamlit_args: Sequence[str]) -> int:
    """Start the app with ``streamlit run``, from the checkout this package is installed from."""
    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.is_file():
        print(
            f"error: the app ({app}) is not beside this package: install it from a checkout of the project "
            "with `pip install -e .`, or run `streamlit run app.py` there",
            file=sys.stderr,
        )
        return 2
    # The core never imports Streamlit: this process becomes `streamlit run` (so signals reach the server).
    os.chdir(app.parent)
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(app), *streamlit_args])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["app"] and argv[1:2] not in (["-h"], ["--help"]):  # the rest is streamlit's, options too
        return _app(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "audit":
        return _audit(args, parser, argv)
    if not 0 <= args.alpha <= 1:
        parser.error("--alpha must be between 0 and 1")
    box = _box(args.crop, "--crop", parser) if args.crop else None
    target = _box(args.object_box, "--object-box", parser) if args.object_box else None
    try:
        loaded = _model_ref(args, parser).load()
    except (WeightsUnavailable, CheckpointError, ValueError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    infos = list_layers(loaded.model, loaded.input_size, loaded.channels)
    # Its LayerInfo says how often a layer runs, so that autograd records from the explained call only.
    by_name = {i.name: i for i in infos}
    if args.layers == "blocks":
        layers = [i.name for i in depth_layers(infos)]
    else:
        layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else []
        layers = layers or [args.layer or loaded.default_layer]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else [args.method]
    if methods == ["all"]:  # but Score-CAM (a pass per channel), and Guided Grad-CAM where no ReLU module can be guided
        eager = can_guide(loaded.model)
        methods = [m for m, spec in METHODS.items() if spec.kind != "score" and (spec.kind != "guided" or eager)]
    if bad := [m for m in methods if m not in METHODS]:
        parser.error(f"unknown method(s) {', '.join(bad)}: use {', '.join(METHODS)} or 'all'")
    for layer in layers:
        try:
            resolve_layer(loaded.model, layer)
        except ValueError as exc:
            parser.exit(2, f"error: {exc}\n")
    grid = len(layers) * len(methods) > 1
    if args.classes in ("top1", "top5"):
        k, fixed = (1 if args.classes == "top1" else 5), None
    else:
        try:
            fixed = [int(c) for c in args.classes.split(",")]
        except ValueError:
            parser.error(f"--classes must be top1, top5 or comma-separated indices, got '{args.classes}'")
        if any(not 0 <= c < len(loaded.categories) for c in fixed):
            parser.error(f"--classes indices must be in 0..{len(loaded.categories) - 1}")
        k = len(fixed)

    files = _files(args.inputs)
    if not files:
        parser.exit(2, "error: no image files found in the inputs\n")
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = manifest_header(
        loaded, layers[0] if not grid else ", ".join(layers), methods[0] if not grid else ", ".join(methods),
        "each overlay is scaled by its own map's maximum",
    )  # fmt: skip
    manifest["smoothing"] = smoothing_label("eigen" in args.smoothing, TTA_SCALES if "tta" in args.smoothing else None)
    if grid:
        manifest["grid"] = {"layers": layers, "methods": methods}
    for n, path in enumerate(files):
        print(f"[{n + 1}/{len(files)}] {path.name}", file=sys.stderr)
        try:
            if not path.is_file():
                raise ImageError(f"no image file at '{path}'")
            data = path.read_bytes()
            image = load_image(data)
            region = clamp_box(box, image.size) if box else Box(0, 0, *image.size)
        except (ImageError, ValueError, OSError) as exc:
            manifest["skipped"].append({"image": str(path), "reason": str(exc)})
            print(f"  skipped: {exc}", file=sys.stderr)
            continue
        part = crop(image, region) if box else image
        x = loaded.preprocess(part)[None]
        wanted = fixed
        if fixed is None and (k > 1 or grid):  # the classes must be known before the maps: the same in every cell
            with torch.no_grad():
                scores = model_logits(loaded.model, x.to(model_device(loaded.model)))[0].cpu()
            wanted = scores.topk(k).indices.tolist()
        where = loaded.input_region(part.size)
        frame = Box(region.x + where.x, region.y + where.y, where.w, where.h)
        maps: list[dict[str, Any]] = []
        notes: list[str] = []
        probs = torch.empty(0)
        cells: list[tuple[str, Image.Image]] = []
        try:
            for layer in layers:
                for method, result in _cams(
                    loaded.model, x, by_name.get(layer, layer), wanted, methods, args.smoothing
                ):
                    probs = result.probabilities[0]
                    notes.extend(f"{layer} · {method}: {w}" if grid else w for w in result.warnings)
                    for j, cls in enumerate(result.classes[0].tolist()):
                        cell = f"_{safe_stem(layer.replace('.', '-'))}_{safe_stem(method)}" if grid else ""
                        stem = f"{n:03d}_{safe_stem(path.name)}{cell}_c{cls}"
                        raw = result.maps[0, j].numpy()
                        np.save(args.out / f"{stem}.npy", raw)
                        picture = overlay(image, paste_map(raw, frame, image.size), args.alpha, args.colormap)
                        picture.save(args.out / f"{stem}.png")
                        cells.append((f"{layer} · {method} · {loaded.categories[cls]}", picture))
                        maps.append(
                            {"index": cls, "name": loaded.categories[cls], "probability": round(float(probs[cls]), 6),
                             "explains": METHODS[method].target_label(loaded.categories[cls]),
                             "layer": layer, "method": method, "smoothing": result.smoothing,
                             "overlay": f"{stem}.png", "map": f"{stem}.npy", "map_shape": list(raw.shape),
                             "map_max": float(raw.max())}
                        )  # fmt: skip
                        if result.guided is not None:  # Guided Grad-CAM's pixel-resolution map, as the paper draws it
                            pixels = guided_gradcam(result.guided[:, j], result.maps[:, j])[0]
                            Image.fromarray(gradient_to_rgb(pixels, "rgb")).save(args.out / f"{stem}_guided.png")
                            np.save(args.out / f"{stem}_guided.npy", pixels.numpy())
                            maps[-1] |= {"guided_overlay": f"{stem}_guided.png", "guided_map": f"{stem}_guided.npy"}
                        if target is not None:
                            maps[-1]["box_scores"] = box_scores(raw, Box(*target), frame, image.size).record(
                                Box(*target)
                            )
        except ValueError as exc:  # an engine error on this image (a layer or method it cannot take)
            manifest["skipped"].append({"image": str(path), "reason": str(exc)})
            print(f"  skipped: {exc}", file=sys.stderr)
            continue
        item = {"image": str(path), "image_sha256": sha256_hex(data), "crop": list(region) if box else None,
                "top5": top_classes(probs, loaded.categories), "maps": maps, "warnings": notes}  # fmt: skip
        if grid:
            item["grid"] = f"{n:03d}_{safe_stem(path.name)}_grid.png"
            _sheet(cells, len(methods)).save(args.out / item["grid"])
        manifest["items"].append(item)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    done, skipped = len(manifest["items"]), len(manifest["skipped"])
    print(f"explained {done} image(s), skipped {skipped}; wrote {args.out / 'manifest.json'}", file=sys.stderr)
    return 1 if skipped else 0

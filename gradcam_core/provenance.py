"""Provenance: everything needed to reproduce a map, in one JSON-ready record.

The manifest schema (``gradcam-explorer/manifest/1``), written by the CLI and the app's exports::

    {
      "schema": "gradcam-explorer/manifest/1",
      "created": "2026-11-26T21:40:00+00:00",          # UTC, ISO 8601
      "versions": {"gradcam_core": "...", "torch": "...", "torchvision": "...", "timm": "..."},
      "model": {"name": "resnet50", "weights": "/path/or/random", "weights_sha256": "..." | null,
                "trained": true, "preprocess": "ImageClassification(...)", "input_size": [224, 224]},
      "layer": "layer4", "method": "gradcam",
      "normalisation": "each overlay is scaled by its own map's maximum",
      "items": [
        {"image": "cat.jpg", "image_sha256": "...", "crop": [x, y, w, h] | null,
         "top5": [{"index": 281, "name": "tabby", "probability": 0.61}, ...],
         "maps": [{"index": 281, "name": "tabby", "probability": 0.61, "overlay": "000_cat_c281.png",
                   "map": "000_cat_c281.npy", "map_shape": [7, 7], "map_max": 3.2}],
         "warnings": []}
      ],
      "skipped": [{"image": "notes.txt", "reason": "..."}]
    }

Raw maps (``.npy``) are float32 at the layer's resolution, not normalised.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import UTC, datetime
from importlib import metadata
from pathlib import PurePosixPath
from typing import Any

import torch
import torchvision

from gradcam_core.models import LoadedModel

__all__ = ["SCHEMA", "manifest_header", "model_record", "safe_stem", "stamp", "top_classes", "versions"]

SCHEMA = "gradcam-explorer/manifest/1"


def versions() -> dict[str, str]:
    """The versions of what computes a map: this package, torch, torchvision, and timm when installed.

    timm builds the real model's architecture (see :mod:`gradcam_core.efficientnet_lite`).
    """
    from gradcam_core import __version__

    found = {"gradcam_core": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__}
    with contextlib.suppress(metadata.PackageNotFoundError):
        found["timm"] = metadata.version("timm")
    return found


def stamp(schema: str = SCHEMA) -> dict[str, Any]:
    """The fields every export starts with: its ``schema``, when it was made (UTC), and :func:`versions`.

    The CLI's manifest and the app's board export (``gradcam-explorer/board/1``) both start so.
    """
    return {"schema": schema, "created": datetime.now(UTC).isoformat(timespec="seconds"), "versions": versions()}


def model_record(loaded: LoadedModel) -> dict[str, Any]:
    """What an export records of its model: name, weights and their SHA-256, preprocessing, input size."""
    return {
        "name": loaded.name,
        "weights": loaded.weights,
        "weights_sha256": loaded.weights_sha256,
        "trained": loaded.trained,
        "preprocess": repr(loaded.preprocess),
        "input_size": list(loaded.input_size),
    }


def manifest_header(loaded: LoadedModel, layer: str, method: str, normalisation: str) -> dict[str, Any]:
    """The manifest's fields shared by every item."""
    return {
        **stamp(),
        "model": model_record(loaded),
        "layer": layer,
        "method": method,
        "normalisation": normalisation,
        "items": [],
        "skipped": [],
    }


def top_classes(probabilities: torch.Tensor, categories: list[str], k: int = 5) -> list[dict[str, Any]]:
    """The k most probable classes as manifest entries."""
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return [
        {"index": int(i), "name": categories[int(i)], "probability": round(float(v), 6)}
        for v, i in zip(values, indices, strict=True)
    ]


def safe_stem(name: str, limit: int = 60) -> str:
    """A file-name-safe stem for exported files, from a name a user chose (never used as a path as it is).

    Folders and the extension are dropped, anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_``,
    and the result is at most ``limit`` characters, with no leading or trailing dots (``"image"``
    when nothing is left).
    """
    stem = PurePosixPath(name.replace("\\", "/")).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:limit].strip("._") or "image"


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of some bytes, in hex."""
    return hashlib.sha256(data).hexdigest()

"""The audit's batch function: a batch of dataset items in, one Arrow table of results out.

An :class:`Auditor` holds one loaded model. It is called the same way by the local loop and by
each Ray actor (:mod:`gradcam_core.audit_ray`), so both runs compute the same rows. The table it
returns keeps each map in its storage form (a fixed-size list of h·w floats, one column per map
shape); :func:`gradcam_core.audit.finish` turns those into ``arrow.fixed_shape_tensor`` columns
when the file is written.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import astuple, fields
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from gradcam_core.cam import compute_cam
from gradcam_core.datasets import read_bytes
from gradcam_core.hooks import model_device
from gradcam_core.images import ImageError, load_image
from gradcam_core.layers import LayerInfo, list_layers
from gradcam_core.mapstats import MapStats, map_stats
from gradcam_core.models import LoadedModel

__all__ = ["STAT_COLUMNS", "Auditor", "map_column", "result_schema"]

#: The per-map statistics' columns (see :class:`gradcam_core.mapstats.MapStats`).
STAT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(MapStats))
_NO_STATS = MapStats(*([float("nan")] * len(STAT_COLUMNS)))


def map_column(shape: tuple[int, int]) -> str:
    """The column that holds maps of ``shape``: ``map_7x7`` for a 7 × 7 grid."""
    return f"map_{shape[0]}x{shape[1]}"


def result_schema(map_shapes: Sequence[tuple[int, int]], top: int) -> pa.Schema:
    """The columns an :class:`Auditor` returns, for its layers' map shapes and its top-k."""
    cols: list[pa.Field] = [
        pa.field("path", pa.string(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("true_index", pa.int32()),
        pa.field("true_name", pa.string()),
        pa.field("pred_index", pa.int32()),
        pa.field("pred_name", pa.string()),
        pa.field("correct", pa.bool_()),
        pa.field("true_prob", pa.float32()),
        pa.field("pred_prob", pa.float32()),
        pa.field("top5_index", pa.list_(pa.int32(), top)),
        pa.field("top5_prob", pa.list_(pa.float32(), top)),
        pa.field("map_class", pa.int32()),
        pa.field("map_column", pa.string()),
        *(pa.field(s, pa.float32()) for s in STAT_COLUMNS),
        pa.field("model", pa.string(), nullable=False),
        pa.field("layer", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("warning", pa.string()),
        pa.field("error", pa.string()),
    ]
    for shape in dict.fromkeys(map_shapes):
        cols.append(pa.field(map_column(shape), pa.list_(pa.float32(), shape[0] * shape[1])))
    return pa.schema(cols)


def _decode(uri: str, archives: dict[str, zipfile.ZipFile]) -> tuple[Any, str | None]:
    """The image at ``uri``, or ``None`` and why it could not be read."""
    try:
        return load_image(read_bytes(uri, archives)), None
    except FileNotFoundError:
        return None, "no such file: check the path (a CSV's paths are relative to the CSV's folder)"
    except KeyError:
        return None, "no such member in the ZIP: check the CSV's paths inside the archive"
    except (ImageError, OSError, ValueError, zipfile.BadZipFile) as exc:
        return None, f"not a readable image: {exc}"


class Auditor:
    """Explains batches of dataset items with one model, at one or more layers, with one method.

    One caller at a time (the local loop, or one Ray actor): it keeps the ZIP archives it reads open
    between batches. The model itself is only read, so auditors may share one.

    Args:
        loaded: the model (load it where it runs: see :class:`gradcam_core.modelref.ModelRef`).
        layers: the layers to explain at (default: the model's default layer).
        method: a key of :data:`gradcam_core.METHODS`.

    Raises:
        ValueError: for a layer the model does not have, or one whose output is not a spatial map.
    """

    def __init__(self, loaded: LoadedModel, layers: Sequence[str] | None = None, method: str = "gradcam") -> None:
        self.loaded = loaded
        self.method = method
        self._archives: dict[str, zipfile.ZipFile] = {}  # ZIPs kept open between batches (one caller at a time)
        names = list(dict.fromkeys(layers or [loaded.default_layer]))
        found = {i.name: i for i in list_layers(loaded.model, loaded.input_size, loaded.channels)}
        missing = [n for n in names if n not in found]
        if missing:
            hint = ", ".join(list(found)[-5:])
            raise ValueError(f"layer '{missing[0]}' is not a spatial layer of {loaded.name}; its last ones are: {hint}")
        self.layers: list[LayerInfo] = [found[n] for n in names]
        self.top = min(5, len(loaded.categories))
        self.schema = result_schema([i.shape[1:] for i in self.layers], self.top)

    def __call__(self, batch: Mapping[str, Sequence[Any] | np.ndarray]) -> pa.Table:
        """Explain one batch: columns ``path``, ``uri``, ``label`` and ``index`` (``-1`` for no class).

        Returns one row per item and layer. An item that cannot be read keeps its rows, with the
        reason in ``error``; a batch in which no item can be read gives only such rows.
        """
        paths = [str(p) for p in batch["path"]]
        uris = [str(u) for u in batch["uri"]]
        labels = [str(v) for v in batch["label"]]
        truths = [None if int(v) < 0 else int(v) for v in batch["index"]]
        decoded = [_decode(u, self._archives) for u in uris]
        ok = [i for i, (image, _) in enumerate(decoded) if image is not None]
        cats = self.loaded.categories
        rows: list[dict[str, Any]] = []
        results = self._explain([decoded[i][0] for i in ok]) if ok else []
        where = {item: n for n, item in enumerate(ok)}
        for layer_no, info in enumerate(self.layers):
            column = map_column(info.shape[1:])
            for i, path in enumerate(paths):
                truth = truths[i]
                row: dict[str, Any] = {
                    "path": path, "uri": uris[i], "label": labels[i], "true_index": truth,
                    "true_name": cats[truth] if truth is not None else None,
                    "model": self.loaded.name, "layer": info.name, "method": self.method,
                    "map_column": column, "error": decoded[i][1],
                }  # fmt: skip
                if i in where:
                    row.update(self._row(results[layer_no], where[i], truth, column))
                else:
                    row.update(dict(zip(STAT_COLUMNS, astuple(_NO_STATS), strict=True)))
                rows.append(row)
        return pa.Table.from_pylist(rows, schema=self.schema)

    def _explain(self, images: list[Any]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]]:
        """Per layer: the maps [n, h, w], predicted classes [n], probabilities [n, C] and warnings."""
        x = torch.stack([self.loaded.preprocess(image) for image in images]).to(model_device(self.loaded.model))
        out = []
        for info in self.layers:
            result = compute_cam(self.loaded.model, x, info, method=self.method, batch_size=len(images))
            out.append(
                (
                    result.maps[:, 0].numpy(),
                    result.classes[:, 0].numpy(),
                    result.probabilities.numpy(),
                    result.warnings,
                )
            )
        return out

    def _row(
        self, result: tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]], n: int, truth: int | None, column: str
    ) -> dict[str, Any]:
        maps, classes, probabilities, warnings = result
        p = probabilities[n]
        pred = int(p.argmax())
        order = np.argsort(-p, kind="stable")[: self.top]
        heat = maps[n].astype(np.float32)
        stats = map_stats(heat)
        blank = float(heat.max()) <= 0
        return {
            "pred_index": pred,
            "pred_name": self.loaded.categories[pred],
            "correct": None if truth is None else pred == truth,
            "true_prob": None if truth is None else float(p[truth]),
            "pred_prob": float(p[pred]),
            "top5_index": [int(c) for c in order],
            "top5_prob": [float(p[c]) for c in order],
            "map_class": int(classes[n]),
            column: heat.reshape(-1).tolist(),
            **dict(zip(STAT_COLUMNS, astuple(stats), strict=True)),
            "warning": ("; ".join(warnings) or "the map is zero everywhere") if blank else None,
        }

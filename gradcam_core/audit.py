"""Audit a labelled dataset: every image explained, one Parquet file of predictions, maps and map statistics.

    path = audit("val/", model="efficientnet_lite0", out="val.parquet")            # this machine
    path = audit("val/", model="efficientnet_lite0", out="val.parquet", ray="auto")  # a Ray cluster
    found = read_audit(path)        # found.frame: a DataFrame; found.maps: [N, h, w] float32

Both runs call the same batch function (:class:`gradcam_core.auditor.Auditor`); only who calls it
differs. The local run imports no Ray. Results are written batch by batch into ``OUT.parts/`` and
merged into ``OUT`` at the end, so an interrupted run continues with ``resume=True``: rows already
written are kept and not computed again, and no row is written twice.

**The file.** One row per image, model, layer and method, sorted by path and layer:

- ``path`` (within the dataset), ``uri`` (where the image was read: a file, or ``zip:ARCHIVE!MEMBER``),
  ``label`` (as the dataset gives it), ``true_index`` and ``true_name`` (``null`` when the label matches
  no class), ``pred_index``, ``pred_name``, ``pred_prob``,
  ``correct``, ``true_prob``, ``top5_index`` and ``top5_prob`` (fixed-size lists);
- ``map_class`` (the class the map explains: the prediction), ``map_column`` (the column holding the
  row's map), and the map itself in ``map_HxW``, an ``arrow.fixed_shape_tensor(float32, [H, W])``
  column per map shape (the raw map at the layer, not normalised);
- the map's statistics (:mod:`gradcam_core.mapstats`): ``peak_x``, ``peak_y``, ``peak_offcentre``,
  ``hot_mass``, ``border_mass``, ``entropy``;
- ``model``, ``layer``, ``method``, ``warning`` (a map that is zero everywhere says why) and ``error``
  (an image that could not be read keeps its row, with the reason here and nulls elsewhere).

The schema's metadata key ``gradcam_audit`` holds a JSON provenance record: the schema name
(:data:`SCHEMA`), versions, the model (weights path and SHA-256, preprocessing, input size), the
layers, the method, the source, the command line, the run (Ray or not, actors, batch size), the
dataset's problems and unknown labels, and the definitions behind the statistics.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from importlib.metadata import PackageNotFoundError
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gradcam_core.auditor import Auditor
from gradcam_core.datasets import Item, read_dataset
from gradcam_core.mapstats import BORDER_BAND, HOT_SHARE
from gradcam_core.modelref import ModelRef
from gradcam_core.provenance import model_record, stamp

__all__ = ["META_KEY", "SCHEMA", "AuditError", "AuditFile", "audit", "finish", "read_audit", "read_meta", "run_batches"]

SCHEMA = "gradcam-explorer/audit/1"
META_KEY = b"gradcam_audit"
_KEY = ("path", "model", "layer", "method")
_log = logging.getLogger(__name__)


class AuditError(ValueError):
    """The audit cannot start or continue (the message says what to do)."""


@dataclass(frozen=True)
class AuditFile:
    """An audit read back.

    Attributes:
        frame: one row per image, model, layer and method, without the map columns.
        maps: [N, h, w] float32, row for row with ``frame`` (NaN where a row has no map).
        meta: the provenance record from the schema's metadata.
    """

    frame: Any  # pandas.DataFrame (pandas is imported only when an audit is read)
    maps: np.ndarray
    meta: dict[str, Any]


def _batches(items: Sequence[Item], size: int) -> Iterator[dict[str, list[Any]]]:
    for start in range(0, len(items), size):
        rows = [i.row() for i in items[start : start + size]]
        yield {k: [r[k] for r in rows] for k in ("path", "uri", "label", "index")}


def run_batches(auditor: Auditor, items: Sequence[Item], batch_size: int, progress: bool = True) -> Iterator[pa.Table]:
    """The local run: the auditor over ``items``, one table per batch, with a tqdm bar on stderr."""
    from tqdm import tqdm

    with tqdm(total=len(items), unit="img", disable=not progress, file=sys.stderr, desc="audit") as bar:
        for batch in _batches(items, batch_size):
            yield auditor(batch)
            bar.update(len(batch["path"]))


def finish(table: pa.Table) -> pa.Table:
    """Turn the auditor's map columns (fixed-size lists) into ``arrow.fixed_shape_tensor`` columns."""
    for name in table.column_names:
        if not name.startswith("map_") or name == "map_class" or name == "map_column":
            continue
        col = table.column(name).combine_chunks()
        if isinstance(col.type, pa.FixedShapeTensorType):
            continue
        h, w = (int(v) for v in name[4:].split("x"))
        tensor = pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(pa.float32(), [h, w]), col)
        table = table.set_column(table.column_names.index(name), name, tensor)
    return table


def _storage(table: pa.Table) -> pa.Table:
    """The inverse of :func:`finish`: tensor columns back to their storage, so tables concatenate."""
    for k, f in enumerate(table.schema):
        if isinstance(f.type, pa.FixedShapeTensorType):
            table = table.set_column(k, f.name, table.column(k).combine_chunks().storage)
    return table.replace_schema_metadata(None)


def _parts(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _done(out: Path) -> tuple[list[pa.Table], set[tuple[str, ...]]]:
    """The tables already written (the output and its parts) and their rows' keys."""
    tables = []
    if out.exists():
        tables.append(_storage(pq.read_table(out)))
    for part in sorted(_parts(out).glob("part-*.parquet")):
        tables.append(_storage(pq.read_table(part)))
    keys = {tuple(r) for t in tables for r in zip(*(t.column(k).to_pylist() for k in _KEY), strict=True)}
    return tables, keys


def _write_part(folder: Path, n: int, table: pa.Table, meta: Mapping[str, Any]) -> None:
    tmp = folder / f".part-{n:06d}.tmp"
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), tmp)
    tmp.replace(folder / f"part-{n:06d}.parquet")  # a killed run leaves whole parts only


def _merge(tables: list[pa.Table], meta: Mapping[str, Any]) -> pa.Table:
    """One table: the rows of ``tables`` without repeats (first kept), sorted by path and layer."""
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    keys = list(zip(*(table.column(k).to_pylist() for k in _KEY), strict=True))
    first: dict[tuple[str, ...], int] = {}
    for n, key in enumerate(keys):
        first.setdefault(key, n)
    table = table.take(sorted(first.values()))
    table = table.sort_by([("path", "ascending"), ("layer", "ascending"), ("model", "ascending")])
    return finish(table).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def audit(
    source: str | Path,
    *,
    model: str | ModelRef,
    out: str | Path,
    layers: Sequence[str] | None = None,
    method: str = "gradcam",
    batch_size: int = 16,
    limit: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    labels_map: Mapping[str, str] | None = None,
    ray: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 1,
    gpus_per_actor: float = 0,
    progress: bool = True,
    note: Callable[[str], None] | None = None,
    command: Sequence[str] | None = None,
) -> Path:
    """Explain every image of a labelled dataset and write one Parquet file; returns its path.

    Args:
        source: an ImageFolder, a CSV of ``path,label``, or a ZIP of either
            (:func:`gradcam_core.datasets.read_dataset`).
        model: a registered model's name, a TorchScript file, or a :class:`ModelRef`.
        out: the Parquet file to write (its batches go to ``OUT.parts/`` until the end).
        layers: the layers to explain at (default: the model's default layer).
        method: a key of :data:`gradcam_core.METHODS`.
        batch_size: images per batch (8–16 is fastest on a CPU).
        limit: audit only the first ``limit`` items (sorted by path).
        resume: continue an interrupted run into ``out``: rows already written are kept.
        overwrite: start again, replacing ``out`` and any parts left.
        labels_map: labels to class names or indices (see :func:`gradcam_core.datasets.match_labels`).
        ray: ``None`` to run here, or ``"local"``, ``"auto"`` or a cluster's address to run on Ray
            (:func:`gradcam_core.audit_ray.run_on_ray`).
        actors: Ray actors (one model each); default: as many as the cluster's CPUs or GPUs allow.
        cpus_per_actor: CPUs each Ray actor reserves (and its torch threads).
        gpus_per_actor: GPUs each Ray actor reserves (then its model runs on CUDA).
        progress: show a progress bar (tqdm here, Ray Data's own on Ray).
        note: called with each plain-language note on the dataset (unknown labels, files left out);
            by default they are logged as warnings. They are kept in the file's provenance either way.
        command: the command line, for the provenance record.

    Raises:
        AuditError: when ``out`` exists and neither ``resume`` nor ``overwrite`` is given, or when the
            run to resume was made with another model, weights, method or layers.
        gradcam_core.datasets.DatasetError: when the dataset cannot be listed.
    """
    ref = model if isinstance(model, ModelRef) else ModelRef(model)
    ref = ref.resolved()  # its files named absolutely: a Ray actor loads them from another folder
    out = Path(out)
    parts = _parts(out)
    if overwrite:
        out.unlink(missing_ok=True)
        shutil.rmtree(parts, ignore_errors=True)
    elif not resume and (out.exists() or parts.exists()):
        raise AuditError(f"'{out}' already exists: pass --resume to continue it, or --overwrite to start again")
    loaded = ref.load("cpu" if ray else "auto")
    auditor = Auditor(loaded, layers, method)  # checks the layers here, before any work is sent out
    dataset = read_dataset(source, loaded.categories, labels_map)
    for line in dataset.problems:
        (note or _log.warning)(line)
    items = dataset.items[:limit] if limit is not None else dataset.items
    meta = {
        **stamp(SCHEMA),
        "model": {
            **model_record(loaded), "source": ref.model, "classes": len(loaded.categories),
            "resize": loaded.resize,  # with input_size: the part of each image the map covers
        },
        "layers": [i.name for i in auditor.layers], "method": method,
        "source": str(source), "items": len(items), "command": list(command or sys.argv),
        "problems": dataset.problems, "unknown_labels": dataset.unknown_labels,
        "statistics": {"border_band": BORDER_BAND, "hot_share": HOT_SHARE, "map_class": "the prediction"},
        "run": {"ray": ray, "actors": actors, "batch_size": batch_size, "limit": limit, "resumed": resume},
    }  # fmt: skip
    meta["versions"]["pyarrow"] = pa.__version__
    if ray is not None:
        with contextlib.suppress(PackageNotFoundError):
            meta["versions"]["ray"] = metadata.version("ray")
    if resume:  # the output and the first part left, if any, must come from the same model and method
        for made in [out, *sorted(parts.glob("part-*.parquet"))[:1]]:
            if made.exists():
                _check_same_run(made, meta)
    tables, keys = _done(out) if resume else ([], set())
    names = [i.name for i in auditor.layers]
    pending = [i for i in items if any((i.path, loaded.name, layer, method) not in keys for layer in names)]
    if resume:
        (note or _log.warning)(f"resuming: {len(keys)} row(s) already written; {len(pending)} image(s) to go")
    parts.mkdir(parents=True, exist_ok=True)
    n = max((int(p.stem.split("-")[1]) for p in parts.glob("part-*.parquet")), default=-1) + 1
    if ray is None:
        produced = run_batches(auditor, pending, batch_size, progress)
    else:
        from gradcam_core.audit_ray import run_on_ray

        produced = run_on_ray(
            ref, [i.name for i in auditor.layers], method, pending, batch_size=batch_size, address=ray,
            actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor, progress=progress,
        )  # fmt: skip
    for table in produced:
        _write_part(parts, n, table, meta)
        tables.append(table)
        n += 1
    if not tables:
        tables.append(auditor.schema.empty_table())
    merged = _merge(tables, meta)
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(merged, tmp)
    tmp.replace(out)
    shutil.rmtree(parts, ignore_errors=True)
    return out


def _check_same_run(made: Path, meta: Mapping[str, Any]) -> None:
    """Refuse to resume a file (the output or a part) made with another model, weights or method."""
    old = _meta(pq.read_schema(made))
    for field in ("weights_sha256", "name", "preprocess"):
        if old.get("model", {}).get(field) != meta["model"][field]:
            raise AuditError(f"'{made}' was made with another model ({field} differs): write to another file")
    if old.get("method") != meta["method"]:
        raise AuditError(f"'{made}' was made with method {old.get('method')}: resume with that, or write elsewhere")
    if old.get("layers") != meta["layers"]:
        raise AuditError(
            f"'{made}' was made at layers {', '.join(old.get('layers') or [])}: resume with those, or write elsewhere"
        )


def _meta(schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise AuditError("this Parquet file is not an audit (it has no gradcam_audit metadata): make one with `audit`")
    loaded: dict[str, Any] = json.loads(raw)
    return loaded


def read_meta(source: str | Path | bytes) -> dict[str, Any]:
    """An audit's provenance record alone, from its schema (no rows are read).

    Raises:
        AuditError: for a file that is not an audit.
    """
    try:
        schema = pq.read_schema(pa.BufferReader(source) if isinstance(source, bytes) else source)
    except pa.ArrowInvalid as exc:
        raise AuditError(f"this is not a Parquet file ({exc}): open the .parquet file that `audit` wrote") from None
    return _meta(schema)


def read_audit(source: str | Path | bytes, layer: str | None = None) -> AuditFile:
    """Read an audit: its rows as a DataFrame, their maps as one [N, h, w] array, and its provenance.

    Args:
        source: the Parquet file, or its bytes.
        layer: keep only this layer's rows; needed when the file holds more than one layer.

    Raises:
        AuditError: for a file that is not an audit, or one of several layers and no ``layer``.
    """
    meta = read_meta(source)
    table = pq.read_table(pa.BufferReader(source) if isinstance(source, bytes) else source)
    if layer is not None:
        table = table.filter(pc.equal(table.column("layer"), layer))
    elif len(present := sorted(set(table.column("layer").to_pylist()))) > 1:
        raise AuditError(f"this audit holds the maps of several layers: pick one of {', '.join(present)}")
    tensors = [f.name for f in table.schema if isinstance(f.type, pa.FixedShapeTensorType)]
    used = sorted(set(table.column("map_column").to_pylist()))
    frame = table.drop_columns(tensors).to_pandas()
    if not used:
        return AuditFile(frame, np.zeros((0, 0, 0), np.float32), meta)
    col = table.column(used[0]).combine_chunks()
    shape = tuple(col.type.shape)
    flat = col.storage.flatten().to_numpy(zero_copy_only=False)
    maps = np.full((len(col), *shape), np.nan, np.float32)
    valid = col.storage.is_valid().to_numpy(zero_copy_only=False)
    maps[valid] = flat.reshape(-1, *shape)
    return AuditFile(frame, maps, meta)

"""An audit file on the Misclassifications page: open it, summarise it, and look at any row's stored map.

An audit (:mod:`gradcam_core.audit`, made by ``gradcam-explorer audit``) holds every row's prediction
and raw map, so nothing here runs a model: the maps are drawn from the file. "Open in Explain" and
"Open in Crop & compare" hand the image to those pages, which run the model live.

Audit files come from an upload, or from a folder on the server: set ``GRADCAM_AUDIT_DIR`` (or
``audit_dir`` in ``.streamlit/secrets.toml``) and its ``*.parquet`` files are listed.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import pyarrow as pa
import streamlit as st
from PIL import Image
from streamlit.runtime.uploaded_file_manager import UploadedFile

from gradcam_core import ImageError, heatmap_to_rgb, list_models, load_image, overlay, paste_map
from gradcam_core.audit import SCHEMA, AuditError, AuditFile, read_audit, read_meta
from gradcam_core.audit_tables import OTHER, SHORTCUT_SCORE, class_accuracy, confusion, named, shortcut_ranking
from gradcam_core.datasets import read_bytes
from gradcam_core.regions import input_region
from ui import batch, images, server, state, views
from ui.models import cached_model
from ui.text import plain_text

AUDIT_DIR_ENV = "GRADCAM_AUDIT_DIR"
#: "off" stops uploaded audits from showing images from this server's disk (their ``uri`` column names them).
UPLOAD_IMAGES_ENV = "GRADCAM_AUDIT_UPLOAD_IMAGES"
MAX_AUDIT_MB = 500
THUMB, GALLERY = 72, 240  # pixels a side: the table's thumbnails, the shortcut gallery's
UPLOAD, SERVER = "Upload an audit file", "From the server's audit folder"
#: The statistics a table can be sorted by, with what each means.
STATISTICS = {
    "border_mass": "share of the map in the image's border band (shortcut score)",
    "peak_offcentre": "how far the map's peak is from the centre (0 centre, 1 corner)",
    "hot_mass": "share of the map in its 10 % hottest cells (how focused)",
    "entropy": "spread of the map (0 one cell, 1 even)",
    "true_prob": "the true class's probability",
    "pred_prob": "the prediction's probability",
}
_SHOWN = ["thumbnail", "path", "true_name", "pred_name", "correct", "pred_prob", "true_prob", *list(STATISTICS)[:4]]


@dataclass(frozen=True)
class Opened:
    """An audit opened in this session.

    Its name, a digest naming this version of the file, its contents (one layer), and whether it was uploaded rather
    than listed from the server's folder.
    """

    name: str
    digest: str
    found: AuditFile
    uploaded: bool

    @property
    def layer(self) -> str:
        """The layer whose maps are open."""
        return str(self.found.frame["layer"].iloc[0]) if len(self.found.frame) else ""


def audit_folder() -> Path | None:
    """The server folder whose audit files the page lists, if one is set."""
    value = os.environ.get(AUDIT_DIR_ENV)
    if not value:
        value = server.secrets().get("audit_dir")
    return Path(str(value)).expanduser() if value else None


def _raw(source: Path | UploadedFile) -> Path | bytes:
    return source if isinstance(source, Path) else source.getvalue()


# Shared, not copied per rerun (an audit of 50,000 images is tens of MB): the pages only read it.
@st.cache_resource(max_entries=8, show_spinner=False)
def _meta(key: str, _source: Path | UploadedFile) -> dict[str, Any]:
    return read_meta(_raw(_source))


@st.cache_resource(max_entries=4, show_spinner="Reading the audit…")
def _read(key: str, _source: Path | UploadedFile, layer: str | None) -> AuditFile:
    return read_audit(_raw(_source), layer)


def choose() -> Opened | None:
    """The source, file and layer pickers; the audit they name, or None (with a message why)."""
    folder = audit_folder()
    sources = [UPLOAD, SERVER] if folder is not None else [UPLOAD]
    origin = st.radio("Audit from", sources, key=state.W_AUDIT_SOURCE, horizontal=True) if folder else UPLOAD
    source: Path | UploadedFile
    if origin == SERVER and folder is not None:
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not files:
            st.info(f"No audit files (*.parquet) in the server's audit folder {plain_text(str(folder))}.")
            return None
        chosen = st.selectbox("Audit file", files, key=state.W_AUDIT_FILE, format_func=lambda p: p.name)
        try:
            stat = chosen.stat()
        except OSError as exc:
            st.error(f"{plain_text(chosen.name)} cannot be read on the server ({exc.strerror}): pick another.")
            return None
        # Read again only when the file changes: not on every rerun (an opacity change, a row picked).
        name, key, source = chosen.name, f"{chosen.resolve()}:{stat.st_mtime_ns}:{stat.st_size}", chosen
    else:
        up = st.file_uploader(
            "Audit file (.parquet, from `gradcam-explorer audit`)",
            type=["parquet"],
            key=state.W_AUDIT_UPLOAD,
            max_upload_size=MAX_AUDIT_MB,
        )
        if up is None:
            st.caption(
                "Make one with `gradcam-explorer audit DATA --model efficientnet_lite0 --out audit.parquet` "
                "(see the README's “Auditing a dataset”)."
            )
            return None
        name, key, source = up.name, f"upload:{up.file_id}", up
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    try:
        meta = _meta(key, source)
        if not str(meta.get("schema", "")).startswith(SCHEMA.rsplit("/", 1)[0]):
            raise AuditError(f"its schema is {meta.get('schema')!r}, not an audit's ({SCHEMA})")
        layers = list(meta.get("layers") or [])
        layer = st.selectbox("Layer", layers, key=f"{state.W_AUDIT_LAYER}.{name}") if len(layers) > 1 else None
        found = _read(key, source, layer)
        missing = {"path", "uri", "layer", "error", "correct", "border_mass"} - set(found.frame.columns)
        if missing:
            raise AuditError(f"it lacks the column(s) {', '.join(sorted(missing))}: make it again with `audit`")
    except (AuditError, ValueError, KeyError, TypeError, OSError, pa.ArrowException) as exc:
        st.error(f"{plain_text(name)} cannot be opened: {plain_text(str(exc))}")
        return None
    return Opened(name, digest, found, uploaded=isinstance(source, UploadedFile))


def summary(opened: Opened) -> None:
    """Accuracy, what could not be read, and the provenance record."""
    frame, meta = opened.found.frame, opened.found.meta
    scored = frame[frame["correct"].notna()]
    cols = st.columns(4)
    cols[0].metric("Images", f"{len(frame):,}")
    cols[1].metric("Top-1 accuracy", f"{scored['correct'].astype(bool).mean():.1%}" if len(scored) else "–")
    cols[2].metric("Could not be read", f"{int(frame['error'].notna().sum()):,}")
    cols[3].metric("No known class", f"{int((frame['true_index'].isna() & frame['error'].isna()).sum()):,}")
    model = meta.get("model", {})
    st.caption(
        f"{plain_text(str(model.get('name', '?')))} · layer {plain_text(opened.layer)} · "
        f"{plain_text(str(meta.get('method', '?')))} · made {plain_text(str(meta.get('created', '?')))}"
    )
    for line in meta.get("problems", []):
        st.warning(plain_text(str(line)))
    with st.expander("Provenance"):
        st.json(meta, expanded=False)


def accuracy_table(opened: Opened) -> None:
    """Per-class accuracy, worst first."""
    table = class_accuracy(opened.found.frame)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(table), 320),
        column_config={"accuracy": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)},
    )


def confusion_chart(opened: Opened) -> tuple[tuple[str, str] | None, set[str]]:
    """The confusion matrix; the cell (true, predicted) clicked or picked, and the classes it names.

    Classes left out of the matrix are counted under :data:`OTHER`.
    """
    frame = opened.found.frame
    n_classes = len(set(frame["true_name"].dropna()) | set(frame["pred_name"].dropna()))
    most = 20
    if n_classes > 20:
        most = st.slider("Classes in the matrix (those with most errors)", 5, min(60, n_classes), 20)
    cells = confusion(frame, most)
    if cells.empty:
        st.info("No row has both a prediction and a known true class, so there is no confusion matrix.")
        return None, set()
    pick = alt.selection_point(name="cell", fields=["true_name", "pred_name"], on="click", clear="dblclick")
    order = sorted(set(cells["true_name"]) | set(cells["pred_name"]), key=lambda c: (c == OTHER, c))
    base = alt.Chart(cells).encode(
        # Every class named (Vega hides labels that would overlap, which a matrix cannot spare).
        x=alt.X("pred_name:N", title="predicted", sort=order, axis=alt.Axis(labelAngle=-60, labelOverlap=False)),
        y=alt.Y("true_name:N", title="true", sort=order, axis=alt.Axis(labelOverlap=False)),
    )
    rects = base.mark_rect().encode(
        color=alt.Color("count:Q", scale=alt.Scale(scheme="oranges"), legend=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)),
        tooltip=["true_name", "pred_name", "count"],
    )
    text = base.mark_text(fontSize=11).encode(text="count:Q")
    side = max(260, 28 * len(order))
    event = st.altair_chart(
        alt.layer(rects.add_params(pick), text).properties(width=side, height=side),
        on_select="rerun",
        selection_mode="cell",
        key=state.W_AUDIT_CHART,
    )
    clicked = (event.get("selection", {}).get("cell") or [None])[0] if event else None
    labels = ["every cell"] + [
        f"{r.true_name} → {r.pred_name} ({r.count})"
        for r in cells.sort_values("count", ascending=False).itertuples()
        if r.true_name != r.pred_name
    ]
    typed = st.selectbox(
        "Or pick a cell (true → predicted)", labels, key=state.W_AUDIT_CELL, help="Wrong cells, most frequent first."
    )
    kept = set(order) - {OTHER}
    if clicked:
        return (str(clicked["true_name"]), str(clicked["pred_name"])), kept
    if typed != labels[0]:
        true_name, _, rest = typed.partition(" → ")
        return (true_name, rest.rsplit(" (", 1)[0]), kept
    return None, kept


def in_cell(frame: pd.DataFrame, cell: tuple[str, str] | None, kept: set[str]) -> pd.Series:
    """Which rows fall in ``cell`` of the matrix (whose named classes are ``kept``)."""
    if cell is None:
        return pd.Series(True, index=frame.index)

    unique = named(frame)  # the matrix's names ("crane #134" where the model has two cranes)

    def matches(col: str, name: str) -> pd.Series:
        return ~unique[col].isin(kept) if name == OTHER else unique[col] == name

    scored = frame["correct"].notna() & frame["error"].isna()  # as the matrix counts them
    return scored & matches("true_name", cell[0]) & matches("pred_name", cell[1])


def hidden(opened: Opened) -> bool:
    """Whether this server keeps the images of ``opened`` to itself (an upload, with uploads' images off)."""
    return opened.uploaded and os.environ.get(UPLOAD_IMAGES_ENV, "on").strip().lower() in ("off", "0", "no", "false")


def image_of(opened: Opened, row: pd.Series) -> Image.Image | None:
    """The row's image, read from where the audit read it.

    None when it is not there any more, or when the audit was uploaded and this server does not show
    uploads' images (``GRADCAM_AUDIT_UPLOAD_IMAGES=off``: an upload's ``uri`` column can name any file).
    """
    if hidden(opened):
        return None
    try:
        return load_image(read_bytes(str(row["uri"])), max_side=images.MAX_SIDE)
    except (OSError, ImageError, KeyError, ValueError):
        return None


def drawn_map(found: AuditFile, k: int, image: Image.Image | None, alpha: float, cmap: str) -> Image.Image:
    """Row ``k``'s stored map over its image, where the model saw it; the map alone without the image."""
    heat = found.maps[k]
    if image is None:
        return Image.fromarray(heatmap_to_rgb(heat, (224, 224), cmap))
    model = found.meta.get("model", {})
    size = tuple(model.get("input_size") or (image.height, image.width))
    region = input_region(image.size, (int(size[0]), int(size[1])), model.get("resize"))
    return overlay(image, paste_map(heat, region, image.size), alpha=alpha, colormap=cmap)


@st.cache_data(max_entries=5000, show_spinner=False)
def _thumbnail(digest: str, layer: str, k: int, side: int, _opened: Opened) -> str:
    """Row ``k``'s map over its image, small, as a data URI (cached per audit, layer and row)."""
    found = _opened.found
    return batch.thumbnail(drawn_map(found, k, image_of(_opened, found.frame.loc[k]), 0.5, "jet"), side)


def row_table(opened: Opened, rows: pd.DataFrame, key: str) -> int | None:
    """``rows`` as a table with thumbnails of their maps; the position in ``frame`` of the row picked."""
    thumbs = [_thumbnail(opened.digest, opened.layer, int(k), THUMB, opened) for k in rows.index]
    shown = rows.assign(thumbnail=thumbs)[_SHOWN]
    picked = views.pick_row(
        shown,
        key,
        {
            "thumbnail": st.column_config.ImageColumn("map", width="small"),
            **{s: st.column_config.NumberColumn(format="%.3f", help=h) for s, h in STATISTICS.items()},
        },
    )
    return None if picked is None else int(rows.index[picked])


def sorted_rows(opened: Opened, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` sorted by the statistic picked, cut to the number of rows picked."""
    cols = st.columns([2, 1, 1])
    by = cols[0].selectbox(
        "Sort by", list(STATISTICS), key=state.W_AUDIT_SORT, format_func=lambda s: f"{s}: {STATISTICS[s]}"
    )
    descending = cols[1].toggle("Largest first", value=True, key=state.W_AUDIT_DESC)
    limit = cols[2].number_input("Rows shown", 10, 1000, 50, step=10, key=state.W_AUDIT_LIMIT)
    ordered = rows.sort_values(by, ascending=not descending, kind="stable", na_position="last")
    if len(ordered) > limit:
        st.caption(f"The first {int(limit)} of {len(ordered):,} rows (sorted by {by}).")
    return ordered.head(int(limit))


def shortcut_finder(opened: Opened) -> None:
    """The rows ranked by border mass, right and wrong alike (or right ones only), as a gallery of maps."""
    st.markdown(
        "Rows whose map lies most **outside the object's likely region** (in the image's border band, "
        "peak far from the centre) come first, right and wrong alike: the model may be right for the wrong reason."
    )
    correct_only = st.toggle("Only the correct ones (right for the wrong reason?)", key=state.W_AUDIT_RIGHT)
    ranked = shortcut_ranking(opened.found.frame, correct_only)
    found = opened.found
    cols = st.columns(6)
    for n, k in enumerate(ranked.index[:6]):
        row = found.frame.loc[k]
        verdict = "?" if pd.isna(row["correct"]) else ("right" if bool(row["correct"]) else "wrong")
        truth = "?" if pd.isna(row["true_name"]) else str(row["true_name"])
        cols[n].image(
            _thumbnail(opened.digest, opened.layer, int(k), GALLERY, opened),
            caption=plain_text(f"{truth} → {row['pred_name']} ({verdict}) · border {row[SHORTCUT_SCORE]:.2f}"),
            width="stretch",
        )


def row_detail(opened: Opened, k: int, alpha: float, cmap: str) -> None:
    """One row: its image, its stored map over it and alone, its figures, and the ways to re-run it live."""
    found = opened.found
    row = found.frame.loc[k]
    name = plain_text(str(row["path"]))
    if pd.notna(row["error"]):
        st.error(f"{name} could not be read when it was audited: {plain_text(str(row['error']))}")
        return
    image = image_of(opened, row)
    truth = "no known class" if pd.isna(row["true_name"]) else f"true: {row['true_name']}"
    cols = st.columns(3)
    if image is None:
        cols[0].info(
            "This server does not show the images of uploaded audits: only the map is shown."
            if hidden(opened)
            else f"{name} is no longer where it was audited ({plain_text(str(row['uri']))}): only its map is shown."
        )
    else:
        cols[0].image(image, caption=f"{name} ({truth})", width="stretch")
    cols[1].image(
        drawn_map(found, k, image, alpha, cmap),
        caption=f"stored map of “{row['pred_name']}” ({row['pred_prob']:.1%}) · no model run",
        width="stretch",
    )
    heat = found.maps[k]
    grid = heatmap_to_rgb(heat, (heat.shape[1] * 16, heat.shape[0] * 16), cmap, interpolation="nearest")
    cols[2].image(grid, caption=f"raw {heat.shape[0]}×{heat.shape[1]} map at {opened.layer}", width="stretch")
    figures = {s: float(row[s]) for s in STATISTICS if pd.notna(row[s])}
    st.caption(" · ".join(f"{s} {v:.3f}" for s, v in figures.items()))
    if pd.notna(row["warning"]):
        st.warning(plain_text(str(row["warning"])))
    model = str(found.meta.get("model", {}).get("name", ""))
    if image is None:
        return
    if model not in list_models():
        st.info(
            f"The audit's model ({plain_text(model)}) is not one of this app's models, so it cannot be re-run here."
        )
        return
    audited = found.meta.get("model", {})
    live = cached_model(model)
    if live.weights_sha256 != audited.get("weights_sha256") or repr(live.preprocess) != audited.get("preprocess"):
        st.warning(
            f"This app's {plain_text(model)} is not the audited one (other weights or preprocessing): "
            "a live run may not give the stored map."
        )
    go = st.columns(2)
    for col, (label, page) in zip(
        go,
        [("Open in Explain", "pages/1_Explain.py"), ("Open in Crop & compare", "pages/2_Crop_and_Compare.py")],
        strict=True,
    ):
        if col.button(label, key=f"{state.W_AUDIT_OPEN}.{page}"):
            _open_live(image, str(row["path"]), model, opened.layer, str(row["method"]))
            st.switch_page(page)


def _open_live(image: Image.Image, path: str, model: str, layer: str, method: str) -> None:
    """Hand the row to the live pages: its image, and the audit's model, layer and method as the choices."""
    buf = io.BytesIO()
    image.save(buf, "PNG")
    images.add(images.decode(Path(path).name, buf.getvalue()))
    state.remember(state.W_MODEL, model)
    state.remember(f"{state.W_LAYER}.{model}", layer)
    state.remember(state.W_METHOD, method)


def workspace(alpha: float, cmap: str) -> None:
    """The whole audit view: pick a file, then its summary, matrix, shortcut finder and rows."""
    opened = choose()
    if opened is None:
        return
    summary(opened)
    frame = opened.found.frame
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Confusion matrix")
        cell, kept = confusion_chart(opened)
    with right:
        st.subheader("Per-class accuracy")
        accuracy_table(opened)
    st.subheader("Shortcut finder")
    shortcut_finder(opened)
    chosen = frame[in_cell(frame, cell, kept)]
    st.subheader("Rows" if cell is None else f"Rows in {plain_text(cell[0])} → {plain_text(cell[1])}")
    if chosen.empty:
        st.info("No rows in this cell.")
        return
    picked = row_table(opened, sorted_rows(opened, chosen), f"{state.W_AUDIT_TABLE}.{opened.digest}")
    if picked is None:
        st.caption("Select a row to see its stored map.")
        return
    row_detail(opened, picked, alpha, cmap)

"""Grids on Explain: every method at one layer, one method at every block, or the top classes, in one click.

Each cell is an explanation cached on its own arguments (:mod:`ui.compute`), so a grid shown
again, or a cell shared by two grids, runs nothing. The missing cells of a methods grid are
computed together: the gradient methods and Eigen-CAM share one forward and one backward pass
(:func:`gradcam_core.compute_cams`); Score-CAM, when asked for, adds its masked passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import streamlit as st

from gradcam_core import METHODS, Box, depth_layers
from gradcam_core.guided import can_guide
from gradcam_core.smoothing import TTA_SCALES
from ui import board, checks, compute, state, views, workspace
from ui.compute import Explanation, Settings
from ui.images import ImageEntry
from ui.models import cached_model, layers_of

#: The grids, by the name the page's picker shows.
GRIDS = {
    "none": "No grid",
    "methods": "Compare methods (every method at this layer)",
    "layers": "Compare layers (this method at every block, stem to head)",
    "classes": "Compare classes (the top 5)",
}


@dataclass(frozen=True)
class Cell:
    """One map of a grid: explanation ``exp``'s map ``k``, titled ``title``."""

    exp: Explanation
    k: int
    title: str

    @property
    def label(self) -> str:
        """What the map shows, for a pinned panel (Eigen-CAM's map shows no class)."""
        return METHODS[self.exp.settings.method].target_label(self.exp.categories[self.exp.classes[self.k]])


def cost(kind: str, settings: Settings, slow: bool) -> str:
    """What a grid costs to compute, in passes (cached cells cost nothing)."""
    views_per_map = 2 * len(TTA_SCALES) if "tta" in settings.smoothing else 1
    times = f", ×{views_per_map} for test-time augmentation" if views_per_map > 1 else ""
    if kind == "methods":
        extra = " Score-CAM adds one masked pass per channel." if slow else ""
        return (
            f"{len(_wanted(settings, kind, slow))} methods at `{settings.layer}` from one shared forward and backward "
            f"pass (Guided Grad-CAM adds a backward pass to the input){times}.{extra}"
        )
    if kind == "layers":
        return f"{len(_wanted(settings, kind, slow))} layers, from the stem to the head: one pass each{times}."
    return f"The top 5 classes from one forward pass, and one batched backward pass{times}."


def cells(entry: ImageEntry, settings: Settings, kind: str, cls: int, top: list[int], slow: bool) -> list[Cell]:
    """The grid's cells, computing the ones not cached yet (with a progress bar)."""
    if kind == "classes":
        exp = compute.explain(entry, settings, classes=tuple(top))
        return [Cell(exp, k, exp.categories[c]) for k, c in enumerate(exp.classes)]
    wanted = _wanted(settings, kind, slow)
    found: dict[Settings, Explanation] = {}
    for s in wanted:
        with contextlib.suppress(compute.NotCachedError):
            found[s] = compute.cached_only(entry, s, (cls,), None, None, False)
    missing = [s for s in wanted if s not in found]
    if missing:
        bar = st.progress(0.0, text=f"Computing {len(missing)} of {len(wanted)} maps…")
        try:
            _compute(entry, missing, cls, found, lambda d, note: _tick(bar, d, missing, note))
        except ValueError as exc:
            compute.engine_error(exc, missing[0])
        bar.empty()
    return [Cell(found[s], 0, _title(kind, s)) for s in wanted]


def _tick(bar: Any, done: int, missing: list[Settings], note: str) -> None:
    bar.progress(done / len(missing), text=f"Computed {done} of {len(missing)} maps" + (f" · {note}" if note else ""))


def _wanted(settings: Settings, kind: str, slow: bool) -> list[Settings]:
    if kind == "methods":
        eager = can_guide(cached_model(settings.model).model)
        return [
            replace(settings, method=m)
            for m, spec in METHODS.items()
            if (spec.kind != "score" or slow)  # Score-CAM only when asked: it costs a pass per channel
            and (spec.kind != "guided" or eager)
        ]
    infos = layers_of(settings.model)
    chosen = depth_layers(infos)
    if settings.layer not in {i.name for i in chosen}:
        chosen = [i for i in infos if i in chosen or i.name == settings.layer]
    return [replace(settings, layer=i.name) for i in chosen]


def _compute(
    entry: ImageEntry,
    missing: list[Settings],
    cls: int,
    found: dict[Settings, Explanation],
    tick: Callable[[int, str], None],
) -> None:
    """Fill ``found`` with the missing cells: one shared pass per layer for the methods, one call per layer else."""
    by_layer: dict[Settings, list[str]] = {}
    for s in missing:
        by_layer.setdefault(replace(s, method="gradcam"), []).append(s.method)
    done = 0

    def passes(n: int, total: int) -> None:  # Score-CAM's masked passes, when it is in the grid
        tick(done, f"Score-CAM: {n} of {total} masked passes")

    for base, methods in by_layer.items():
        made = compute.explanations(entry.image, base, tuple(methods), (cls,), progress=passes)
        for method, exp in made.items():
            s = replace(base, method=method)
            found[s] = compute.store(entry, s, (cls,), None, None, False, exp)
        done += len(methods)
        tick(done, "")


def _title(kind: str, s: Settings) -> str:
    return METHODS[s.method].label if kind == "methods" else f"{s.layer}"


def show(
    entry: ImageEntry, grid: list[Cell], kind: str, shared: bool, alpha: float, cmap: str, box: Box | None
) -> None:
    """The grid's overlays, four to a row, each with its scores against ``box``; pin buttons; a ranking table."""
    vmax = max(float(c.exp.maps[c.k].max()) for c in grid) if shared else None
    scored = [checks.scores(c.exp, c.k, box, entry.image.size) if box is not None else None for c in grid]
    row = st.columns(4)
    for i, (cell, found) in enumerate(zip(grid, scored, strict=True)):
        with row[i % 4]:
            h, w = cell.exp.maps[cell.k].shape
            p = cell.exp.probabilities[cell.exp.classes[cell.k]]
            caption = f"{cell.title} · {h}×{w} · p = {p:.1%}" + (f" · {found.describe()}" if found else "")
            st.image(views.overlay_full(entry.image, cell.exp, cell.k, alpha, cmap, vmax), caption=caption)
            for note in cell.exp.warnings:
                st.caption(f"⚠ {note}")
            if st.button("Pin", key=f"{state.W_GRID_PIN}.{kind}.{i}") and workspace.pin(_panel(entry, cell, None, box)):
                st.toast(f"Pinned {cell.title} to the board.")
    if box is not None:
        ranking = pd.DataFrame(
            {
                "map": [c.title for c in grid],
                "peak in box": [s.pointing if s else None for s in scored],
                "energy in box": [s.energy if s else None for s in scored],
                "× chance": [s.lift if s else None for s in scored],
            }
        ).sort_values("energy in box", ascending=False)
        st.markdown("**Ranked by the share of the map inside the object box**")
        st.dataframe(
            ranking,
            hide_index=True,
            column_config={
                "energy in box": st.column_config.NumberColumn(format="percent"),
                "× chance": st.column_config.NumberColumn(format="%.2f"),
            },
        )
    if st.button("Pin the grid to the board", key=f"{state.W_GRID_PIN}.{kind}", type="primary"):
        first = grid[0].exp.settings  # the grid's own id, so two grids pinned one after the other stay apart
        name = f"{GRIDS[kind].split(' (')[0]} · {entry.name} · {first.layer if kind != 'layers' else first.method}"
        name += f" · #{len(board.panels()) + 1}"
        if workspace.pin(*(_panel(entry, cell, name, box) for cell in grid)):
            st.toast(f"Pinned the grid ({len(grid)} maps) to the board as one panel.")


def _panel(entry: ImageEntry, cell: Cell, grid: str | None, box: Box | None) -> board.Panel:
    panel = board.make_panel(entry, cell.exp, cell.k, cell.label)
    found = None if box is None else checks.scores(cell.exp, cell.k, box, entry.image.size).record(box)
    return replace(panel, grid=grid, box_scores=found)

"""Labelled batches for the misclassification workspace: reading labels, running, summarising.

A batch keeps, per image, its file's bytes as uploaded (already compressed) and a small JPEG
thumbnail; the decoded image is rebuilt from those bytes only for the row being looked at. So a
500-image batch holds about the size of its files, not 500 decoded images.
"""

from __future__ import annotations

import base64
import csv
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import NoReturn

import pandas as pd
import streamlit as st
from PIL import Image

from gradcam_core import METHODS, ImageError
from gradcam_core.datasets import label_key
from ui import images, state
from ui.compute import Settings, explain
from ui.text import plain_text

#: Upload caps in MB: an image file (also inside a ZIP), and a ZIP archive.
MAX_IMAGE_MB, MAX_ZIP_MB = 50, 200
#: Most images and bytes a ZIP may expand to (a guard against zip bombs).
ZIP_MAX_FILES, ZIP_MAX_BYTES = 500, 500_000_000
#: Longest side of the thumbnails kept for the table.
THUMB_SIDE = 96


@dataclass
class Row:
    """One image of a batch and what the model made of it.

    Attributes:
        name: the file's path (inside its ZIP, if any).
        key: the image's content hash (:class:`ui.images.ImageEntry` key).
        truth: the true class index, if known.
        predicted: the model's top-1 class.
        confidence: its probability.
        data: the file's bytes, as uploaded: the image is decoded from them again when needed.
        thumbnail: a small JPEG as a data URI, for the table.
    """

    name: str
    key: str
    truth: int | None
    predicted: int = -1
    confidence: float = 0.0
    data: bytes = field(default=b"", repr=False)
    thumbnail: str = field(default="", repr=False)

    @property
    def correct(self) -> bool | None:
        """Whether the prediction matches the label (None without a label)."""
        return None if self.truth is None else self.truth == self.predicted

    def entry(self) -> images.ImageEntry:
        """The image, decoded again from its file's bytes."""
        return images.decode(PurePosixPath(self.name).name, self.data)


@dataclass
class BatchRun:
    """A batch, the settings it was run with, and the class names of the model that ran it.

    Attributes:
        settings: the model, layer and method of the run.
        categories: the class names of the run's model: rows' indices refer to these, whichever
            model the sidebar shows later.
        rows: the images read, in upload order, each once.
        bad: (file, reason) for each file that could not be used.
        duplicates: (file, the earlier file with the same content) for each repeated image.
        unlabelled: folders (``"name/"``) and files whose name gives no class of the model.
    """

    settings: Settings
    categories: tuple[str, ...] = ()
    rows: list[Row] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)

    def held_bytes(self) -> int:
        """The bytes the batch keeps: file bytes and thumbnails."""
        return sum(len(r.data) + len(r.thumbnail) for r in self.rows)

    def summary(self) -> str:
        """The headline: images, labelled, wrong, and the accuracy over the labelled images only."""
        labelled = [r for r in self.rows if r.truth is not None]
        wrong = sum(not r.correct for r in labelled)
        accuracy = f"{1 - wrong / len(labelled):.1%}" if labelled else "n/a"
        return f"{len(self.rows)} images · {len(labelled)} labelled · {wrong} wrong · accuracy {accuracy}"

    def notices(self, current: Settings, model_label: str) -> list[tuple[str, str]]:
        """What the page says about the run, as (``"error"`` | ``"info"`` | ``"warning"``, message) pairs.

        Files skipped and why, repeated images, unlabelled places (with how to label them), and
        whether the sidebar's ``current`` settings differ from the run's. ``model_label`` names the
        run's model.
        """
        out = [("error", f"Skipped **{plain_text(name)}**: {reason}") for name, reason in self.bad]
        if self.duplicates:
            same = ", ".join(f"{plain_text(a)} (= {plain_text(b)})" for a, b in self.duplicates[:10])
            more = f" and {len(self.duplicates) - 10} more" if len(self.duplicates) > 10 else ""
            out.append(("info", f"{len(self.duplicates)} repeated image(s) read once: {same}{more}."))
        if self.unlabelled:
            places = ", ".join(f"`{plain_text(p)}`" for p in self.unlabelled[:10])
            more = f" and {len(self.unlabelled) - 10} more" if len(self.unlabelled) > 10 else ""
            first = self.categories[0]
            out.append((
                "warning",
                f"No class of {model_label} is named by these folders or files, so their images are unlabelled: "
                f"{places}{more}. Name each folder or file after a class (as `{first}/01.png` or `{first}_01.png`), "
                "add them to a labels CSV, or set a label per image below.",
            ))  # fmt: skip
        if self.settings != current:
            done = self.settings
            out.append((
                "info",
                f"These results are from {model_label} · {done.layer} · {done.method}, with its classes. "
                "Run the batch again to update them.",
            ))  # fmt: skip
        return out

    def shown(self, only_wrong: bool) -> list[Row]:
        """The rows the table lists: all, or only the labelled ones the model got wrong."""
        return [r for r in self.rows if not only_wrong or r.correct is False]

    def table(self, rows: list[Row]) -> pd.DataFrame:
        """``rows`` as the page's table: thumbnail, file, true label, prediction, confidence, correct."""
        cats = self.categories
        return pd.DataFrame(
            {
                "thumbnail": [r.thumbnail for r in rows],
                "image": [r.name for r in rows],
                "true label": [cats[r.truth] if r.truth is not None else "" for r in rows],
                "predicted": [cats[r.predicted] for r in rows],
                "confidence": [r.confidence for r in rows],
                "correct": [r.correct for r in rows],
            }
        )


def explained_classes(row: Row) -> tuple[int, ...]:
    """The classes a row is explained for: the prediction, then the true class when it differs."""
    return (row.predicted,) if row.truth in (None, row.predicted) else (row.predicted, row.truth)


def match_label(text: str, categories: list[str]) -> int | None:
    """The class whose name matches ``text`` (case, spaces, '_' and '-' ignored), if any."""
    wanted = label_key(text)
    for i, name in enumerate(categories):
        if label_key(name) == wanted:
            return i
    return None


def label_from_path(path: str, categories: list[str]) -> int | None:
    """The label in a path: its folder (``circle/03.png``) or its name (``circle_03.png``)."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if len(parts) > 1 and (found := match_label(parts[-2], categories)) is not None:
        return found
    stem = PurePosixPath(parts[-1]).stem if parts else ""
    return match_label(re.sub(r"[\s_\-]*\d+$", "", stem), categories)


def labels_from_csv(data: bytes, categories: list[str]) -> tuple[dict[str, int], list[str]]:
    """``filename,label`` rows (a header is optional) -> labels by file name, plus problems found."""
    labels, problems = {}, []
    text = data.decode("utf-8-sig", errors="replace")
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if len(row) < 2 or (n == 1 and row[1].strip().lower() in ("label", "class", "true")):
            continue
        name, value = row[0].strip(), row[1].strip()
        found = match_label(value, categories)
        if found is None:
            problems.append(f"line {n}: '{value}' is not a class of this model")
        else:
            labels[PurePosixPath(name).name] = found
    return labels, problems


def _too_big(size: int, limit_mb: int) -> bool:
    return size > limit_mb * 1_000_000


def expand(files: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """Unpack ZIP archives (keeping their folder paths); return (images, bad files with reasons).

    An image over :data:`MAX_IMAGE_MB` or a ZIP over :data:`MAX_ZIP_MB` is refused with the reason.
    """
    out, bad = [], []
    for name, data in files:
        if not name.lower().endswith(".zip"):
            if _too_big(len(data), MAX_IMAGE_MB):
                bad.append((name, f"the file is over the {MAX_IMAGE_MB} MB limit for an image"))
            else:
                out.append((name, data))
            continue
        if _too_big(len(data), MAX_ZIP_MB):
            bad.append((name, f"the archive is over the {MAX_ZIP_MB} MB limit for a ZIP: split it"))
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX")]
                if len(members) > ZIP_MAX_FILES or sum(m.file_size for m in members) > ZIP_MAX_BYTES:
                    bad.append((name, f"the archive holds more than {ZIP_MAX_FILES} files or 500 MB"))
                    continue
                for m in members:
                    if _too_big(m.file_size, MAX_IMAGE_MB):
                        bad.append((m.filename, f"the file is over the {MAX_IMAGE_MB} MB limit for an image"))
                    else:
                        out.append((m.filename, archive.read(m)))
        except zipfile.BadZipFile:
            bad.append((name, "not a readable ZIP archive"))
    return out, bad


def thumbnail(image: Image.Image, side: int = THUMB_SIDE) -> str:
    """A small JPEG of ``image`` as a data URI."""
    small = image.copy()
    small.thumbnail((side, side))
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def unlabelled_places(names: list[str]) -> list[str]:
    """Where labels are missing: each folder once (as ``"folder/"``), and each loose file."""
    places: list[str] = []
    for name in names:
        parent = str(PurePosixPath(name.replace("\\", "/")).parent)
        place = name if parent == "." else f"{parent}/"
        if place not in places:
            places.append(place)
    return places


def run(
    files: list[tuple[str, bytes]],
    csv_labels: dict[str, int],
    categories: list[str],
    settings: Settings,
    progress: Callable[[int, int, str], None],
) -> BatchRun:
    """Decode, label and classify every file, reporting progress; bad files are listed, not fatal.

    An image whose content was already read (the same file twice, or in two archives) is read
    once and listed in ``duplicates``.
    """
    # Classifying needs one forward pass: Score-CAM's masked passes wait until a row is opened.
    slow = METHODS[settings.method].kind == "score"
    classify_with = Settings(settings.model, settings.layer, "gradcam") if slow else settings
    batch = BatchRun(settings, tuple(categories))
    files, batch.bad = expand(files)
    seen: dict[str, str] = {}
    missing: list[str] = []
    for i, (name, data) in enumerate(files):
        progress(i, len(files), name)
        try:
            entry = images.decode(PurePosixPath(name).name, data)
        except ImageError as exc:
            batch.bad.append((name, str(exc)))
            continue
        if entry.key in seen:
            batch.duplicates.append((name, seen[entry.key]))
            continue
        seen[entry.key] = name
        truth = csv_labels.get(PurePosixPath(name).name, label_from_path(name, categories))
        if truth is None:
            missing.append(name)
        exp = explain(entry, classify_with)
        top = exp.classes[0]
        batch.rows.append(Row(name, entry.key, truth, top, float(exp.probabilities[top]), data, thumbnail(entry.image)))
    batch.unlabelled = unlabelled_places(missing)
    progress(len(files), len(files), "")
    return batch


def run_in_page(
    files: list[tuple[str, bytes]], labels_csv: bytes | None, categories: list[str], settings: Settings
) -> NoReturn:
    """:func:`run` on a page: the labels CSV's problems, a progress bar and Cancel; then it keeps the run and reruns.

    Cancel reruns the page, which stops the run between two images.
    """
    csv_labels, problems = ({}, []) if labels_csv is None else labels_from_csv(labels_csv, categories)
    for problem in problems:
        st.warning(f"Labels CSV {plain_text(problem)}")
    bar = st.progress(0.0, text="Starting…")
    st.button("Cancel", key=state.W_SLOW_CANCEL)

    def report(done: int, total: int, name: str) -> None:
        bar.progress(done / max(total, 1), text=f"{done} of {total} images" + (f": {name}" if name else ""))

    st.session_state[state.BATCH] = run(files, csv_labels, categories, settings, report)
    st.session_state[state.BATCH_VIEW] = None
    # A fresh uploader: the batch keeps its files' bytes, so the uploader's copy is dropped.
    st.session_state[state.BATCH_ROUND] = st.session_state.get(state.BATCH_ROUND, 0) + 1
    bar.empty()
    st.rerun()

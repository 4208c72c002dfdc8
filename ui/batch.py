"""Labelled batches for the misclassification workspace: reading labels, running, summarising."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from gradcam_core import ImageError
from ui import images
from ui.compute import explain

#: Most images and bytes a ZIP may expand to (a guard against zip bombs).
ZIP_MAX_FILES, ZIP_MAX_BYTES = 500, 500_000_000


@dataclass
class Row:
    """One image of a batch and what the model made of it."""

    name: str
    key: str
    truth: int | None
    predicted: int = -1
    confidence: float = 0.0

    @property
    def correct(self) -> bool | None:
        """Whether the prediction matches the label (None without a label)."""
        return None if self.truth is None else self.truth == self.predicted


@dataclass
class BatchRun:
    """A batch and the settings it was run with."""

    model: str
    layer: str
    method: str
    rows: list[Row] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)


def _normal(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text).strip().lower()


def match_label(text: str, categories: list[str]) -> int | None:
    """The class whose name matches ``text`` (case, spaces, '_' and '-' ignored), if any."""
    wanted = _normal(text)
    for i, name in enumerate(categories):
        if _normal(name) == wanted:
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


def expand(files: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """Unpack ZIP archives (keeping their folder paths); return (images, bad files with reasons)."""
    out, bad = [], []
    for name, data in files:
        if not name.lower().endswith(".zip"):
            out.append((name, data))
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX")]
                if len(members) > ZIP_MAX_FILES or sum(m.file_size for m in members) > ZIP_MAX_BYTES:
                    bad.append((name, f"the archive holds more than {ZIP_MAX_FILES} files or 500 MB"))
                    continue
                out.extend((m.filename, archive.read(m)) for m in members)
        except zipfile.BadZipFile:
            bad.append((name, "not a readable ZIP archive"))
    return out, bad


def run(
    files: list[tuple[str, bytes]],
    csv_labels: dict[str, int],
    categories: list[str],
    settings: tuple[str, str, str],
    progress: Callable[[int, int, str], None],
) -> BatchRun:
    """Decode, label and classify every file, reporting progress; bad files are listed, not fatal."""
    model, layer, method = settings
    batch = BatchRun(model, layer, method)
    files, batch.bad = expand(files)
    for i, (name, data) in enumerate(files):
        progress(i, len(files), name)
        try:
            entry = images.decode(PurePosixPath(name).name, data)
        except ImageError as exc:
            batch.bad.append((name, str(exc)))
            continue
        images.add(entry, make_current=False)
        truth = csv_labels.get(PurePosixPath(name).name, label_from_path(name, categories))
        exp = explain(entry.key, None, None, model, layer, method, None, _image=entry.image)
        top = exp.classes[0]
        batch.rows.append(Row(name, entry.key, truth, top, float(exp.probabilities[top])))
    progress(len(files), len(files), "")
    return batch

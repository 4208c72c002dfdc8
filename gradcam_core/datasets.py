"""Labelled datasets for an audit: an ImageFolder, a CSV of ``path,label``, or a ZIP of either.

:func:`read_dataset` lists a dataset's items without opening an image, so the list can be made on
the driver and the images read wherever they are explained (:func:`read_bytes`). Labels are matched
to the model's class names (exactly, then ignoring case, ``_`` and ``-``, then as an index), or through
a labels map. A label that matches no class is kept and reported, never dropped.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

__all__ = ["Dataset", "DatasetError", "Item", "match_labels", "parse_labels_map", "read_bytes", "read_dataset"]

_ZIP = "zip:"
_IN_ZIP = "!"
_PATH_HEADERS = ("path", "filename", "file", "image")  # a CSV header's name for the path column
_LABEL_HEADERS = ("label", "class")


class DatasetError(ValueError):
    """The dataset cannot be read at all (the message says what to fix)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled image of a dataset.

    Attributes:
        path: where it is within the dataset (``class/name.jpg``, or as the CSV names it): the row's key.
        uri: where its bytes are: a file path, or ``zip:ARCHIVE!MEMBER`` (see :func:`read_bytes`).
        label: its label as the dataset gives it (a folder name, or the CSV's label).
        index: the model's class for that label, or ``None`` when the label matches none.
    """

    path: str
    uri: str
    label: str
    index: int | None

    def row(self) -> dict[str, Any]:
        """The item as an :class:`gradcam_core.auditor.Auditor` batch row (``index`` -1 for no class)."""
        return {
            "path": self.path,
            "uri": self.uri,
            "label": self.label,
            "index": -1 if self.index is None else self.index,
        }


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset's items and what was found wrong while listing them.

    Attributes:
        items: every item, sorted by path.
        problems: plain-language notes on what was left out or looks wrong (files outside a class folder…).
        unknown_labels: each label that matches no class, with how many items carry it.
    """

    items: list[Item]
    problems: list[str] = field(default_factory=list)
    unknown_labels: dict[str, int] = field(default_factory=dict)


def _split_zip(uri: str) -> tuple[str, str]:
    """(archive, member) of a ``zip:ARCHIVE!MEMBER`` uri (a member's own name may hold ``!``)."""
    rest = uri[len(_ZIP) :]
    at = rest.casefold().find(".zip" + _IN_ZIP)
    if at < 0:
        raise ValueError(f"'{uri}' names no member of a .zip archive")
    return rest[: at + 4], rest[at + 5 :]


def read_bytes(uri: str, archives: dict[str, zipfile.ZipFile] | None = None) -> bytes:
    """The bytes an item's ``uri`` points to: a file, or a member of a ZIP archive.

    ``archives`` keeps each archive open between calls (the caller's own, closed by it): reading
    the central directory of a large ZIP once per image would cost more than the image.
    """
    if uri.startswith(_ZIP):
        archive, member = _split_zip(uri)
        if archives is None:
            with zipfile.ZipFile(archive) as z:
                return z.read(member)
        if archive not in archives:
            archives[archive] = zipfile.ZipFile(archive)
        return archives[archive].read(member)
    return Path(uri).read_bytes()


def label_key(name: str) -> str:
    """A label as it is matched to class names: case, spaces, ``_`` and ``-`` ignored."""
    return re.sub(r"[\s_\-]+", " ", name).strip().casefold()


def _csv(text: str) -> list[list[str]]:
    """A CSV's rows, without blank ones."""
    return [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]


def parse_labels_map(data: bytes) -> dict[str, str]:
    """A labels map from a JSON object ``{label: class}`` or a two-column CSV ``label,class``.

    ``class`` is a class name or index. Raises :class:`DatasetError` for anything else.
    """
    text = data.decode("utf-8-sig")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        rows = _csv(text)
        if not rows or any(len(r) < 2 for r in rows):
            raise DatasetError(
                "the labels map must be a JSON object {label: class} or a CSV of label,class rows"
            ) from None
        return {r[0].strip(): r[1].strip() for r in rows}
    if not isinstance(parsed, dict):
        raise DatasetError('the labels map must be a JSON object {label: class}, e.g. {"n01443537": "goldfish"}')
    return {str(k): str(v) for k, v in parsed.items()}


def match_labels(
    labels: Sequence[str], categories: Sequence[str], labels_map: Mapping[str, str] | None = None
) -> dict[str, int | None]:
    """Each label's class index: through ``labels_map`` first, then by name, then as an index."""
    exact: dict[str, int] = {}
    loose: dict[str, int] = {}
    for i, c in enumerate(categories):  # a name given twice (ImageNet's "crane") matches its first class
        exact.setdefault(c, i)
        loose.setdefault(label_key(c), i)

    def one(label: str) -> int | None:
        if label in exact:
            return exact[label]
        if label_key(label) in loose:
            return loose[label_key(label)]
        if label.strip().isdigit() and int(label) < len(categories):
            return int(label)
        return None

    out: dict[str, int | None] = {}
    for label in labels:
        mapped = (labels_map or {}).get(label)
        out[label] = one(mapped) if mapped is not None else one(label)
    return out


def _shown(paths: Sequence[str]) -> str:
    return ", ".join(paths[:5]) + (" …" if len(paths) > 5 else "")


def _image_folder(files: Sequence[tuple[str, str]]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(path, uri, label) for image files one folder deep; notes on the files left out.

    A file whose name does not end as an image format Pillow reads (``notes.txt``, ``Thumbs.db``) is
    left out with a note; an image file that turns out to be broken is kept, and its row says why.
    """
    suffixes = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}  # not .pdf
    found, outside, other = [], [], []
    for path, uri in files:
        parts = PurePosixPath(path).parts
        if len(parts) != 2:
            outside.append(path)
        elif PurePosixPath(path).suffix.lower() not in suffixes:
            other.append(path)
        else:
            found.append((path, uri, parts[0]))
    notes = []
    if outside:
        notes.append(f"{len(outside)} file(s) are not in a class folder and were left out: {_shown(outside)}")
    if other:
        notes.append(f"{len(other)} file(s) are not images and were left out: {_shown(other)}")
    return found, notes


def _csv_rows(text: str, base: str, name: str) -> list[tuple[str, str]]:
    """(path, label) rows of a CSV, with or without a ``path,label`` header."""
    rows = _csv(text)
    if not rows:
        raise DatasetError(f"{name} has no rows: write one 'path,label' row per image")
    head = [c.strip().casefold() for c in rows[0]]
    found_path = next((head.index(h) for h in _PATH_HEADERS if h in head), None)
    found_label = next((head.index(h) for h in _LABEL_HEADERS if h in head), None)
    header = found_path is not None and found_label is not None
    ip, il = (found_path or 0, found_label or 0) if header else (0, 1)
    if header:
        rows = rows[1:]
    bad = [n for n, r in enumerate(rows, start=2 if header else 1) if len(r) <= max(ip, il)]
    if bad:
        raise DatasetError(f"{name}: line {bad[0]} has no label; each row must be 'path,label'")
    return [(str(PurePosixPath(base, r[ip].strip())), r[il].strip()) for r in rows]


def _folder(member: str) -> str:
    """The folder of a ZIP member, ``""`` at the root."""
    parent = str(PurePosixPath(member).parent)
    return "" if parent == "." else parent


def _hidden(path: str) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in PurePosixPath(path).parts)


def read_dataset(source: str | Path, categories: Sequence[str], labels_map: Mapping[str, str] | None = None) -> Dataset:
    """List a dataset's items, matched to ``categories``.

    Args:
        source: an ImageFolder (one folder per class), a ``.csv`` of ``path,label`` (paths relative to
            the CSV's folder, or absolute), or a ``.zip`` holding either.
        categories: the model's class names, in output order.
        labels_map: labels (folder names, CSV labels) to class names or indices, for labels that are
            not the model's own names (WordNet IDs, say).

    Raises:
        DatasetError: when nothing can be listed (no such path, an empty folder, an unreadable CSV or ZIP).
    """
    source = Path(source).expanduser().resolve()  # items' uris are absolute: they are read elsewhere too
    problems: list[str] = []
    rows: list[tuple[str, str, str]] = []  # (path, uri, label)
    if source.is_dir():
        files = [
            (p.relative_to(source).as_posix(), str(p))
            for p in sorted(source.rglob("*"))
            if p.is_file() and not _hidden(p.relative_to(source).as_posix())
        ]
        rows, problems = _image_folder(files)
    elif source.suffix.lower() == ".csv" and source.is_file():
        for path, label in _csv_rows(source.read_text(encoding="utf-8-sig"), "", source.name):
            full = Path(path) if Path(path).is_absolute() else source.parent / path
            rows.append((path, str(full), label))
        if missing := [p for p, u, _ in rows if not Path(u).is_file()]:
            problems.append(f"{len(missing)} file(s) that {source.name} lists do not exist: {_shown(missing)}")
    elif source.suffix.lower() == ".zip" and source.is_file():
        rows, problems = _zip_rows(source)
    elif not source.exists():
        raise DatasetError(f"no dataset at '{source}': give an ImageFolder, a .csv of path,label, or a .zip of either")
    else:
        raise DatasetError(f"'{source.name}' is not a folder, a .csv or a .zip: give an ImageFolder, a CSV or a ZIP")
    if not rows:
        raise DatasetError(
            f"no images found in '{source}': an ImageFolder holds one folder per class with the images inside "
            "(e.g. goldfish/001.jpg); a CSV lists path,label rows"
        )
    matched = match_labels(sorted({label for _, _, label in rows}), categories, labels_map)
    items = sorted((Item(p, u, label, matched[label]) for p, u, label in rows), key=lambda i: i.path)
    seen = Counter(i.path for i in items)
    if dupes := [p for p, n in seen.items() if n > 1]:
        raise DatasetError(f"'{dupes[0]}' is listed {seen[dupes[0]]} times: list each image once")
    names = Counter(categories)
    if twice := sorted({label for _, _, label in rows if names.get(label, 0) > 1 and label not in (labels_map or {})}):
        problems.append(
            f"{len(twice)} label(s) name more than one class of the model and were given the first: "
            f"{_shown(twice)}. Pass a labels map (--labels-map) from label to class index to choose."
        )
    unknown = Counter(i.label for i in items if i.index is None)
    if unknown:
        shown = ", ".join(f"'{k}' ({n})" for k, n in unknown.most_common(5)) + (" …" if len(unknown) > 5 else "")
        problems.append(
            f"{len(unknown)} label(s) match no class of the model and are audited with no true class: {shown}. "
            "Name the folders as the model's classes, or pass a labels map (--labels-map) from label to class."
        )
    return Dataset(items, problems, dict(unknown))


def _zip_rows(source: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(path, uri, label) rows of a ZIP that holds an ImageFolder or a CSV, and notes on what was left out."""
    try:
        with zipfile.ZipFile(source) as z:
            names = [n for n in z.namelist() if not n.endswith("/") and not _hidden(n)]
            csvs = sorted((n for n in names if n.lower().endswith(".csv")), key=lambda n: (n.count("/"), n))
            text = z.read(csvs[0]).decode("utf-8-sig") if csvs else ""
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"'{source.name}' is not a readable ZIP ({exc}): zip the ImageFolder or CSV again") from None
    uri = f"{_ZIP}{source.resolve()}{_IN_ZIP}"
    inside = set(names)
    try:
        listed = _csv_rows(text, _folder(csvs[0]), csvs[0]) if csvs else []
    except DatasetError:
        listed = []  # not a list of the images: some other CSV beside an ImageFolder
    # A CSV of the images (most of whose paths are in the ZIP), not just any CSV beside an ImageFolder.
    if listed and sum(p in inside for p, _ in listed) * 2 >= len(listed):
        rows = [(path, uri + path, label) for path, label in listed]
        missing = [p for p, _, _ in rows if p not in inside]
        notes = [f"{len(missing)} file(s) that {csvs[0]} lists are not in the ZIP: {_shown(missing)}"]
        return rows, notes if missing else []
    # An ImageFolder, perhaps inside one top folder (as zipping a folder makes it).
    tops = {PurePosixPath(n).parts[0] for n in names}
    # Stripped when everything sits in one top folder that holds the class folders (not one class folder).
    strip = len(tops) == 1 and any(len(PurePosixPath(n).parts) > 2 for n in names)
    files = [(str(PurePosixPath(*PurePosixPath(n).parts[1:])) if strip else n, n) for n in names]
    found, notes = _image_folder(files)
    return [(p, uri + m, label) for p, m, label in found], notes

"""Class names from a labels file: one per line, a JSON list, or a JSON object {index: name}."""

from __future__ import annotations

import json

__all__ = ["parse_labels"]


def parse_labels(data: bytes) -> list[str]:
    """Class names from a labels file: a JSON list, a JSON object {index: name}, or one name per line.

    Raises:
        ValueError: the file holds no names, or a JSON object whose keys are not 0..N-1.
    """
    text = data.decode("utf-8-sig", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(parsed, dict):
        try:
            order = sorted(parsed, key=int)
        except ValueError as exc:
            raise ValueError("a JSON labels object must map class indices (0, 1, …) to names") from exc
        if [int(k) for k in order] != list(range(len(order))):
            raise ValueError("a JSON labels object must have the indices 0 to N-1, each once")
        parsed = [parsed[k] for k in order]
    if not isinstance(parsed, list) or not parsed:
        raise ValueError("the labels file holds no class names: give one name per line, or a JSON list")
    return [str(name) for name in parsed]

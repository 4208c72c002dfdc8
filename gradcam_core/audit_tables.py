"""Summaries of an audit's rows (:func:`gradcam_core.audit.read_audit`'s frame): accuracy, confusion, shortcuts.

Pure functions of a pandas DataFrame; the app draws them, a notebook can print them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OTHER", "SHORTCUT_SCORE", "class_accuracy", "confusion", "named", "shortcut_ranking"]

#: The confusion matrix's bucket for the classes left out of it.
OTHER = "(other classes)"
#: The statistic the shortcut ranking sorts by: the share of the map's mass in the border band.
SHORTCUT_SCORE = "border_mass"


def named(frame: Any) -> Any:
    """A copy of ``frame`` whose class names are unique, one per class index.

    A name the model gives two classes (ImageNet's "crane", 134 and 517) becomes ``crane #134`` and
    ``crane #517``. The tables below group by these names, so two such classes are never counted as one.
    """
    out = frame.copy()
    seen: dict[str, set[int]] = {}
    for col in ("true", "pred"):
        rows = out[out[f"{col}_name"].notna() & out[f"{col}_index"].notna()]
        for name, index in zip(rows[f"{col}_name"], rows[f"{col}_index"], strict=True):
            seen.setdefault(str(name), set()).add(int(index))
    twice = {n for n, indices in seen.items() if len(indices) > 1}
    for col in ("true", "pred"):
        which = out[f"{col}_name"].isin(twice)
        indices = out.loc[which, f"{col}_index"].astype(int)
        out.loc[which, f"{col}_name"] = out.loc[which, f"{col}_name"] + " #" + indices.astype(str)
    return out


def _scored(frame: Any) -> Any:
    """The rows with a prediction and a true class (readable images with known labels), named uniquely."""
    return named(frame[frame["correct"].notna() & frame["error"].isna()])


def class_accuracy(frame: Any) -> Any:
    """Per true class: images, correct, accuracy and the most frequent wrong prediction; worst first."""
    import pandas as pd

    scored = _scored(frame)
    if scored.empty:
        return pd.DataFrame(columns=["class", "images", "correct", "accuracy", "most often taken for"])
    rows = []
    for name, group in scored.groupby("true_name", sort=True):
        wrong = group.loc[~group["correct"].astype(bool), "pred_name"]
        rows.append(
            {
                "class": name,
                "images": len(group),
                "correct": int(group["correct"].astype(bool).sum()),
                "accuracy": float(group["correct"].astype(bool).mean()),
                "most often taken for": wrong.mode().iloc[0] if len(wrong) else "",
            }
        )
    return pd.DataFrame(rows).sort_values(["accuracy", "images"], ascending=[True, False], ignore_index=True)


def confusion(frame: Any, max_classes: int = 20) -> Any:
    """Counts per (true, predicted) class pair, as long-form rows ``true_name, pred_name, count``.

    With more classes than ``max_classes``, the classes with the most errors (as the truth or as
    the prediction) are kept and the rest are counted under :data:`OTHER`, so the matrix stays readable.
    """
    scored = _scored(frame)[["true_name", "pred_name", "correct"]].copy()
    classes = sorted(set(scored["true_name"]) | set(scored["pred_name"]))
    if len(classes) > max_classes:
        wrong = scored[~scored["correct"].astype(bool)]
        errors = wrong["true_name"].value_counts().add(wrong["pred_name"].value_counts(), fill_value=0)
        sizes = scored["true_name"].value_counts()
        ranked = sorted(classes, key=lambda c: (-errors.get(c, 0), -sizes.get(c, 0), c))
        kept = set(ranked[:max_classes])
        for col in ("true_name", "pred_name"):
            scored[col] = scored[col].where(scored[col].isin(kept), OTHER)
    counts = scored.groupby(["true_name", "pred_name"]).size().reset_index(name="count")
    return counts.sort_values(["true_name", "pred_name"], ignore_index=True)


def shortcut_ranking(frame: Any, correct_only: bool = False) -> Any:
    """The readable rows, most map mass at the image's border first (then the peak furthest off centre).

    A model that looks at the border, not at the object, comes first, whether it was right or wrong:
    the right-for-the-wrong-reason cases an accuracy figure cannot show. ``correct_only`` keeps only
    the right ones.
    """
    rows = frame[frame["error"].isna() & frame[SHORTCUT_SCORE].notna()]
    if correct_only:
        rows = rows[rows["correct"].fillna(False).astype(bool)]
    return rows.sort_values([SHORTCUT_SCORE, "peak_offcentre"], ascending=False, kind="stable")

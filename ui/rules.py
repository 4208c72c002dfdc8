"""The rules behind the pages, as plain functions: which explanations a view needs, and how they pair up.

Pages read widgets, call these, and render what they return; every rule here can be tested
without a page (explanations are cached with ``st.cache_data``, which also runs outside a
Streamlit server). Slow methods ask before they run (:func:`ui.slow.explain`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from gradcam_core import METHODS, Faithfulness, Progress
from ui import state
from ui.compute import Edit, Explanation, Settings, edited, faithfulness
from ui.images import ImageEntry
from ui.slow import explain

#: What an Explain map shows: evidence for the class, against it, or for it rather than another class.
VIEWS = {"for": "evidence for the class", "against": "evidence against it", "contrast": "why it rather than…"}


@dataclass(frozen=True)
class View:
    """What an Explain map shows: one of :data:`VIEWS` for class ``cls``.

    Attributes:
        kind: ``"for"``, ``"against"`` or ``"contrast"``.
        cls: the class explained.
        contrast: the class B of "why ``cls`` rather than B", for ``"contrast"``.
        notice: why the view asked for could not be shown (a method without gradients), if so.
    """

    kind: str
    cls: int
    contrast: int | None = None
    notice: str | None = None

    def label(self, categories: tuple[str, ...] | list[str], method: str) -> str:
        """What the map shows, in words: "tabby", "against tabby", "tabby rather than tiger cat"."""
        if self.kind == "against":
            return f"against {categories[self.cls]}"
        if self.kind == "contrast" and self.contrast is not None:
            return f"{categories[self.cls]} rather than {categories[self.contrast]}"
        return METHODS[method].target_label(categories[self.cls])


def view(method: str, kind: str, cls: int, contrast: int | None) -> View:
    """The view to show: ``kind`` for ``cls``, or the evidence for it where ``method`` has no gradients to use."""
    if kind != "for" and METHODS[method].combine is None:
        notice = f"{METHODS[method].label} has no gradients to negate or contrast: showing the evidence for the class."
        return View("for", cls, None, notice)
    return View(kind, cls, contrast if kind == "contrast" else None)


def contrast_choices(top: list[int], cls: int, num_classes: int) -> list[int]:
    """The classes B offered for "why ``cls`` rather than B": the rest of the top-k first, then every other."""
    return [i for i in top if i != cls] + [i for i in range(num_classes) if i not in top and i != cls]


def explain_view(image: ImageEntry, settings: Settings, base: Explanation, shown: View) -> Explanation:
    """The explanation behind ``shown``; ``base`` (the top-1, for) when that is what it asks for."""
    if shown.kind == "for" and shown.cls == base.classes[0]:
        return base
    return explain(
        image,
        settings,
        classes=(shown.cls,),
        contrast=shown.contrast,
        counterfactual=shown.kind == "against",
    )


@dataclass(frozen=True)
class Comparison:
    """One image explained before and after an edit, each side for the same classes.

    Attributes:
        before: the explanation of the image as it is.
        after: the explanation of the edited image.
        pair: the classes both sides explain: the top-1 before, then the top-1 after when it differs.
    """

    before: Explanation
    after: Explanation
    pair: tuple[int, ...]

    @property
    def before_class(self) -> int:
        """The top-1 class before the edit."""
        return self.pair[0]

    @property
    def after_class(self) -> int:
        """The top-1 class after the edit."""
        return self.pair[-1]

    def summary(self) -> str:
        """The headline: top-1 changed (or unchanged), from class (probability) to class (probability)."""
        cats, b, a = self.before.categories, self.before_class, self.after_class
        changed = "changed" if a != b else "unchanged"
        pb, pa = self.before.probabilities[b], self.after.probabilities[a]
        return f"top-1 {changed}: {cats[b]} ({pb:.2f}) → {cats[a]} ({pa:.2f})"

    def deltas(self, side: Explanation, k: int = 5) -> pd.DataFrame:
        """``side``'s top-k classes, their probabilities, and how each changed from before to after."""
        top = side.top(k)
        pb, pa = self.before.probabilities, self.after.probabilities
        return pd.DataFrame(
            {
                "class": [side.categories[i] for i in top],
                "probability": [float(side.probabilities[i]) for i in top],
                "change": [float(pa[i] - pb[i]) for i in top],
            }
        )

    def vmax(self) -> float:
        """The largest value of every map on both sides: one colour scale for all of them."""
        return max(float(m.max()) for m in (*self.before.maps, *self.after.maps))


def compare(image: ImageEntry, settings: Settings, edit: Edit) -> Comparison:
    """Explain ``image`` before and after ``edit``, both for the top-1 classes of both.

    When the top-1 class is unchanged, the two top-1 explanations already hold every map needed.
    """
    before = explain(image, settings)
    after = explain(image, settings, edit=edit)
    b, a = before.classes[0], after.classes[0]
    if a == b:
        return Comparison(before, after, (b,))
    pair = (b, a)
    return Comparison(explain(image, settings, classes=pair), explain(image, settings, classes=pair, edit=edit), pair)


def _faithfulness_key(image: ImageEntry, exp: Explanation) -> tuple[object, ...]:
    return (image.key, exp.settings, exp.classes, exp.edit, exp.contrast, exp.counterfactual)


def measure_faithfulness(image: ImageEntry, exp: Explanation, progress: Progress) -> tuple[Faithfulness, Faithfulness]:
    """Measure the faithfulness of ``exp``'s first map (see :func:`ui.compute.faithfulness`), and remember it."""
    seen = edited(image, exp.edit)
    measured = faithfulness(exp, seen, 0, progress)
    st.session_state[state.FAITH] = (_faithfulness_key(image, exp), measured)
    return measured


def measured_faithfulness(image: ImageEntry, exp: Explanation) -> tuple[Faithfulness, Faithfulness] | None:
    """The faithfulness last measured, if it was measured for this very map."""
    stored = st.session_state.get(state.FAITH)
    return stored[1] if stored is not None and stored[0] == _faithfulness_key(image, exp) else None

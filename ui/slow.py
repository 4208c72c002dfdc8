"""Slow methods in the app: Score-CAM asks before it runs, shows its progress, and can be cancelled.

Pages call :func:`explain` instead of :func:`ui.compute.explain`, with the same arguments. For a
fast method it is the same call. For Score-CAM (hundreds of masked forward passes), the first
time a given explanation is asked for, the page says how many passes it needs and about how long
they take (from a forward pass timed just now), and waits for the user to press *Run Score-CAM*;
the page stops there until then. While it runs, a progress bar follows the passes, and *Cancel*
stops them: pressing it makes Streamlit rerun the page, which interrupts the run inside the
progress callback (the engine leaves nothing behind), and the page then says it was cancelled.
Once finished, the result is cached like any other, and later reruns show it without asking.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from gradcam_core import METHODS, estimate_scorecam
from ui import compute, state
from ui.compute import Edit, Explanation, Settings
from ui.images import ImageEntry
from ui.models import cached_model


def is_slow(method: str) -> bool:
    """Whether ``method`` runs extra forward passes per channel (Score-CAM)."""
    return METHODS[method].kind == "score"


def _about(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.1f} minutes"


def explain(
    image: ImageEntry,
    settings: Settings,
    *,
    classes: tuple[int, ...] | None = None,
    edit: Edit | None = None,
    contrast: int | None = None,
    counterfactual: bool = False,
) -> Explanation:
    """:func:`ui.compute.explain`, asking first and showing progress when the method is slow (see module doc)."""
    if not is_slow(settings.method):
        return compute.explain(
            image, settings, classes=classes, edit=edit, contrast=contrast, counterfactual=counterfactual
        )
    args = (image, settings, classes, edit, contrast, counterfactual)
    try:
        return compute.cached_only(*args)
    except compute.NotCachedError:
        pass
    try:
        return compute.store(*args, _ask_and_run(*args))
    except ValueError as exc:  # an unusable layer, say: a message, as for fast methods
        compute.engine_error(exc, settings)


def _ask_and_run(
    image: ImageEntry, settings: Settings, classes: tuple[int, ...] | None, edit: Edit | None,
    contrast: int | None, counterfactual: bool,
) -> Explanation:  # fmt: skip
    """Ask before a slow explanation, then run it with a progress bar and Cancel (see module doc)."""
    call = repr((image.key, settings, classes, edit, contrast, counterfactual))
    tag = hashlib.sha256(call.encode()).hexdigest()[:12]
    label = METHODS[settings.method].label
    run_key = f"{state.W_SLOW_RUN}.{tag}"
    if not st.session_state.get(run_key):  # not the rerun its button started
        loaded = cached_model(settings.model)
        seen = compute.edited(image, edit)
        estimate = estimate_scorecam(loaded.model, loaded.preprocess(seen)[None], settings.layer)
        if st.session_state.get(state.SLOW_RUNNING) == call:
            st.warning(f"{label} was cancelled before it finished.")
        st.session_state[state.SLOW_RUNNING] = None
        what = "the region" if edit is not None else "the image"
        ask = st.empty()
        with ask.container():
            st.info(
                f"{label} needs {estimate.passes} masked forward passes at layer `{settings.layer}` "
                f"({estimate.channels} channels, each masking {what}): about {_about(estimate.seconds)} here. "
                "Other methods need one pass."
            )
            st.button(f"Run {label}", key=run_key, type="primary")
        st.stop()
    st.session_state[state.SLOW_RUNNING] = call
    slot = st.empty()
    row = slot.container().columns([5, 1])
    bar = row[0].progress(0.0, text=f"{label}: starting…")
    row[1].button("Cancel", key=f"{state.W_SLOW_CANCEL}.{tag}")  # a click reruns the page, stopping the run

    def progress(passes: int, total: int) -> None:
        bar.progress(passes / max(total, 1), text=f"{label}: {passes} of {total} masked passes")

    result = compute.explanation(image.image, settings, classes, edit, contrast, counterfactual, progress)
    slot.empty()
    st.session_state[state.SLOW_RUNNING] = None
    return result

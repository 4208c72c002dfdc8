"""Explanations for the app: request values in, an :class:`Explanation` out, cached on what changes the result.

A request is an image (:class:`ui.images.ImageEntry`, identified by its content hash), the
sidebar's :class:`Settings`, an optional :class:`Edit` (a box cropped to or erased), the classes,
and the view (a contrast class, or the counterfactual). The cache key is exactly that. Display
choices (opacity, colour map, normalisation) are applied to cached maps, so changing them never
runs the model again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NoReturn

import numpy as np
import streamlit as st
import torch
from PIL import Image

from gradcam_core import (
    METHODS,
    Box,
    Faithfulness,
    Progress,
    clamp_box,
    compute_cams,
    crop,
    evaluate_map,
    occlude,
    paste_map,
    random_map,
    target_score,
)
from gradcam_core.smoothing import TTA_SCALES, tta_cam
from ui.images import ImageEntry
from ui.models import ModelInfo, cached_model, layers_of, model_info

#: The sidebar's smoothing options, and what each costs.
SMOOTHING: dict[str, str] = {
    "none": "None",
    "eigen": "Eigen smoothing (no extra pass)",
    "tta": f"Test-time augmentation (×{2 * len(TTA_SCALES)} passes)",
    "tta+eigen": f"Both (×{2 * len(TTA_SCALES)} passes)",
}


@dataclass(frozen=True)
class Settings:
    """What the sidebar chooses: the model (a registry name or an uploaded model's key), layer, method and smoothing."""

    model: str
    layer: str
    method: str
    smoothing: str = "none"


@dataclass(frozen=True)
class Edit:
    """A box in the original image's pixels, cropped to (``fill=None``) or erased with ``fill``.

    ``fill`` is ``"blur"``, ``"mean"`` or ``"black"`` (see :func:`gradcam_core.occlude`).
    """

    box: tuple[int, int, int, int]
    fill: str | None = None

    def apply(self, image: Image.Image) -> Image.Image:
        """``image`` cropped to the box, or with the box erased."""
        return occlude(image, self.box, self.fill) if self.fill else crop(image, self.box)  # type: ignore[arg-type]

    def offset(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Where the edited image's (0, 0) lies in the original: the box's corner for a crop, else (0, 0)."""
        if self.fill:
            return 0, 0
        b = clamp_box(self.box, image_size)
        return b.x, b.y


def edited(image: ImageEntry, edit: Edit | None) -> Image.Image:
    """``image`` after ``edit`` (the image itself without one); computed once per image and edit.

    A page draws the edited image on every rerun, display changes included, and a blur over a
    large photo is not free: so the result is kept (shared, never changed in place).
    """
    return image.image if edit is None else _edited(image.key, edit, image.image)


@st.cache_resource(max_entries=8, show_spinner=False)
def _edited(image_key: str, edit: Edit, _image: Image.Image) -> Image.Image:
    return edit.apply(_image)


@dataclass(frozen=True)
class Explanation:
    """What the app shows for one image, edit, set of classes and view.

    Attributes:
        maps: [K, h, w] raw maps at the layer's resolution.
        classes: the K explained class indices.
        probabilities: [num_classes] softmax of the logits.
        logits: [num_classes].
        region: where the model's input lies, in the original (unedited) image's pixels.
        warnings: the engine's notes on misleading maps.
        settings: the model, layer and method that made the maps.
        model: that model's names and provenance (categories, weights, preprocessing).
        edit: the crop or erase applied before explaining, if any.
        contrast: the class each map was contrasted with ("why A rather than B"), if any.
        counterfactual: whether the maps show the evidence against the classes.
        guided: for Guided Grad-CAM, [K, C, H, W] guided backpropagation at the model's input
            (of :attr:`region`), signed; else ``None``.
        smoothing: the smoothing these maps had, in words with its cost ("none" when none was
            applied: Score-CAM and Eigen-CAM are not smoothed, whatever the sidebar asks).
    """

    maps: np.ndarray
    classes: tuple[int, ...]
    probabilities: np.ndarray
    logits: np.ndarray
    region: Box
    warnings: tuple[str, ...]
    settings: Settings
    model: ModelInfo
    edit: Edit | None = None
    contrast: int | None = None
    counterfactual: bool = False
    guided: np.ndarray | None = None
    smoothing: str = "none"

    @property
    def categories(self) -> tuple[str, ...]:
        """The class names of the model that made this explanation."""
        return self.model.categories

    def top(self, k: int = 5) -> list[int]:
        """The k most probable classes, best first."""
        return [int(i) for i in np.argsort(-self.probabilities)[:k]]

    def full_map(self, k: int, image_size: tuple[int, int]) -> np.ndarray:
        """Map ``k`` in the original image's frame (of ``image_size``), zero outside :attr:`region`."""
        return paste_map(self.maps[k], self.region, image_size)


def engine_error(exc: ValueError, settings: Settings) -> NoReturn:
    """Show an engine ``ValueError`` as a message saying what to change, and stop the page (never a traceback)."""
    st.error(
        f"This image cannot be explained with layer `{settings.layer}` and {settings.method}: {exc}.\n\n"
        "Try another target layer or method in the sidebar, or another model."
    )
    st.stop()


class NotCachedError(LookupError):
    """:func:`explain` was asked for a cached result only, and there is none."""


def explain(
    image: ImageEntry,
    settings: Settings,
    *,
    classes: tuple[int, ...] | None = None,
    edit: Edit | None = None,
    contrast: int | None = None,
    counterfactual: bool = False,
) -> Explanation:
    """Explain ``image`` (after ``edit``) with ``settings``, cached; for a page.

    ``classes=None`` explains the top-1 class. ``contrast`` explains "why each class rather than
    this one"; ``counterfactual`` shows the evidence against each class. An engine ``ValueError``
    (an unusable layer, class, method or model output) becomes a message (see :func:`engine_error`).
    Slow methods go through :func:`ui.slow.explain`, which asks first.
    """
    try:
        return _cached(image.key, settings, classes, edit, contrast, counterfactual, image.image)
    except ValueError as exc:
        engine_error(exc, settings)


def explanation(
    image: Image.Image,
    settings: Settings,
    classes: tuple[int, ...] | None = None,
    edit: Edit | None = None,
    contrast: int | None = None,
    counterfactual: bool = False,
    progress: Progress | None = None,
) -> Explanation:
    """Explain ``image`` after ``edit``, uncached; ``progress`` follows Score-CAM's passes."""
    found = explanations(image, settings, (settings.method,), classes, edit, contrast, counterfactual, progress)
    return found[settings.method]


_NO_TTA = (
    "test-time augmentation is not applied to Score-CAM: it would repeat all its masked passes for each of the "
    f"{2 * len(TTA_SCALES)} views"
)


_NO_TTA_VIEW = "test-time augmentation is not applied to contrastive or counterfactual maps: this map is not augmented"


def explanations(
    image: Image.Image,
    settings: Settings,
    methods: tuple[str, ...],
    classes: tuple[int, ...] | None = None,
    edit: Edit | None = None,
    contrast: int | None = None,
    counterfactual: bool = False,
    progress: Progress | None = None,
) -> dict[str, Explanation]:
    """Explain ``image`` after ``edit`` with each of ``methods`` at ``settings``' layer, sharing one pass (uncached)."""
    loaded = cached_model(settings.model)
    seen = image if edit is None else edit.apply(image)
    x = loaded.preprocess(seen)[None]
    info = next((i for i in layers_of(settings.model) if i.name == settings.layer), settings.layer)  # the fast path
    eigen = "eigen" in settings.smoothing
    wanted = None if classes is None else list(classes)
    if "tta" in settings.smoothing and contrast is None and not counterfactual:
        results = {}
        for m in methods:  # each view's map is aligned back per method: no pass is shared
            if METHODS[m].kind == "score":
                plain = compute_cams(loaded.model, x, info, wanted, (m,), progress=progress)[m]
                results[m] = replace(plain, warnings=(*plain.warnings, _NO_TTA))
            else:
                results[m] = tta_cam(loaded.model, x, info, wanted, m, eigen_smooth=eigen)
    else:
        results = compute_cams(
            loaded.model,
            x,
            info,
            classes=wanted,
            methods=methods,
            contrast=None if contrast is None else [contrast] * (1 if classes is None else len(classes)),
            counterfactual=counterfactual,
            progress=progress,
            eigen_smooth=eigen,
        )
        if "tta" in settings.smoothing:
            results = {m: replace(r, warnings=(*r.warnings, _NO_TTA_VIEW)) for m, r in results.items()}
    region = loaded.input_region(seen.size)
    dx, dy = (0, 0) if edit is None else edit.offset(image.size)
    info_of = model_info(settings.model)
    return {
        method: Explanation(
            maps=result.maps[0].numpy(),
            classes=tuple(int(c) for c in result.classes[0]),
            probabilities=torch.softmax(result.logits[0], dim=0).numpy(),
            logits=result.logits[0].numpy(),
            region=Box(region.x + dx, region.y + dy, region.w, region.h),
            warnings=result.warnings,
            settings=replace(settings, method=method),
            model=info_of,
            edit=edit,
            contrast=contrast,
            counterfactual=counterfactual,
            guided=None if result.guided is None else result.guided[0].numpy(),
            smoothing=result.smoothing,
        )
        for method, result in results.items()
    }


# Entries hold small arrays only (maps and scores), so 128 of them stay within a few MB.
@st.cache_data(max_entries=128, show_spinner=False)
def _cached(
    image_key: str,
    settings: Settings,
    classes: tuple[int, ...] | None,
    edit: Edit | None,
    contrast: int | None,
    counterfactual: bool,
    _image: Image.Image,
    _result: Explanation | None = None,
    _cached_only: bool = False,
) -> Explanation:
    """:func:`explanation` of ``_image``, identified by ``image_key``.

    For slow methods (see :mod:`ui.slow`), which run outside the cache so that their progress can
    be shown: ``_cached_only`` raises :class:`NotCachedError` rather than compute, and ``_result``
    stores an explanation computed elsewhere under these arguments. Neither is part of the key.
    """
    if _result is not None:
        return _result
    if _cached_only:
        raise NotCachedError(image_key)
    return explanation(_image, settings, classes, edit, contrast, counterfactual)


def cached_only(
    image: ImageEntry, settings: Settings, classes: tuple[int, ...] | None, edit: Edit | None,
    contrast: int | None, counterfactual: bool,
) -> Explanation:  # fmt: skip
    """The cached explanation for these arguments; :class:`NotCachedError` when there is none."""
    return _cached(image.key, settings, classes, edit, contrast, counterfactual, image.image, _cached_only=True)


def store(
    image: ImageEntry, settings: Settings, classes: tuple[int, ...] | None, edit: Edit | None,
    contrast: int | None, counterfactual: bool, result: Explanation,
) -> Explanation:  # fmt: skip
    """Cache ``result``, computed elsewhere, under these arguments, and return it."""
    return _cached(image.key, settings, classes, edit, contrast, counterfactual, image.image, _result=result)


def faithfulness(exp: Explanation, image: Image.Image, k: int, progress: Progress) -> tuple[Faithfulness, Faithfulness]:
    """Faithfulness of map ``k`` of ``exp`` on ``image`` (already edited), and of a random map of the same size.

    Scored on what the map's view claims (see :func:`gradcam_core.faithfulness.target_score`):
    p(cls) for the evidence for ``cls``, p(not cls) against it, p(cls) / (p(cls) + p(contrast))
    for ``cls`` rather than ``contrast``.
    """
    loaded = cached_model(exp.settings.model)
    x = loaded.preprocess(image)[None]
    saliency = exp.maps[k]
    chance = random_map(saliency.shape, seed=0)
    score = target_score(exp.classes[k], exp.contrast, exp.counterfactual, list(exp.categories))
    cam = evaluate_map(loaded.model, x, torch.from_numpy(saliency), score, progress=lambda d, _t: progress(d, 4))
    base = evaluate_map(loaded.model, x, chance, score, progress=lambda d, _t: progress(2 + d, 4))
    return cam, base

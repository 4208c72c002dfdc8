"""Explanations for the app, cached on everything that changes the result and nothing else.

The cache key is (image hash, crop box, erase fill, model, layer, method, classes, contrast class,
counterfactual). Display
choices (opacity, colour map, normalisation) are applied to cached maps, so changing them never
runs the model again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import streamlit as st
import torch
from PIL import Image

from gradcam_core import Box, compute_cam, crop, occlude
from gradcam_core.faithfulness import Faithfulness, Progress, evaluate_map, random_map, target_score
from ui.models import cached_model, layers_of


@dataclass(frozen=True)
class Explanation:
    """What the app shows for one image, region and set of classes.

    Attributes:
        maps: [K, h, w] raw maps at the layer's resolution.
        classes: the K explained class indices.
        probabilities: [num_classes] softmax of the logits.
        logits: [num_classes].
        region: where the model's input lies in the explained image (the crop, if any).
        warnings: the engine's notes on misleading maps.
    """

    maps: np.ndarray
    classes: tuple[int, ...]
    probabilities: np.ndarray
    logits: np.ndarray
    region: Box
    warnings: tuple[str, ...]

    def top(self, k: int = 5) -> list[int]:
        """The k most probable classes, best first."""
        return [int(i) for i in np.argsort(-self.probabilities)[:k]]


def edited(image: Image.Image, box: tuple[int, int, int, int] | None, erase: str | None) -> Image.Image:
    """``image`` cropped to ``box``, or with ``box`` erased by the ``erase`` fill (unchanged without a box)."""
    if box is None:
        return image
    return occlude(image, box, erase) if erase else crop(image, box)  # type: ignore[arg-type]


def faithfulness(
    model_name: str,
    image: Image.Image,
    saliency: np.ndarray,
    cls: int,
    progress: Progress,
    contrast: int | None = None,
    counterfactual: bool = False,
) -> tuple[Faithfulness, Faithfulness]:
    """Faithfulness of ``saliency`` on ``image``, and of a random map of the same size.

    Scored on what the map's view claims (see :func:`gradcam_core.faithfulness.target_score`):
    p(cls) for the evidence for ``cls``, p(not cls) against it, p(cls) / (p(cls) + p(contrast))
    for ``cls`` rather than ``contrast``.
    """
    loaded = cached_model(model_name)
    x = loaded.preprocess(image)[None]
    chance = random_map(saliency.shape, seed=0)
    score = target_score(cls, contrast, counterfactual, loaded.categories)
    cam = evaluate_map(loaded.model, x, torch.from_numpy(saliency), score, progress=lambda d, _t: progress(d, 4))
    base = evaluate_map(loaded.model, x, chance, score, progress=lambda d, _t: progress(2 + d, 4))
    return cam, base


def engine_error(exc: ValueError, layer: str, method: str) -> NoReturn:
    """Show an engine ``ValueError`` as a message saying what to change, and stop the page (never a traceback)."""
    st.error(
        f"This image cannot be explained with layer `{layer}` and {method}: {exc}.\n\n"
        "Try another target layer or method in the sidebar, or another model."
    )
    st.stop()


def explain(
    image_key: str,
    box: tuple[int, int, int, int] | None,
    erase: str | None,
    model_name: str,
    layer: str,
    method: str,
    classes: tuple[int, ...] | None,
    _image: Image.Image,
    contrast: int | None = None,
    counterfactual: bool = False,
    **cache: Any,
) -> Explanation:
    """:func:`explain_cached`, for a page.

    An engine ``ValueError`` (an unusable layer, class, method or model output) becomes a message
    (see :func:`engine_error`). ``cache`` passes ``_result`` and ``_cached_only`` on (see :mod:`ui.slow`).
    """
    try:
        return explain_cached(
            image_key, box, erase, model_name, layer, method, classes, _image, contrast, counterfactual, **cache
        )
    except ValueError as exc:
        engine_error(exc, layer, method)


class NotCachedError(LookupError):
    """:func:`explain` was asked for a cached result only, and there is none."""


def explanation(
    model_name: str,
    image: Image.Image,
    layer: str,
    method: str,
    classes: tuple[int, ...] | None,
    contrast: int | None = None,
    counterfactual: bool = False,
    progress: Progress | None = None,
) -> Explanation:
    """Explain ``image`` as it is (already cropped or erased), uncached; ``progress`` follows Score-CAM's passes."""
    loaded = cached_model(model_name)
    x = loaded.preprocess(image)[None]
    info = next((i for i in layers_of(model_name) if i.name == layer), layer)  # its calls: the fast path
    result = compute_cam(
        loaded.model,
        x,
        info,
        classes=None if classes is None else list(classes),
        method=method,
        contrast=None if contrast is None else [contrast] * (1 if classes is None else len(classes)),
        counterfactual=counterfactual,
        progress=progress,
    )
    probs = torch.softmax(result.logits[0], dim=0).numpy()
    return Explanation(
        maps=result.maps[0].numpy(),
        classes=tuple(int(c) for c in result.classes[0]),
        probabilities=probs,
        logits=result.logits[0].numpy(),
        region=loaded.input_region(image.size),
        warnings=result.warnings,
    )


# Entries hold small arrays only (maps and scores), so 128 of them stay within a few MB.
@st.cache_data(max_entries=128, show_spinner=False)
def explain_cached(
    image_key: str,
    box: tuple[int, int, int, int] | None,
    erase: str | None,
    model_name: str,
    layer: str,
    method: str,
    classes: tuple[int, ...] | None,
    _image: Image.Image,
    contrast: int | None = None,
    counterfactual: bool = False,
    _result: Explanation | None = None,
    _cached_only: bool = False,
) -> Explanation:
    """Explain ``_image`` (identified by ``image_key``), cropped to ``box`` or with ``box`` erased.

    ``classes=None`` explains the top-1 class. ``erase`` is a fill (``"blur"``, ``"mean"``,
    ``"black"``) to occlude ``box`` instead of cropping to it. ``contrast`` explains "why each
    class rather than this one"; ``counterfactual`` shows the evidence against each class.

    For slow methods (see :mod:`ui.slow`), which run outside the cache so that their progress can
    be shown: ``_cached_only`` raises :class:`NotCachedError` rather than compute, and ``_result``
    stores an explanation computed elsewhere under these arguments. Neither is part of the key.
    """
    if _result is not None:
        return _result
    if _cached_only:
        raise NotCachedError(image_key)
    return explanation(model_name, edited(_image, box, erase), layer, method, classes, contrast, counterfactual)

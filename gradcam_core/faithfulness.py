"""How faithful is a map? Deletion and insertion curves, Average Drop and Increase in Confidence.

Peers differ on the details, so the protocol here is exact:

* **Space.** Everything happens on the model's input tensor ``x`` (after preprocessing and
  normalisation). Its zero is the dataset's mean colour, so the "zero" baseline is the mean
  colour, not black.
* **Saliency.** The map is upsampled bilinearly (``align_corners=False``) to the input size and
  its pixels are ranked by value, highest first (ties keep pixel order).
* **Deletion** (Petsiuk et al., RISE, BMVC 2018): at step i of S (i = 0..S) the top
  ``round(i/S · P)`` of the P pixels are set to the zero baseline, all channels at once.
  **Insertion** starts from ``x`` blurred (Gaussian, sigma = 1/25 of the input's shorter side,
  computed in tensor space) and puts the top pixels of ``x`` back in the same order.
* **Score.** What the map claims to explain, after each step; the AUC is the trapezoid rule over
  the fraction changed, in [0, 1]. Lower deletion AUC and higher insertion AUC mean a more
  faithful map. The score depends on the view (see :func:`target_score`): for a map of the
  evidence *for* class c it is p(c); for the evidence *against* c it is 1 − p(c), the
  probability of "not c", since deleting the evidence against c should raise p(c); for "A
  rather than B" it is p(A) / (p(A) + p(B)) = sigmoid(logit A − logit B), which deleting the
  evidence for A over B should lower.
* **Average Drop / Increase in Confidence** (Chattopadhyay et al., Grad-CAM++, WACV 2018): the
  explanation map is ``E = x ⊙ M`` with M the upsampled map divided by its maximum, in the
  normalised space (masked pixels go to the mean colour; the paper masks the raw image towards
  black). With Y the score on ``x`` and O on ``E``: drop = max(0, Y − O) / Y · 100 %;
  increase is O > Y.
* **Chance.** :func:`random_map` gives a seeded uniform random map of the same size, to be run
  through the same protocol as a baseline; :func:`verdict` says on how many of the four
  measures the map beats it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradcam_core.logits import model_logits
from gradcam_core.progress import Progress

__all__ = [
    "Curves",
    "Faithfulness",
    "Progress",
    "Score",
    "confidence_change",
    "deletion_insertion",
    "evaluate_map",
    "random_map",
    "target_score",
    "verdict",
]


@dataclass(frozen=True)
class Score:
    """The number a map's faithfulness is measured on, computed from a batch of logits.

    Attributes:
        of: logits [B, num_classes] -> scores [B] in [0, 1].
        label: what the score is, in words, e.g. ``"p(not cat)"``.
    """

    of: Callable[[Tensor], Tensor]
    label: str


def target_score(
    cls: int, contrast: int | None = None, counterfactual: bool = False, names: Sequence[str] | None = None
) -> Score:
    """The score that makes "lower deletion AUC, higher insertion AUC is better" true for a map's view.

    Args:
        cls: the explained class c (A for a contrast).
        contrast: B, for a map of "A rather than B".
        counterfactual: the map shows the evidence against c.
        names: the class names, for the label (default ``class c``).

    Returns:
        p(c) for the evidence for c; 1 − p(c) against c; p(A) / (p(A) + p(B)) for A rather than B.

    Raises:
        ValueError: both a contrast and counterfactual, or a class contrasted with itself.
    """

    def called(i: int) -> str:
        return names[i] if names is not None and 0 <= i < len(names) else f"class {i}"

    what = called(cls)
    if contrast is not None:
        if counterfactual:
            raise ValueError("a map is either against a class or a contrast of two, not both")
        if contrast == cls:
            raise ValueError("a class cannot be contrasted with itself: pick a different class B")
        other = called(contrast)
        return Score(lambda z: torch.sigmoid(z[:, cls] - z[:, contrast]), f"p({what}) / (p({what}) + p({other}))")
    if counterfactual:
        return Score(lambda z: 1 - torch.softmax(z, dim=1)[:, cls], f"p(not {what})")
    return Score(lambda z: torch.softmax(z, dim=1)[:, cls], f"p({what})")


@dataclass(frozen=True)
class Curves:
    """The score (the class probability, or the view's :class:`Score`) against the fraction of pixels changed."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float


@dataclass(frozen=True)
class Faithfulness:
    """All the numbers for one image × map × class, and the score they were measured on."""

    curves: Curves
    average_drop: float
    increase: bool
    score: str = "class probability"


def random_map(shape: tuple[int, int], seed: int = 0) -> Tensor:
    """A uniform random map [h, w] in [0, 1): the chance baseline."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _upsampled(saliency: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(saliency[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]


def _scores(model: nn.Module, batch: Tensor, score: Score, batch_size: int) -> list[float]:
    out: list[float] = []
    with torch.no_grad():
        for i in range(0, batch.shape[0], batch_size):
            out.extend(score.of(model_logits(model, batch[i : i + batch_size]).float()).tolist())
    return out


def _score(cls: int | Score) -> Score:
    return cls if isinstance(cls, Score) else target_score(cls)


def _blurred(x: Tensor) -> Tensor:
    sigma = min(x.shape[-2:]) / 25
    radius = max(1, round(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def deletion_insertion(
    model: nn.Module,
    x: Tensor,
    saliency: Tensor,
    cls: int | Score,
    steps: int = 32,
    batch_size: int = 16,
    progress: Progress | None = None,
) -> Curves:
    """The deletion and insertion curves of ``saliency`` on the input ``x`` [1, C, H, W].

    ``cls`` is a class index (scored on its probability) or a :class:`Score` (see :func:`target_score`).
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"`x` must be one preprocessed image [1, C, H, W], got {tuple(x.shape)}")
    x = x.detach()
    height, width = x.shape[-2:]
    pixels = height * width
    order = torch.argsort(_upsampled(saliency.detach().cpu(), (height, width)).flatten(), descending=True, stable=True)
    order = order.to(x.device)
    counts = [round(i / steps * pixels) for i in range(steps + 1)]
    blurred = _blurred(x)
    deleted, inserted = [], []
    for count in counts:
        mask = torch.zeros(pixels, dtype=x.dtype, device=x.device)
        mask[order[:count]] = 1.0
        mask = mask.view(1, 1, height, width)
        deleted.append(x * (1 - mask))
        inserted.append(blurred * (1 - mask) + x * mask)
    scores = []
    for k, batch in enumerate((torch.cat(deleted), torch.cat(inserted))):
        scores.append(np.array(_scores(model, batch, _score(cls), batch_size)))
        if progress:
            progress(k + 1, 2)
    fractions = np.array(counts, dtype=float) / pixels
    return Curves(
        fractions,
        scores[0],
        scores[1],
        float(np.trapezoid(scores[0], fractions)),
        float(np.trapezoid(scores[1], fractions)),
    )


def confidence_change(model: nn.Module, x: Tensor, saliency: Tensor, cls: int | Score) -> tuple[float, bool]:
    """Average Drop (in %) and Increase in Confidence for one image, map and class (or :class:`Score`)."""
    up = _upsampled(saliency.detach().cpu(), (x.shape[-2], x.shape[-1])).to(x.device)
    top = float(up.max())
    mask = up / top if top > 0 else torch.zeros_like(up)
    y, o = _scores(model, torch.cat([x.detach(), x.detach() * mask]), _score(cls), 2)
    return max(0.0, y - o) / y * 100 if y > 0 else 0.0, o > y


def evaluate_map(
    model: nn.Module, x: Tensor, saliency: Tensor, cls: int | Score, steps: int = 32, progress: Progress | None = None
) -> Faithfulness:
    """Every faithfulness number for ``saliency`` (see the module docstring for the protocol).

    ``cls`` is a class index, scored on its probability, or the :class:`Score` of the map's view.
    """
    score = _score(cls)
    curves = deletion_insertion(model, x, saliency, score, steps, progress=progress)
    drop, increase = confidence_change(model, x, saliency, score)
    return Faithfulness(curves, drop, increase, score.label)


def verdict(cam: Faithfulness, chance: Faithfulness) -> str:
    """One line: on how many of the four measures ``cam`` beats the random map ``chance``.

    Better means a lower deletion AUC, a higher insertion AUC, a lower Average Drop, and an
    Increase in Confidence where the random map has none. Ties are not better.
    """
    wins = {
        "deletion": cam.curves.deletion_auc < chance.curves.deletion_auc,
        "insertion": cam.curves.insertion_auc > chance.curves.insertion_auc,
        "Average Drop": cam.average_drop < chance.average_drop,
        "Increase": cam.increase and not chance.increase,
    }
    won = [name for name, better in wins.items() if better]
    which = f" ({', '.join(won)})" if 0 < len(won) < len(wins) else ""
    return f"Better than a random map on {len(won)} of {len(wins)} measures{which}."

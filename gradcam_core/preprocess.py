"""Preprocessing for models outside torchvision's registry: resize (and crop), scale, normalise."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Preprocess", "describe", "parse_stats"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Preprocess:
    """Resize, scale to [0, 1] and normalise an image for a model that takes ``size`` = (height, width).

    With ``resize=None`` the whole image is resized to ``size`` (no crop), so a map covers the
    whole image. With ``resize=R`` the shorter side is resized to R and the centre ``size`` is
    cropped, as torchvision's ImageNet models expect (R = 256 for 224 × 224). With ``channels=1``
    the image is converted to grayscale first, for models trained on one channel.
    """

    def __init__(
        self,
        size: tuple[int, int],
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channels: int = 3,
        resize: int | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"`channels` must be 1 or 3, got {channels}")
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"`mean` and `std` need {channels} values each, got {len(mean)} and {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"every `std` value must be above 0, got {tuple(std)}")
        if min(size) < 1 or (resize is not None and resize < min(size)):
            raise ValueError(f"the input size {tuple(size)} must be positive, and `resize` at least its shorter side")
        self.size, self.mean, self.std = (int(size[0]), int(size[1])), tuple(mean), tuple(std)
        self.channels, self.resize = channels, resize

    def __call__(self, image: Image.Image) -> Tensor:
        """PIL image -> float tensor [channels, height, width]."""
        image = image.convert("L" if self.channels == 1 else "RGB")
        if self.resize is None:
            image = TF.resize(image, list(self.size), antialias=True)
        else:
            image = TF.center_crop(TF.resize(image, self.resize, antialias=True), list(self.size))
        # torchvision is untyped, so its result is Any.
        return cast(Tensor, TF.normalize(TF.to_tensor(image), list(self.mean), list(self.std)))

    def describe(self) -> str:
        """The preprocessing in words, e.g. "resize 256, centre crop 224×224, mean 0.485/0.456/0.406, std …"."""
        height, width = self.size
        steps = ["grayscale"] if self.channels == 1 else []
        if self.resize is None:
            steps.append(f"resize to {width}×{height} (the whole image)")
        else:
            steps.append(f"resize {self.resize}, centre crop {width}×{height}")
        return ", ".join([*steps, f"mean {_values(self.mean)}", f"std {_values(self.std)}"])

    def __repr__(self) -> str:
        crop = "" if self.resize is None else f", resize={self.resize} then centre crop"
        return f"Preprocess(size={self.size}{crop}, mean={self.mean}, std={self.std}, channels={self.channels})"


def _values(values: Sequence[float]) -> str:
    return "/".join(f"{float(v):.4g}" for v in values)


def describe(transform: Callable[[Image.Image], Tensor]) -> str:
    """A model's preprocessing in words, as reports show it.

    Reads :class:`Preprocess` and torchvision's ``ImageClassification`` transforms (resize, crop,
    interpolation, normalisation); anything else is described by its ``repr`` on one line.
    """
    if isinstance(transform, Preprocess):
        return transform.describe()
    fields: dict[str, Any] = {k: getattr(transform, k, None) for k in ("crop_size", "resize_size", "mean", "std")}
    if all(v is not None for v in fields.values()):
        crop, resize = list(fields["crop_size"]), list(fields["resize_size"])
        interpolation = getattr(transform, "interpolation", None)
        how = f" ({interpolation.value})" if interpolation is not None and hasattr(interpolation, "value") else ""
        return (
            f"resize {'×'.join(map(str, resize))}{how}, centre crop {crop[-1]}×{crop[0]}, "
            f"mean {_values(fields['mean'])}, std {_values(fields['std'])}"
        )
    return " ".join(repr(transform).split())


def parse_stats(text: str, what: str) -> tuple[float, ...]:
    """Normalisation values typed as "0.485, 0.456, 0.406" (or one value for every channel).

    Raises:
        ValueError: not one or three numbers, or a standard deviation that is not above 0.
    """
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        values = ()
    if len(values) not in (1, 3):
        raise ValueError(f"{what} must be one number, or three (R, G, B) separated by commas, got '{text}'")
    if what == "std" and min(values) <= 0:
        raise ValueError(f"every std value must be above 0, got '{text}'")
    return values

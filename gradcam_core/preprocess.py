"""Plain preprocessing for models outside torchvision's registry: resize, scale, normalise."""

from __future__ import annotations

from collections.abc import Sequence

import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PlainResize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PlainResize:
    """Resize the whole image to ``size`` (no centre crop), scale to [0, 1] and normalise.

    Map coordinates therefore cover the whole image. With ``channels=1`` the image is converted
    to grayscale first, for models trained on one channel.
    """

    def __init__(
        self,
        size: tuple[int, int],
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channels: int = 3,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"`channels` must be 1 or 3, got {channels}")
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"`mean` and `std` need {channels} values each, got {len(mean)} and {len(std)}")
        self.size, self.mean, self.std, self.channels = tuple(size), tuple(mean), tuple(std), channels

    def __call__(self, image: Image.Image) -> Tensor:
        """PIL image -> float tensor [channels, height, width]."""
        resized = TF.resize(image.convert("L" if self.channels == 1 else "RGB"), list(self.size), antialias=True)
        return TF.normalize(TF.to_tensor(resized), list(self.mean), list(self.std))

    def __repr__(self) -> str:
        return f"PlainResize(size={self.size}, mean={self.mean}, std={self.std}, channels={self.channels})"

"""What the registry holds per model: a :class:`ModelSpec`. It imports nothing else of the package.

So that modules which define a model (the bundled shapes model, :mod:`gradcam_core.demo.model`) can
describe it without importing the registry that lists them: :mod:`gradcam_core.models` imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image
from torch import Tensor, nn

__all__ = ["ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model.

    Attributes:
        name: the registry key.
        build: makes the architecture with random weights; accepts ``num_classes``.
        preprocess: PIL image -> float tensor [3, H, W].
        categories: the class names, in output order.
        default_layer: the layer explained unless the user picks another.
        input_size: the (height, width) the model is fed.
        resize: the shorter side the image is resized to before a centre crop of
            ``input_size``; ``None`` when the whole image is resized to ``input_size``.
        weights_url: where pretrained weights download from (``None``: not downloadable).
        weights_file: the pretrained weights' file; a bare name lives in the hub cache.
        convert: renames a state_dict's keys to the architecture's (weights saved under other names).
        install: the command that installs the pretrained weights, for weights that come in a
            package (``None``: they download, or ship with this package).
    """

    name: str
    build: Callable[..., nn.Module]
    preprocess: Callable[[Image.Image], Tensor]
    categories: tuple[str, ...]
    default_layer: str
    input_size: tuple[int, int]
    resize: int | None
    weights_url: str | None
    weights_file: str
    convert: Callable[[dict[str, Tensor], nn.Module], dict[str, Tensor]] | None = None
    install: str | None = None

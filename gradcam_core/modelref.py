"""A model named rather than held: what to load, so that another process (a Ray actor) can load it too.

A loaded TorchScript model cannot be pickled, and a model is best loaded where it runs; a
:class:`ModelRef` is small, picklable, and loads the same model wherever :meth:`ModelRef.load` is called.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from gradcam_core.labels import parse_labels
from gradcam_core.models import LoadedModel, from_torchscript, list_models, load_model
from gradcam_core.preprocess import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["ModelRef"]


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What to load: a registered model or a TorchScript file, its weights, labels and preprocessing.

    Attributes:
        model: a registry name (:func:`gradcam_core.list_models`) or a TorchScript file's path.
        weights: ``"pretrained"``, ``"random"`` or a state_dict's path (registered models only).
        labels: a file of class names (one per line, a JSON list or a JSON ``{index: name}``).
        input_size: (height, width) of the input, replacing the model's own (with the fields below).
        mean: normalisation mean per channel (default ImageNet's when any of these is given).
        std: normalisation std per channel.
        resize: the shorter side before the centre crop; ``0`` resizes the whole image to the input size.
    """

    model: str
    weights: str = "pretrained"
    labels: str | None = None
    input_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize: int | None = None

    def resolved(self) -> ModelRef:
        """This reference with its files (a TorchScript model, weights, labels) named by absolute paths."""

        def absolute(path: str) -> str:
            return str(Path(path).expanduser().resolve()) if Path(path).expanduser().exists() else path

        return replace(
            self,
            model=absolute(self.model) if self.scripted else self.model,
            weights=absolute(self.weights) if self.weights not in ("pretrained", "random") else self.weights,
            labels=absolute(self.labels) if self.labels else None,
        )

    @property
    def scripted(self) -> bool:
        """Whether :attr:`model` names a TorchScript file rather than a registered model."""
        return self.model not in list_models()

    def load(self, device: str | torch.device = "auto") -> LoadedModel:
        """Load the model (a TorchScript file always on the CPU).

        Raises:
            ValueError: for a model that is neither registered nor a file (or the weights' own errors).
        """
        if self.scripted and not Path(self.model).is_file():
            raise ValueError(
                f"the model must be a TorchScript file or one of {', '.join(list_models())}, got '{self.model}'"
            )
        labels = parse_labels(Path(self.labels).read_bytes()) if self.labels else None
        size = self.input_size or (224, 224)
        mean, std = self.mean or IMAGENET_MEAN, self.std or IMAGENET_STD
        resize: int | None = round(min(size) * 256 / 224) if self.resize is None else (self.resize or None)
        if self.scripted:
            return from_torchscript(self.model, categories=labels, input_size=size, mean=mean, std=std, resize=resize)
        loaded = load_model(self.model, self.weights, device=device, categories=labels)
        custom = self.input_size or self.mean or self.std or self.resize is not None
        return loaded.with_preprocessing(size, mean, std, resize) if custom else loaded

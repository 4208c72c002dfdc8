"""The "shapes-demo" classifier: its architecture, preprocessing and registry entry."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor, nn

from gradcam_core.demo.world import CATEGORIES, SIZE
from gradcam_core.preprocess import Preprocess
from gradcam_core.spec import ModelSpec

__all__ = ["DEMO_NAME", "SAMPLES_DIR", "WEIGHTS_FILE", "ShapesNet", "demo_spec"]

DEMO_NAME = "shapes-demo"
#: The committed weights, written by ``python -m gradcam_core.demo.train``.
WEIGHTS_FILE = Path(__file__).with_name("shapes_demo.pt")
#: The committed sample images shown in the app's picker.
SAMPLES_DIR = Path(__file__).with_name("samples")
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class ShapesNet(nn.Module):
    """Four conv/BN/ReLU blocks (max-pooling between them), global average pooling, a linear head.

    ``depths`` gives each block's number of conv/BN/ReLU steps: the last block has two, so that
    its units see 54 pixels of the input, a whole shape rather than one of its corners. At
    128×128 input the blocks give maps of 128, 64, 32 and 16 pixels a side; the last,
    ``features.block4``, is the default layer for heat-maps.
    """

    def __init__(
        self,
        num_classes: int = len(CATEGORIES),
        widths: tuple[int, ...] = (24, 48, 96, 96),
        depths: tuple[int, ...] = (1, 1, 1, 2),
    ) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = 3
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True), start=1):
            steps: list[nn.Module] = []
            for _ in range(depth):
                steps += [
                    nn.Conv2d(channels, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                channels = width
            layers[f"block{i}"] = nn.Sequential(*steps)
            if i < len(widths):
                layers[f"pool{i}"] = nn.MaxPool2d(2)
        self.features = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits [N, num_classes] for images [N, 3, H, W]."""
        # Module.__call__ returns Any; an annotation, not cast(), since the model must stay scriptable.
        logits: Tensor = self.head(torch.flatten(self.pool(self.features(x)), 1))
        return logits


def demo_spec() -> ModelSpec:
    """The registry entry: offline, with weights shipped in the package."""
    return ModelSpec(
        name=DEMO_NAME,
        build=ShapesNet,
        preprocess=Preprocess((SIZE, SIZE), MEAN, STD),
        categories=CATEGORIES,
        default_layer="features.block4",
        input_size=(SIZE, SIZE),
        resize=None,
        weights_url=None,
        weights_file=str(WEIGHTS_FILE),
    )

"""The backward pass starts below a linear head, or is skipped after global average pooling: taken where it is
exact, and the same gradients as from the logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.autograd.graph import GradientEdge
from torchvision import models

from gradcam_core.cam import _backward_start, _class_gradients, _forward, _pooled_gradients, compute_cam
from tests.efficientnet import registered


def _capture(model: nn.Module, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits and the engine's target tensor at ``layer``, from the engine's own recorded forward pass."""
    capture, logits = _forward(model, x, layer, fast=True)
    target, _ = capture.target()
    return logits, target


def _from_logits(logits: torch.Tensor, target: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Reference: the gradients [K, N, ...] of ``(scores[j] * logits).sum()``, one backward from the logits per j."""
    return torch.stack([torch.autograd.grad(logits, target, grad_outputs=row, retain_graph=True)[0] for row in scores])


def _frozen(model: nn.Module) -> nn.Module:
    return model.eval().requires_grad_(False)


ARCHITECTURES = [
    ("resnet18", lambda: _frozen(models.resnet18(num_classes=10)), "layer4"),
    ("vgg11", lambda: _frozen(models.vgg11(num_classes=10)), "features.18"),
    ("densenet121", lambda: _frozen(models.densenet121(num_classes=10)), "features.norm5"),
    ("mobilenet_v3_small, weights not frozen", lambda: models.mobilenet_v3_small(num_classes=10).eval(), "features"),
]


@pytest.mark.parametrize(("name", "build", "layer"), ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES])
def test_torchvision_heads_start_below_the_linear_layer_with_the_same_gradients(name, build, layer) -> None:
    model = build()
    x = torch.randn(2, 3, 64, 64)
    logits, target = _capture(model, x, layer)
    classes = torch.tensor([[3, 7, 1], [0, 9, 4]])  # K = 3 classes for each of N = 2 inputs
    against = torch.tensor([[5, 2, 8], [6, 1, 0]])
    start, _ = _backward_start(logits, classes, against, -1.0)
    assert isinstance(start, GradientEdge), f"{name}: the backward pass still starts at the logits"
    onehot = torch.zeros(3, *logits.shape)
    onehot.scatter_(2, classes.T[:, :, None], -1.0).scatter_(2, against.T[:, :, None], 1.0)
    expected = _from_logits(logits, target, onehot)
    got = _class_gradients(model, logits, target, classes, against, -1.0)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


class _BiasFromFeatures(nn.Module):
    """A head whose additive term depends on the features too: ``addmm(b(f), f, W.T)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.weight = nn.Parameter(torch.randn(4, 8))
        self.bias_net = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.pool(torch.relu(self.conv(x))).flatten(1)
        return torch.addmm(self.bias_net(f) ** 2, f, self.weight.t())


class _WeightFromFeatures(_BiasFromFeatures):
    """A bilinear head: the matrix the features are multiplied by depends on them, ``f @ (W · mean(f)).T``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.pool(torch.relu(self.conv(x))).flatten(1)
        return torch.mm(f, (self.weight * f.mean()).t())


@pytest.mark.parametrize("head", [_BiasFromFeatures, _WeightFromFeatures])
def test_a_head_with_another_path_back_to_the_layer_starts_at_the_logits(head: type[nn.Module]) -> None:
    model = _frozen(head())
    x = torch.randn(3, 3, 16, 16)
    logits, target = _capture(model, x, "conv")
    classes = torch.tensor([[1], [2], [3]])
    start, _ = _backward_start(logits, classes, None, 1.0)
    assert start is logits  # starting below the head would drop the other path's share of the gradient
    onehot = torch.zeros(1, *logits.shape).scatter_(2, classes.T[:, :, None], 1.0)
    expected = _from_logits(logits, target, onehot)
    torch.testing.assert_close(_class_gradients(model, logits, target, classes), expected)


def test_a_head_without_bias_starts_below_it() -> None:
    model = _frozen(
        nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5, bias=False))
    )
    x = torch.randn(2, 3, 12, 12)
    logits, target = _capture(model, x, "0")
    classes = torch.tensor([[4], [0]])
    start, _ = _backward_start(logits, classes, None, 1.0)
    assert isinstance(start, GradientEdge)
    onehot = torch.zeros(1, *logits.shape).scatter_(2, classes.T[:, :, None], 1.0)
    expected = _from_logits(logits, target, onehot)
    torch.testing.assert_close(_class_gradients(model, logits, target, classes), expected)


POOLED = {"resnet18": True, "vgg11": False, "densenet121": True, "mobilenet_v3_small, weights not frozen": False}


@pytest.mark.parametrize(("name", "build", "layer"), ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES])
def test_a_pooled_linear_head_needs_no_backward_pass(name, build, layer) -> None:
    """ResNet's and DenseNet's heads (pool, flatten, linear) are written down; VGG's and MobileNet's MLPs are not."""
    model = build()
    logits, target = _capture(model, torch.randn(2, 3, 64, 64), layer)
    classes = torch.tensor([[3, 7], [0, 9]])
    start, seeds = _backward_start(logits, classes, None, 1.0)
    pooled = _pooled_gradients(start, target, seeds)
    assert (pooled is not None) == POOLED[name], name
    onehot = torch.zeros(2, *logits.shape).scatter_(2, classes.T[:, :, None], 1.0)
    expected = _from_logits(logits, target, onehot)
    got = _class_gradients(model, logits, target, classes)
    assert (got.stride()[-1] == 0) == POOLED[name]  # written down: one value per channel, broadcast over h×w
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_the_real_model_starts_below_its_classifier_needs_no_backward_pass_and_its_maps_do_not_change() -> None:
    lm = registered()
    x = torch.randn(1, lm.channels, *lm.input_size, generator=torch.Generator().manual_seed(0))
    logits, target = _capture(lm.model, x, lm.default_layer)
    top = logits.argmax(1, keepdim=True)
    start, seeds = _backward_start(logits, top, None, 1.0)
    assert isinstance(start, GradientEdge)
    row = lm.model.classifier.weight[top[0, 0]]
    torch.testing.assert_close(seeds[0, 0], row)  # d logit_c / d features = W[c]
    pooled = _pooled_gradients(start, target, seeds)  # written down through the global average pool
    assert pooled is not None
    h, w = target.shape[-2:]
    torch.testing.assert_close(pooled[0, 0, :, 0, 0], row / (h * w))
    onehot = torch.zeros(1, *logits.shape).scatter_(2, top.T[:, :, None], 1.0)
    expected = _from_logits(logits, target, onehot)
    torch.testing.assert_close(_class_gradients(lm.model, logits, target, top), expected)


class _MeanOverRows(nn.Module):
    """Pooling over the channels and the rows, leaving the columns: not a global average over the map.

    On a 12×12 input there are as many channels as columns (10), so the shapes alone cannot tell.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 10, 3)
        self.fc = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(1, 2)))


@pytest.mark.parametrize(
    ("build", "layer"),
    [
        (
            lambda: nn.Sequential(
                nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5)
            ),
            "0",
        ),
        (_MeanOverRows, "conv"),
    ],
    ids=["a ReLU between the layer and the pooling", "a mean over other dimensions"],
)
def test_other_paths_from_the_pooling_to_the_layer_run_the_backward_pass(build, layer) -> None:
    model = _frozen(build())
    logits, target = _capture(model, torch.randn(2, 3, 12, 12), layer)
    classes = torch.tensor([[1], [2]])
    start, seeds = _backward_start(logits, classes, None, 1.0)
    assert isinstance(start, GradientEdge)
    assert _pooled_gradients(start, target, seeds) is None
    onehot = torch.zeros(1, *logits.shape).scatter_(2, classes.T[:, :, None], 1.0)
    expected = _from_logits(logits, target, onehot)
    torch.testing.assert_close(_class_gradients(model, logits, target, classes), expected)


def test_a_pooled_head_whose_weights_need_gradients_gives_plain_maps() -> None:
    """A user's module arrives with trainable weights: the written-down gradients must not carry the weights' graph."""
    model = models.resnet18(num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    logits, target = _capture(model, x, "layer4")
    start, seeds = _backward_start(logits, logits.argmax(1, keepdim=True), None, 1.0)
    assert _pooled_gradients(start, target, seeds) is not None  # the shortcut is the path under test
    result = compute_cam(model, x, "layer4")
    assert not any(t.requires_grad for t in (result.maps, result.logits, result.probabilities))  # "all detached"
    assert all(p.grad is None for p in model.parameters())
    assert float(result.maps.sum()) > 0

"""Guided backpropagation on networks worked out by hand, and the shared-model guarantees."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradcam_core.guided import guided_backprop, guided_gradcam
from tests.conftest import TinyNet, hook_count


def two_paths(relu: nn.Module) -> nn.Sequential:
    """x -> conv1x1 (weights 2, 3) -> relu -> conv1x1 (weights 1, -3) -> the one logit."""
    first, second = nn.Conv2d(1, 2, 1, bias=False), nn.Conv2d(2, 1, 1, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([2.0, 3.0]).view(2, 1, 1, 1))
        second.weight.copy_(torch.tensor([1.0, -3.0]).view(1, 2, 1, 1))
    return nn.Sequential(first, relu, second, nn.Flatten())


@pytest.mark.parametrize("relu", [nn.ReLU(), nn.ReLU(inplace=True), nn.ReLU6()], ids=["relu", "inplace", "relu6"])
def test_guided_gradients_worked_out_by_hand(relu: nn.Module) -> None:
    net = two_paths(relu).eval()
    x = torch.ones(1, 1, 1, 1)
    # Both hidden units are active (2 and 3, under 6): the plain gradient is 1·2 + (-3)·3 = -7. Guided,
    # the negative gradient (-3) at the second unit is stopped: 1·2 = 2.
    plain = torch.autograd.grad(net(x.requires_grad_(True)).sum(), x)[0]
    assert plain.item() == -7.0
    got = guided_backprop(net, torch.ones(1, 1, 1, 1), torch.tensor([0]))
    assert got.gradients.item() == 2.0 and got.warnings == ()
    # An input that drives the first unit past 6: ReLU6 passes no gradient there; ReLU does.
    x = torch.full((1, 1, 1, 1), 4.0)  # units 8 and 12
    expected = 0.0 if isinstance(relu, nn.ReLU6) else 2.0
    assert guided_backprop(net, x, torch.tensor([0])).gradients.item() == expected


def test_a_relu_applied_as_a_function_is_reported() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = two_paths(nn.ReLU())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(F.relu(x - 0.5))

    got = guided_backprop(Functional().eval(), torch.ones(1, 1, 1, 1), torch.tensor([0]))
    assert len(got.warnings) == 1 and "1 ReLU call(s)" in got.warnings[0] and "F.relu" in got.warnings[0]


def test_the_model_is_left_as_it_was_and_threads_do_not_mix(tiny: TinyNet) -> None:
    images = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    alone = [guided_backprop(tiny, images[i : i + 1]).gradients for i in range(4)]
    assert hook_count(tiny) == 0 and all(p.grad is None for p in tiny.parameters()) and not tiny.training
    out: dict[int, torch.Tensor] = {}
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for _ in range(5):
            out[n] = guided_backprop(tiny, images[n % 4 : n % 4 + 1]).gradients

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(8):
        torch.testing.assert_close(out[n], alone[n % 4])
    assert hook_count(tiny) == 0


def test_guided_gradcam_is_the_guided_gradients_times_the_upsampled_map() -> None:
    guided = torch.ones(1, 3, 4, 4)
    cam = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    got = guided_gradcam(guided, cam)
    assert got.shape == (1, 3, 4, 4)
    assert got[0, 0, 0, 0].item() == 0.0 and got[0, 2, 3, 3].item() == 3.0  # the corners keep the cells' values
    torch.testing.assert_close(got[:, 0], got[:, 1])


def test_gradient_views_drawn_by_hand() -> None:
    from gradcam_core import gradient_to_rgb

    g = torch.zeros(3, 2, 2)
    g[:, 0, 0] = 1.0  # positive in every channel
    g[:, 1, 1] = -1.0  # negative in every channel
    signed = gradient_to_rgb(g, "signed", vmax=3.0)
    assert signed[0, 0].tolist() == [178, 24, 43] and signed[1, 1].tolist() == [33, 102, 172]
    assert signed[0, 1].tolist() == [255, 255, 255]  # zero is white
    rgb = gradient_to_rgb(g, "rgb", vmax=1.0)
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[1, 1].tolist() == [0, 0, 0] and rgb[0, 1].tolist() == [128] * 3
    absolute = gradient_to_rgb(g, "absolute", "jet", vmax=1.0)
    assert absolute[0, 0].tolist() == absolute[1, 1].tolist() != absolute[0, 1].tolist()  # sign dropped
    with pytest.raises(ValueError, match="unknown gradient view"):
        gradient_to_rgb(g, "sideways")

"""The backward-pass matmul shortcuts give the same products as a plain ``mm``."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode

from gradcam_core import compute_cam
from gradcam_core.blocked_mm import BackwardMatmul, worth_rerouting


class _Log(TorchDispatchMode):
    """Records every op that reaches it: entered outside BackwardMatmul, it sees the ops the mode runs instead."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        shape = tuple(args[1].shape) if func is torch.ops.aten.mm.default else ()
        self.ops.append((str(func.overloadpacket), shape))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    ("rows", "zeros", "path"), [(1, 0.0, "plain"), (1, 0.6, "sparse"), (5, 0.6, "blocks"), (40, 0.0, "blocks")]
)
def test_products_match_plain_mm_by_the_path_they_should_take(rows: int, zeros: float, path: str) -> None:
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(1024, 4100, generator=gen)  # large and wide enough to be rerouted
    grad = torch.randn(rows, 1024, generator=gen)
    grad[:, torch.rand(1024, generator=gen) < zeros] = 0.0
    expected = grad @ weight
    log = _Log()
    with log, BackwardMatmul():
        got = torch.mm(grad, weight)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)
    products = [shape for op, shape in log.ops if op == "aten.mm"]
    if path == "plain":  # few zeros in a single row: the plain product is the fastest
        assert products == [(1024, 4100)]
    elif path == "sparse":  # a single row with many zeros reads only the weight rows that matter
        assert products == [] and any("sparse" in op for op, _ in log.ops)
    else:  # several rows: column blocks that stay in cache, the weights read once for all rows
        assert products == [(1024, 512)] * 8 + [(1024, 4)] and ("aten.cat", ()) in log.ops


def test_small_products_are_left_alone() -> None:
    a, b = torch.randn(3, 8), torch.randn(8, 9)
    with BackwardMatmul():
        assert torch.equal(torch.mm(a, b), a @ b)


_MODES: list[object] = []


class _Probe(torch.autograd.Function):
    """Identity that records, in its backward, the Python dispatch mode the backward runs under."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        _MODES.append(_get_current_dispatch_mode())
        return grad


class _Probed(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Probe.apply(x)


def _net(hidden: int) -> nn.Module:
    """Conv features (16 × 16 × 16 at 32 px), a probe after the target layer, and a two-layer head."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, stride=2),
        nn.ReLU(),
        _Probed(),
        nn.Flatten(),
        nn.Linear(16 * 16 * 16, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 5),
    ).eval()


@pytest.mark.parametrize(("hidden", "rerouted"), [(8, False), (1024, True)])
def test_the_mode_runs_only_for_models_with_a_matrix_it_can_reroute(hidden: int, rerouted: bool) -> None:
    """Every op of the backward pass goes through the mode: a small head gains nothing and pays for each op."""
    net = _net(hidden)  # 4096 × 1024 is the smallest weight rerouted (16 MB); 4096 × 8 is not
    assert worth_rerouting(net) is rerouted
    _MODES.clear()
    x = torch.randn(2, 3, 32, 32)
    result = compute_cam(net, x, "1", classes=[0, 3])
    assert [isinstance(mode, BackwardMatmul) for mode in _MODES] == [rerouted]
    with torch.enable_grad():
        acts = net[:2](x).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(net[2:](acts)[:, 3].sum(), acts)
    expected = torch.relu((grad.mean(dim=(2, 3))[:, :, None, None] * acts).sum(1))
    torch.testing.assert_close(result.maps[:, 1], expected.detach(), rtol=1e-5, atol=1e-6)


def test_worth_rerouting_looks_for_a_large_wide_weight_matrix() -> None:
    assert not worth_rerouting(nn.Sequential(nn.Conv2d(512, 4096, 3), nn.Linear(1280, 1000)))  # conv weights are 4-D
    assert not worth_rerouting(nn.Linear(2048, 4096))  # 8M elements, but only 2048 columns: never rerouted
    assert worth_rerouting(nn.Linear(25088, 4096))  # VGG's first classifier layer


def test_worth_rerouting_reads_the_products_the_backward_runs_from_the_graph() -> None:
    big, small = nn.Linear(4096, 1024), nn.Linear(1024, 5)
    x = torch.randn(2, 4096)
    with torch.no_grad():
        hidden = big(x)  # recorded after the big layer only, as compute_cam's forward is
    after = small(hidden.requires_grad_(True))
    model = nn.Sequential(big, small)
    assert worth_rerouting(model) and not worth_rerouting(model, after)  # the big matrix is not multiplied by
    assert worth_rerouting(model, model(x.requires_grad_(True)))  # a graph through it
    model.requires_grad_(False)
    assert worth_rerouting(model, model(x))  # frozen weights are multiplied by all the same
    assert worth_rerouting(model, nn.Sequential(nn.Flatten(0), nn.Unflatten(0, (2, 4096)), model)(x))  # deeper

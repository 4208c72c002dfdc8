"""The backward-pass matmul shortcuts give the same products as a plain ``mm``."""

from __future__ import annotations

import pytest
import torch

from gradcam_core.blocked_mm import BackwardMatmul


@pytest.mark.parametrize(("rows", "zeros"), [(1, 0.0), (1, 0.6), (5, 0.6), (40, 0.0)])
def test_products_match_plain_mm(rows: int, zeros: float) -> None:
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(1024, 4100, generator=gen)  # large and wide enough to be rerouted
    grad = torch.randn(rows, 1024, generator=gen)
    grad[:, torch.rand(1024, generator=gen) < zeros] = 0.0
    expected = grad @ weight
    calls: list[str] = []

    class Spy(BackwardMatmul):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            calls.append(str(func))
            return super().__torch_dispatch__(func, types, args, kwargs)

    with Spy():
        got = torch.mm(grad, weight)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)
    assert calls == ["aten.mm.default"]


def test_small_products_are_left_alone() -> None:
    a, b = torch.randn(3, 8), torch.randn(8, 9)
    with BackwardMatmul():
        assert torch.equal(torch.mm(a, b), a @ b)

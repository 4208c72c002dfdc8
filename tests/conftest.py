"""Shared fixtures: tiny seeded networks, hook counting, and the shared photo folder."""

from __future__ import annotations

import functools
import http.server
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

# Before torch loads: idle OpenMP threads sleep instead of spinning, as the app has them (app.py). With
# two test processes on two cores, spinning threads slowed some tests tenfold.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The app's workspaces (ui/workspace.py) go to a folder of this test run, never the user's data folder;
# the servers the browser tests start inherit it.
os.environ.setdefault("GRADCAM_DATA", tempfile.mkdtemp(prefix="gradcam-test-data-"))

import pytest
import torch
from torch import nn

SHARED = Path(__file__).resolve().parents[2] / "shared"


class TinyNet(nn.Module):
    """Conv-ReLU-Conv-ReLU(inplace) features, global average pooling and a linear head."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(6, 8, 3, padding=1, stride=2),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


def my_cnn(channels: int = 3, classes: int = 3) -> nn.Module:
    """Someone's own small CNN: layers with made-up names, a 3-class head."""
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            [
                ("stem", nn.Conv2d(channels, 8, 3, padding=1)),
                ("act", nn.ReLU()),
                ("deep_part", nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())),
                ("squash", nn.AdaptiveAvgPool2d(1)),
                ("flat", nn.Flatten()),
                ("decide", nn.Linear(16, classes)),
            ]
        )
    )


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same random state, so random-weight models are reproducible."""
    torch.manual_seed(0)


@pytest.fixture
def tiny() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet().eval()


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def hook_count(model: nn.Module) -> int:
    """All forward, pre-forward and backward hooks on every module of ``model``."""
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
        for m in model.modules()
    )


class Counter:
    """Counts the images a model's forward passes see (a pre-forward hook; remove ``handle`` after use)."""

    def __init__(self, model: nn.Module) -> None:
        self.images = 0
        self.handle = model.register_forward_pre_hook(self)

    def __call__(self, _module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self.images += args[0].shape[0]


@pytest.fixture
def shared_images() -> Path:
    folder = SHARED / "images"
    if not folder.is_dir():
        pytest.skip("../shared/images is not present on this machine")
    return folder


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where browser tests write their screenshots: ``SCREENSHOT_DIR``, or the test's own folder."""
    folder = Path(os.environ.get("SCREENSHOT_DIR", tmp_path / "shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server audit folder holding the audit of 30 clean and 10 tagged shapes scenes (and a broken image)."""
    from gradcam_core import DEMO_MODEL, audit
    from gradcam_core.demo.dataset import write_dataset

    root = tmp_path_factory.mktemp("audits")
    data = write_dataset(root / "shapes", clean=30, tagged=10)
    (data / "circle" / "broken.png").write_bytes(b"no image")
    (root / "audits").mkdir()
    audit(data, model=DEMO_MODEL, out=root / "audits" / "shapes.parquet", progress=False)
    return root / "audits"


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *_args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests in one group: with ``-n 2 --dist loadgroup`` (the README's command) they
    share a worker, one Chromium at a time, while the other worker runs the rest."""
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.xdist_group("browser"))

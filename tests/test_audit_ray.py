"""The audit on Ray: a local Ray gives the same file as the run here. Needs ``ray[data]`` (a test requirement)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import gradcam_core
from gradcam_core import DEMO_MODEL, audit, read_audit
from gradcam_core.demo.dataset import write_dataset
from tests.test_audit import ROOT, cli

ray = pytest.importorskip("ray", reason="ray[data] is not installed: pip install -r requirements-dev.txt")

# One worker runs these in order, so that the CLI's own Ray and the module's never run at once.
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """40 shapes scenes (with a broken image) and their audit made here, without Ray."""
    folder = write_dataset(tmp_path_factory.mktemp("ray") / "shapes", clean=32, tagged=8)
    (folder / "star" / "broken.jpg").write_bytes(b"not a jpeg")
    return folder, audit(folder, model=DEMO_MODEL, out=folder.parent / "here.parquet", batch_size=8, progress=False)


def assert_same_audit(got: Path, want: Path) -> None:
    a, b = read_audit(got), read_audit(want)
    assert a.frame.columns.tolist() == b.frame.columns.tolist()
    assert a.frame["path"].tolist() == b.frame["path"].tolist()
    exact = ["label", "true_index", "pred_index", "pred_name", "correct", "peak_x", "peak_y", "error", "layer"]
    assert a.frame[exact].equals(b.frame[exact])
    for name in ("true_prob", "pred_prob", "border_mass", "hot_mass", "entropy"):
        np.testing.assert_allclose(a.frame[name], b.frame[name], rtol=1e-5, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(a.maps, b.maps, rtol=1e-5, atol=1e-7)
    assert a.meta["model"] == b.meta["model"] and a.meta["layers"] == b.meta["layers"]


def test_the_cli_on_a_local_ray_writes_the_same_file(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    folder, here = dataset
    out = tmp_path / "ray.parquet"
    args = ("--model", DEMO_MODEL, "--out", str(out), "--batch-size", "8", "--ray", "local", "--actors", "2")
    run = cli("audit", str(folder), *args, timeout=240)  # a hang fails here instead of stalling CI
    assert run.returncode == 1, run.stderr  # broken.jpg
    assert "wrote 41 rows" in run.stderr and "Traceback" not in run.stderr
    assert_same_audit(out, here)


def test_without_ray_the_cli_says_how_to_install_it(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None; from gradcam_core.cli import main; "
        f"sys.exit(main(['audit', {str(dataset[0])!r}, '--model', {DEMO_MODEL!r}, "
        f"'--out', {str(tmp_path / 'o.parquet')!r}, '--ray', 'local']))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and 'pip install "ray[data]' in run.stderr and "Traceback" not in run.stderr


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One Ray on this machine with 2 CPUs, for the module's API tests."""
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
        runtime_env={"py_modules": [gradcam_core]},
    )  # fmt: skip
    try:
        yield
    finally:
        ray.shutdown()


def test_the_api_on_a_running_ray_gives_the_same_file(
    local_ray: None, dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, here = dataset
    out = audit(folder, model=DEMO_MODEL, out=tmp_path / "o.parquet", batch_size=8, ray="auto", actors=2)
    assert_same_audit(out, here)
    assert ray.is_initialized()  # a Ray it did not start is left running


def test_asking_for_a_gpu_the_cluster_lacks_fails_at_once(
    local_ray: None, dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="this Ray cluster has 0: drop --gpus-per-actor"):
        audit(dataset[0], model=DEMO_MODEL, out=tmp_path / "o.parquet", ray="auto", gpus_per_actor=1)

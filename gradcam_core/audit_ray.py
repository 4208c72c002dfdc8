"""The audit on a Ray cluster: the same :class:`gradcam_core.auditor.Auditor`, one per actor.

The items are listed on the driver and become Ray Data blocks there (no read tasks, which would
wait for CPUs that the actors hold). ``map_batches`` runs :class:`_RayAuditor`, a class-based UDF
in an ``ActorPoolStrategy``: each actor loads the model once, from its :class:`ModelRef`, where it
runs (a TorchScript model cannot be pickled), with ``num_gpus`` when asked. The driver gets the
tables back and writes them, as in the local run.

Ray is an optional extra: ``pip install "ray[data]"`` (or ``pip install -e ".[ray]"``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

import gradcam_core
from gradcam_core.auditor import Auditor
from gradcam_core.datasets import Item
from gradcam_core.modelref import ModelRef

__all__ = ["RAY_INSTALL", "run_on_ray"]

RAY_INSTALL = 'pip install "ray[data]>=2.60"  (or: pip install -e ".[ray]")'
_WAIT_FOR_ACTORS_S = 120  # an actor asking for a GPU the cluster lacks would wait for ever: fail instead


class _RayAuditor:
    """The UDF: an :class:`Auditor` built in the actor, called once per batch."""

    def __init__(self, ref: ModelRef, layers: Sequence[str], method: str, threads: int, gpu: bool) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.auditor = Auditor(ref.load("cuda" if gpu else "cpu"), layers, method)

    def __call__(self, batch: Mapping[str, Any]) -> pa.Table:
        return self.auditor(batch)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RuntimeError(f"--ray needs Ray Data, which is not installed: {RAY_INSTALL}") from None
    return ray


def run_on_ray(
    ref: ModelRef,
    layers: Sequence[str],
    method: str,
    items: Sequence[Item],
    *,
    batch_size: int,
    address: str = "local",
    actors: int | None = None,
    cpus_per_actor: float = 1,
    gpus_per_actor: float = 0,
    progress: bool = True,
) -> Iterator[pa.Table]:
    """Explain ``items`` on Ray and yield the result tables as they come back.

    Args:
        ref: the model, loaded in each actor.
        layers: the layers to explain at.
        method: a key of :data:`gradcam_core.METHODS`.
        items: the dataset's items to explain.
        batch_size: images per batch given to an actor.
        address: ``"local"`` starts a Ray on this machine (and stops it after); ``"auto"`` joins the
            cluster this machine belongs to (``ray start --head``); else a cluster's address
            (``ray://host:10001`` or ``host:6379``). A Ray already started in this process is used as it is.
        actors: how many actors (models) to run: default, as many as the cluster's CPUs (GPUs,
            when ``gpus_per_actor`` is given) allow.
        cpus_per_actor: CPUs reserved by each actor; its torch threads.
        gpus_per_actor: GPUs reserved by each actor (then the model runs on CUDA).
        progress: show Ray Data's progress bars.
    """
    ray = _ray()
    if not items:
        return
    started = False
    if not ray.is_initialized():
        quiet: dict[str, Any] = {
            "logging_level": logging.WARNING, "log_to_driver": False, "include_dashboard": False,
            "runtime_env": {"py_modules": [gradcam_core]},  # the workers do not see this process's sys.path
        }  # fmt: skip
        if address == "local":
            ray.init(num_cpus=os.cpu_count() or 1, **quiet)
        else:
            ray.init(address=address, **quiet)
        started = True
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        resources = ray.cluster_resources()
        if gpus_per_actor > resources.get("GPU", 0):
            raise RuntimeError(
                f"each actor asks for {gpus_per_actor:g} GPU(s), but this Ray cluster has "
                f"{resources.get('GPU', 0):g}: drop --gpus-per-actor, or join a cluster with GPUs"
            )
        if actors is None:
            cpus = int(resources.get("CPU", 1) // max(cpus_per_actor, 1e-9))
            gpus = int(resources.get("GPU", 0) // gpus_per_actor) if gpus_per_actor else cpus
            actors = max(1, min(cpus, gpus))
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        context.wait_for_min_actors_s = _WAIT_FOR_ACTORS_S
        rows = [i.row() for i in items]
        # Blocks of a few batches: results (and resumable parts) come back often, and the actors stay busy.
        blocks = max(1, min(math.ceil(len(rows) / batch_size), actors * 32))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            _RayAuditor,
            fn_constructor_kwargs={
                "ref": ref,
                "layers": list(layers),
                "method": method,
                "threads": max(1, round(cpus_per_actor)),
                "gpu": gpus_per_actor > 0,
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus_per_actor,
            num_gpus=gpus_per_actor or None,
        )
        try:
            yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")
        except ray.exceptions.RayError as exc:  # an actor died, a task failed: say so plainly
            raise RuntimeError(f"the Ray run failed ({type(exc).__name__}): {str(exc).splitlines()[0]}") from exc
    finally:
        if started:
            ray.shutdown()

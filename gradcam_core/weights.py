"""Finding, downloading and reading weight files, with errors that say what to do."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from gradcam_core.progress import Progress

__all__ = [
    "CheckpointError",
    "Progress",
    "WeightsUnavailable",
    "download",
    "expected_hash_prefix",
    "hub_checkpoint_dir",
    "read_state_dict",
    "remap_legacy_keys",
    "sha256_of",
    "strict_load",
]


_CHUNK = 1 << 20


class WeightsUnavailable(RuntimeError):  # noqa: N818 - the name is part of the public API
    """Pretrained weights are neither on this machine nor downloadable; the message says how to add them."""


class CheckpointError(ValueError):
    """A weights file is unreadable, unsafe, or does not fit the architecture."""


def hub_checkpoint_dir() -> Path:
    """The folder torchvision reads and writes pretrained weights in (honours ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, progress: Progress | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically, reporting progress and checking the hash in its name.

    torchvision names its files ``<arch>-<first hex digits of the SHA-256>.pth``; when ``dest``
    has such a suffix, the download is verified against it.

    Raises:
        WeightsUnavailable: the download failed or the file's hash does not match its name.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            if progress:
                progress(done, total)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        expected = expected_hash_prefix(dest.name)
        if expected and not digest.hexdigest().startswith(expected):
            raise WeightsUnavailable(
                f"the downloaded {dest.name} is corrupt (SHA-256 {digest.hexdigest()[:12]}…, expected "
                f"{expected}…); try again"
            )
        tmp.replace(dest)
    except (urllib.error.URLError, OSError) as exc:
        raise WeightsUnavailable(f"could not download {url}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def expected_hash_prefix(filename: str) -> str | None:
    """The SHA-256 prefix in a torchvision-style file name (``vgg19-dcbb9e9d.pth`` -> ``dcbb9e9d``)."""
    match = re.search(r"-([0-9a-f]{8,64})\.pth?$", filename)
    return match.group(1) if match else None


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Read a state_dict safely with ``torch.load(..., weights_only=True)``.

    Accepts a bare state_dict or one wrapped under ``"state_dict"`` or ``"model"`` (as training
    scripts save them), and strips a ``"module."`` prefix left by ``DataParallel``.

    Raises:
        CheckpointError: the file is missing, not a PyTorch checkpoint, holds anything but
            tensors (a pickle that could run code is refused, never executed), or holds no weights.
    """
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at '{path}'")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):
            raise CheckpointError(
                f"'{path.name}' is not a readable PyTorch checkpoint (its data is not a pickle)"
            ) from exc
        raise CheckpointError(
            f"'{path.name}' was refused: it contains Python objects other than tensors, which could run "
            "code when loaded. Save the weights with torch.save(model.state_dict(), path)"
        ) from exc
    except Exception as exc:  # damaged files raise many types here (KeyError, RuntimeError, EOFError, ...)
        raise CheckpointError(f"'{path.name}' is not a readable PyTorch checkpoint ({exc!r})") from exc
    for key in ("state_dict", "model"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
    if not isinstance(data, Mapping) or not data or not all(isinstance(v, Tensor) for v in data.values()):
        raise CheckpointError(f"'{path.name}' does not hold a state_dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in data.items()}


def strict_load(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Load ``state`` into ``model``, requiring every key and shape to match.

    Raises:
        CheckpointError: names the first missing, unexpected and wrongly shaped keys.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = [
            f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''} ({len(keys)} in all)"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong))
            if keys
        ]
        raise CheckpointError(
            f"{source} does not fit the {type(model).__name__} architecture; "
            + "; ".join(parts)
            + ". Check that the file was saved from the same model."
        )
    model.load_state_dict(state)


_LEGACY_DENSENET = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def remap_legacy_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename old DenseNet keys (``norm.1.weight`` -> ``norm1.weight``), as torchvision's own loader does."""
    return {(_LEGACY_DENSENET.sub(r"\1\2", k)): v for k, v in state.items()}

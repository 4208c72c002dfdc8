"""Forward hooks that live for one call and see only the calling thread.

A model cached by the app is shared by every session, and each session runs in its own
thread. A hook registered by one call must therefore ignore forward passes that other threads
run on the same model at the same time: each hook here checks the thread it was made for.
Hooks are removed when the ``with`` block ends, whether it succeeds or raises.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["HookFn", "forward_hook", "model_device"]

#: ``fn(module, output) -> replacement or None``, as for ``register_forward_hook``.
HookFn = Callable[[nn.Module, Any], Any]


@contextmanager
def forward_hook(
    module: nn.Module,
    fn: Callable[..., Any],
    *,
    before: Callable[[nn.Module, Any], None] | None = None,
    with_args: bool = False,
) -> Iterator[None]:
    """Run ``fn`` on ``module``'s output for forward passes made by this thread, inside the block.

    Args:
        module: the module to watch.
        fn: ``fn(module, output)`` (a :data:`HookFn`), or ``fn(module, args, output)`` with
            ``with_args``; a value it returns replaces the output.
        before: ``before(module, args)``, run as the module is called (a forward pre-hook).
        with_args: pass the call's positional arguments to ``fn`` too.
    """
    owner = threading.get_ident()

    def hook(mod: nn.Module, args: Any, output: Any) -> Any:
        if threading.get_ident() != owner:
            return None
        return fn(mod, args, output) if with_args else fn(mod, output)

    def pre_hook(mod: nn.Module, args: Any) -> None:
        if before is not None and threading.get_ident() == owner:
            before(mod, args)

    handles = [module.register_forward_hook(hook)]
    try:
        if before is not None:
            handles.append(module.register_forward_pre_hook(pre_hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (the CPU for a model with neither)."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if first is None else first.device

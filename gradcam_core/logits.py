"""Reading the logits out of whatever a model returns: one place for the engine, Score-CAM, metrics and CLI."""

from __future__ import annotations

from typing import Any, TypeGuard, cast

from torch import Tensor, nn

__all__ = ["find_logits", "model_logits"]


def find_logits(output: Any, n: int) -> Tensor:
    """The logits [N, num_classes] in a model's output.

    That is the output itself, the first such tensor of a tuple (as with auxiliary outputs), or a
    dict's ``"logits"`` or ``"out"`` entry.

    Raises:
        ValueError: no [N, num_classes] tensor is found, saying how to wrap the model.
    """

    def fits(t: Any) -> TypeGuard[Tensor]:
        return isinstance(t, Tensor) and t.dim() == 2 and t.shape[0] == n

    if fits(output):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if fits(item):
                return item
    if isinstance(output, dict):
        for key in ("logits", "out"):
            if fits(output.get(key)):
                return cast(Tensor, output[key])  # the entry fits() just checked
        raise ValueError(
            f"the model returns a dict with keys {', '.join(map(str, output))} and none is 'logits' [N, "
            "num_classes]: wrap the model so that it returns the logits tensor"
        )
    shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
    raise ValueError(f"the model must return logits [N, num_classes], got {shape}: wrap it so that it does")


def model_logits(model: nn.Module, x: Tensor) -> Tensor:
    """Run ``model`` on the batch ``x`` and return its logits [N, num_classes] (see :func:`find_logits`)."""
    return find_logits(model(x), x.shape[0])

"""A workspace's quotas and lifetime, from environment variables or the app's secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: (setting, environment variable, default): the defaults the README states.
_FIELDS = (
    ("max_bytes", "GRADCAM_WORKSPACE_MB", 1024),
    ("max_panels", "GRADCAM_WORKSPACE_PANELS", 200),
    ("expiry_days", "GRADCAM_WORKSPACE_DAYS", 30),
)


@dataclass(frozen=True)
class Limits:
    """What one workspace may hold, and how long it lasts unused.

    Attributes:
        max_bytes: the bytes of uploads, models and panels a workspace may reference (each distinct
            file counted once).
        max_panels: the panels its board may hold.
        expiry_days: days after its last change when a workspace (and its shared board) is deleted
            by :meth:`workspaces.Store.cleanup`.
    """

    max_bytes: int = 1024 * 2**20
    max_panels: int = 200
    expiry_days: float = 30.0

    @classmethod
    def from_settings(cls, env: Mapping[str, str], secrets: Mapping[str, Any] | None = None) -> Limits:
        """Read the limits from ``secrets`` (``workspace_mb``, ``workspace_panels``, ``workspace_days``), then ``env``.

        Raises:
            ValueError: a value is not a positive number (the message names the setting).
        """
        values: dict[str, float] = {}
        for field, var, default in _FIELDS:
            key = "workspace_" + var.removeprefix("GRADCAM_WORKSPACE_").lower()
            raw = (secrets or {}).get(key, env.get(var, default))
            try:
                number = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{var} (or {key} in secrets) must be a number, not {raw!r}") from None
            if not number > 0:
                raise ValueError(f"{var} (or {key} in secrets) must be above 0, not {raw!r}")
            values[field] = number
        return cls(int(values["max_bytes"] * 2**20), int(values["max_panels"]), values["expiry_days"])

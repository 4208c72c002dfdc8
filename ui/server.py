"""The server's own settings: ``.streamlit/secrets.toml`` or environment variables, read the same way by every page.

A key in ``secrets.toml`` wins over its environment variable; the defaults suit one person's
machine, and the README says how to lock down a shared server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st


def secrets() -> dict[str, Any]:
    """The server's secrets as a plain dict (empty when no secrets.toml exists anywhere)."""
    try:
        return dict(st.secrets)
    except (FileNotFoundError, KeyError, AttributeError, st.errors.StreamlitSecretNotFoundError):
        return {}


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class ServerSettings:
    """What this server allows and how much it keeps in memory.

    Attributes:
        model_uploads: whether "Your model" is offered (TorchScript files run the code they hold;
            turn this off on a server shared with people you do not trust). Off, the control is not
            drawn and the upload path refuses.
        max_model_mb: the largest model file accepted, in MB.
        model_cache_entries: how many loaded models the process keeps.
        model_cache_mb: how many MB of weights (parameters and buffers) the kept models may hold together.
    """

    model_uploads: bool = True
    max_model_mb: int = 600
    model_cache_entries: int = 3
    model_cache_mb: int = 2048

    @classmethod
    def read(cls, env: Mapping[str, str] | None = None, secrets_: Mapping[str, Any] | None = None) -> ServerSettings:
        """The settings from ``secrets_`` (``model_uploads``, …), then ``env`` (``GRADCAM_MODEL_UPLOADS``, …).

        Raises:
            ValueError: a value is not of its kind (the message names the setting and its variable).
        """
        env = os.environ if env is None else env
        secrets_ = secrets() if secrets_ is None else secrets_
        values: dict[str, Any] = {}
        for name, default in ((f, getattr(cls, f)) for f in cls.__dataclass_fields__):
            var = f"GRADCAM_{name.upper()}"
            raw = secrets_.get(name, env.get(var, default))
            where = f"{var} (or {name} in secrets.toml)"
            if isinstance(default, bool):
                text = str(raw).strip().lower()
                if text not in _TRUE | _FALSE:
                    raise ValueError(f"{where} must be true or false, not {raw!r}")
                values[name] = text in _TRUE
                continue
            try:
                number = int(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{where} must be a whole number, not {raw!r}") from None
            if number < 1:
                raise ValueError(f"{where} must be at least 1, not {raw!r}")
            values[name] = number
        return cls(**values)


@st.cache_resource(show_spinner=False)
def settings() -> ServerSettings:
    """This process's settings, read once (a bad value stops the app at start with its message)."""
    return ServerSettings.read()

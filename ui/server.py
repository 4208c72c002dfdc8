"""The server's own settings: ``.streamlit/secrets.toml``, read the same way by every page."""

from __future__ import annotations

from typing import Any

import streamlit as st


def secrets() -> dict[str, Any]:
    """The server's secrets as a plain dict (empty when no secrets.toml exists anywhere)."""
    try:
        return dict(st.secrets)
    except (FileNotFoundError, KeyError, AttributeError, st.errors.StreamlitSecretNotFoundError):
        return {}

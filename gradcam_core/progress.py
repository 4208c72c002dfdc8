"""The progress callback that long-running calls take."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress"]

#: ``progress(done, total)``, called as work advances: masked forward passes (Score-CAM), curves
#: (faithfulness) or bytes (a download, whose ``total`` is 0 when the server does not say). Score-CAM
#: lets it raise to stop the run.
Progress = Callable[[int, int], None]

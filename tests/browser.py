"""Helpers for real-browser tests: a `streamlit run` server on loopback and Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def require_browser() -> None:
    """Skip (or fail, when REQUIRE_BROWSER=1) unless Playwright and Chromium are both here."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if problem is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problem = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if problem:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class AppServer:
    """A running ``streamlit run app.py``: its base URL and its process."""

    base: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """``kill -9``: the process gets no chance to flush or shut down."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@contextmanager
def app_server(log: Path, env: dict[str, str] | None = None) -> Iterator[AppServer]:
    """Run the app on a free loopback port until it answers its health check; stop it by PID afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if urllib.request.urlopen(f"{base}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    time.sleep(0.3)
            else:
                raise RuntimeError(f"streamlit did not start; see {log}")
            yield AppServer(base, proc)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


@contextmanager
def streamlit_server(log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run the app on a free loopback port; yield its base URL; stop it by PID."""
    with app_server(log, env) as server:
        yield server.base


def upload_on_explain(page: Any, base: str, photo: Path) -> None:
    """Open Explain as a newcomer, wait for its first map, and upload ``photo`` through the sidebar's uploader."""
    from playwright.sync_api import expect

    page.goto(f"{base}/Explain")
    expect(page.get_by_text("Raw map at the layer")).to_be_visible(timeout=90_000)
    settle(page)
    side = page.locator('[data-testid="stSidebar"]')
    uploader = side.locator('[data-testid="stFileUploader"]', has_text="Or upload images")
    uploader.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))


def watched_page(browser: Any, width: int = 1400, height: int = 1100) -> tuple[Any, list[str], list[str]]:
    """A new page, and the lists it fills: requests that leave the machine, and JavaScript errors."""
    page = browser.new_page(viewport={"width": width, "height": height})
    external: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if is_loopback(r.url) else external.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, external, errors


def is_loopback(url: str) -> bool:
    """Whether a request stays on this machine (data: and blob: URLs never leave the page)."""
    parsed = urlparse(url)
    return parsed.scheme in ("data", "blob", "about") or parsed.hostname in ("127.0.0.1", "localhost", "::1")


def settle(page: object) -> None:
    """Wait until Streamlit has stopped running, no element is left from the run before, and every image has decoded.

    The running icon can lag the run's first elements, so a run's stale elements (``data-stale``) are waited out too.
    """
    page.wait_for_timeout(300)  # type: ignore[attr-defined]
    page.wait_for_selector('[data-testid="stStatusWidgetRunningIcon"]', state="detached", timeout=60_000)  # type: ignore[attr-defined]
    page.wait_for_selector('[data-testid="stElementContainer"][data-stale="true"]', state="detached", timeout=60_000)  # type: ignore[attr-defined]
    # Every image has loaded or failed. A failed one is a media file that Streamlit dropped between two runs
    # (streamlit/streamlit#4825, seen here under load): waiting longer never brings it, so it is named, not awaited.
    page.wait_for_function("() => [...document.images].every(i => i.complete)")  # type: ignore[attr-defined]
    broken = page.evaluate(  # type: ignore[attr-defined]
        "() => [...document.images].filter(i => i.naturalWidth === 0).map(i => i.src.slice(0, 80))"
    )
    if broken:
        print(f"settle: images that failed to load: {broken}")


def choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` as a person does in a long list: open it, type, click."""
    page.get_by_role("combobox", name=label).click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).click()


def screenshot(page: object, path: Path) -> None:
    """A screenshot of the whole app: grow the viewport to the content, since Streamlit scrolls inside."""
    height = page.evaluate(  # type: ignore[attr-defined]
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], section')]"
        ".map(e => e.scrollHeight), 900)"
    )
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 40, 6000)})  # type: ignore[attr-defined]
    settle(page)
    page.screenshot(path=str(path))  # type: ignore[attr-defined]

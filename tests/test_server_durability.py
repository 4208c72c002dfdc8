"""Workspaces through the real server (``streamlit run``) and a real browser: a ``kill -9`` loses nothing the app
acknowledged, and many sessions writing at once lose nothing, cross nothing, and never see "database is locked"."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser import ARGS, CHROMIUM, app_server, choose, require_browser, settle
from workspaces import Store

pytestmark = pytest.mark.browser

#: What no user may ever read on a page: a storage failure, a refused change, or a traceback.
FAILURES = ("database is locked", "was not saved", "Not pinned", "Not removed", "is busy")


def workspace_of(page: Any) -> str:
    """The workspace id the page's link carries (once the run that made it has put it there)."""
    page.wait_for_function("() => new URLSearchParams(location.search).has('ws')", timeout=60_000)
    return parse_qs(urlparse(page.url).query)["ws"][0]


def assert_clean(page: Any) -> None:
    """No exception box and no storage failure on the page."""
    assert page.locator('[data-testid="stException"]').count() == 0
    text = page.locator("body").inner_text()
    assert not [f for f in FAILURES if f in text], text[:2000]


#: Records every toast a page shows (a toast is gone after a few seconds, maybe before it was looked for).
TOAST_LOG = """
window.__toasts = [];
new MutationObserver(() => document.querySelectorAll('[data-testid="stToast"]').forEach(t => {
  if (!window.__toasts.includes(t.innerText)) window.__toasts.push(t.innerText);
})).observe(document, {subtree: true, childList: true, characterData: true});
"""


def new_page(browser: Any) -> Any:
    """A page in a context of its own (another person, or another tab with no shared cookies), logging toasts."""
    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    page.add_init_script(TOAST_LOG)
    return page


def acknowledged(page: Any, *panels: int) -> None:
    """Wait for the app's acknowledgment of a pin: the toast, sent after the panel was committed, naming the
    board's size (one of ``panels``: two tabs on one workspace may pin between each other's runs)."""
    try:
        page.wait_for_function(
            "counts => window.__toasts.some(t => counts.some(c =>"
            " t.includes(`to the board (${c} panel${c === 1 ? '' : 's'})`)))",
            arg=list(panels),
            timeout=90_000,
        )
    except Exception as exc:  # say what the page did say
        seen = page.evaluate("window.__toasts")
        raise AssertionError(f"no pin acknowledged with {panels} panels at {page.url}; toasts: {seen}") from exc
    settle(page)


def pin(page: Any, panels: int) -> None:
    """Pin the map shown, and wait until the app says it was pinned."""
    page.get_by_role("button", name="Pin to board").click()
    acknowledged(page, panels)


def test_every_acknowledged_change_survives_a_kill_9(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    data = tmp_path / "data"
    env = {"GRADCAM_DATA": str(data)}
    acknowledged: list[tuple[str, str]] = []  # the panels the app said it pinned: (image, method)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = new_page(browser)
        with app_server(tmp_path / "before.log", env) as server:
            page.goto(f"{server.base}/Explain?model=shapes-demo&sample=circle")
            expect(page.get_by_text("Raw map at the layer")).to_be_visible(timeout=90_000)
            settle(page)
            pin(page, 1)
            acknowledged.append(("circle.png", "gradcam"))
            for sample, method in (("cross", "gradcam"), ("tagged circle called star", "layercam")):
                choose(page, "Sample image", sample)
                settle(page)
                if method != "gradcam":
                    choose(page, "Method", "LayerCAM (Jiang et al., IEEE TIP 2021)")
                    settle(page)
                pin(page, len(acknowledged) + 1)
                acknowledged.append((sample.replace(" ", "_") + ".png", method))
            ws = workspace_of(page)
            page.locator('[data-testid="stSidebarNav"] a', has_text="Board").click()
            title = page.get_by_role("textbox", name="Report title")
            title.fill("Before the kill")
            title.press("Enter")
            settle(page)
            note = page.get_by_role("textbox", name="Note").first
            note.fill("The circle, seen whole.")
            page.get_by_text("Normalisation", exact=True).click()  # a text area commits when it loses the focus
            settle(page)
            page.locator('[data-testid="stSidebarNav"] a', has_text="Explain").click()
            settle(page)
            choose(page, "Sample image", "star")
            settle(page)  # the run that made star current has ended: its change was saved before that
            assert_clean(page)
            page.get_by_role("button", name="Pin to board").click()  # in flight when the server dies
            server.kill()
        assert server.process.returncode == -9
        with app_server(tmp_path / "after.log", env) as again:
            page.goto(f"{again.base}/Explain?ws={ws}")
            expect(page.get_by_text("Raw map at the layer")).to_be_visible(timeout=90_000)
            settle(page)
            expect(page.get_by_role("combobox", name="Sample image")).to_have_value("star")
            expect(page.get_by_role("combobox", name="Method")).to_have_value("LayerCAM (Jiang et al., IEEE TIP 2021)")
            page.locator('[data-testid="stSidebarNav"] a', has_text="Board").click()
            settle(page)
            expect(page.get_by_role("textbox", name="Report title")).to_have_value("Before the kill")
            expect(page.get_by_role("textbox", name="Note").first).to_have_value("The circle, seen whole.")
            assert_clean(page)
            shown = page.locator('[data-testid="stCaptionContainer"]', has_text="panel").first.inner_text()
        browser.close()
    rows = Store(data).open(ws).panels()
    found = [(r.record["image_name"], r.record["method"]) for r in rows]
    # Every acknowledged panel, in order; the pin in flight at the kill may or may not have been committed.
    assert found[: len(acknowledged)] == acknowledged and len(found) - len(acknowledged) in (0, 1), found
    assert found[len(acknowledged) :] in ([], [("star.png", "layercam")])
    assert shown.startswith(f"{len(found)} panel")
    changes = len(acknowledged) + 4  # the pins, the title, the note, the method and the current image
    print(f"kill -9: {changes} acknowledged changes ({len(acknowledged)} pins), all {changes} found after the restart; "
          f"the pin in flight was {'kept' if len(found) > len(acknowledged) else 'not committed'}")  # fmt: skip


#: Each session's own view: a shapes scene and a method, none the same as another's.
SESSIONS = [
    ("circle", "gradcam"), ("cross", "gradcam"), ("square", "gradcam"), ("star", "gradcam"),
    ("triangle", "gradcam"), ("tagged circle called star", "gradcam"), ("tagged cross called star", "gradcam"),
    ("tagged square called star", "gradcam"), ("two shapes circle triangle", "layercam"), ("circle", "layercam"),
]  # fmt: skip
PINS = 3


def test_ten_sessions_writing_at_once_lose_nothing_and_cross_nothing(tmp_path: Path) -> None:
    """8 sessions with their own workspaces and 2 on one, pinning at the same moments through the real server."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    data = tmp_path / "data"
    with app_server(tmp_path / "server.log", {"GRADCAM_DATA": str(data)}) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pages = [new_page(browser) for _ in SESSIONS]

        def link(i: int, extra: str = "") -> str:
            sample, method = SESSIONS[i]
            return f"{server.base}/Explain?model=shapes-demo&sample={sample}&method={method}{extra}"

        for i, page in enumerate(pages[:-1]):
            page.goto(link(i), wait_until="commit")
        for page in pages[:-1]:
            expect(page.get_by_text("Raw map at the layer")).to_be_visible(timeout=120_000)
            settle(page)
        shared = workspace_of(pages[-2])  # the last two sessions: two tabs on one workspace
        pages[-1].goto(link(len(pages) - 1, f"&ws={shared}"))
        expect(pages[-1].get_by_text("Raw map at the layer")).to_be_visible(timeout=120_000)
        settle(pages[-1])
        for r in range(PINS):  # every session clicks before any is waited for: the writes overlap
            for page in pages:
                page.get_by_role("button", name="Pin to board").click()
            for page in pages[:-2]:
                acknowledged(page, r + 1)
            for page in pages[-2:]:
                acknowledged(page, 2 * r + 1, 2 * r + 2)
            for page in pages:
                assert_clean(page)
        ids = [workspace_of(page) for page in pages]
        errors = sum(page.locator('[data-testid="stException"]').count() for page in pages)
        browser.close()
    assert len(set(ids[:-1])) == len(pages) - 1 and ids[-1] == shared
    store = Store(data)
    for i, ws in enumerate(ids[:-2]):
        sample, method = SESSIONS[i]
        rows = store.open(ws).panels()
        name = sample.replace(" ", "_") + ".png"
        assert [(r.record["image_name"], r.record["method"]) for r in rows] == [(name, method)] * PINS, i
    both = [(r.record["image_name"], r.record["method"]) for r in store.open(shared).panels()]
    assert sorted(both) == sorted([("two_shapes_circle_triangle.png", "layercam"), ("circle.png", "layercam")] * PINS)
    print(f"concurrency: {len(pages)} sessions ({len(pages) - 2} own workspaces, 2 on one), "
          f"{len(pages) * PINS} pins at once in {PINS} rounds, {len(pages) * PINS} found, {errors} errors")  # fmt: skip

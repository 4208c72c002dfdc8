"""Workspaces through the real Streamlit runtime (AppTest): restore from the link, share read-only, quotas, bad ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gradcam_core.demo.model import SAMPLES_DIR
from tests.test_app import ROOT, button, image_uploader, ok, pick_sample, start
from ui import state, storage, workspace

pytestmark = pytest.mark.xdist_group("workspace")  # quotas swap the process's store: one worker runs these


def reopen(param: str, token: str, page: str = "pages/3_Board.py") -> AppTest:
    """A new session (a reload, another tab, or another person) opening ``?param=token`` at ``page``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params[param] = token
    at.run()
    if page != "app.py":
        at.switch_page(page).run()
    return ok(at)


def build() -> tuple[AppTest, str]:
    """A session that uploaded a scene, picked a sample and pinned both maps; and its workspace's id."""
    at = start("pages/1_Explain.py")
    image_uploader(at).upload("../../uploads/star.png", (SAMPLES_DIR / "star.png").read_bytes(), "image/png")
    ok(at.run())
    button(at, "Pin to board").click().run()
    pick_sample(at, "two_shapes_circle_triangle.png")
    button(at, "Pin to board").click().run()
    assert len(ok(at).session_state[state.BOARD]) == 2
    return at, str(at.session_state[state.WORKSPACE].token)


def test_a_reload_restores_images_settings_and_board() -> None:
    at, token = build()
    before = at.session_state[state.BOARD]
    again = reopen(workspace.OWN, token, "pages/1_Explain.py")
    names = sorted(e.name for e in again.session_state[state.IMAGES].values())
    assert names == sorted(e.name for e in at.session_state[state.IMAGES].values())
    assert "star.png" in names  # the upload's path-like name is a file name
    assert again.session_state[state.CURRENT] == at.session_state[state.CURRENT]
    assert again.session_state[state.SETTINGS][state.W_MODEL] == "shapes-demo"
    panels = again.session_state[state.BOARD]
    assert [p.image_name for p in panels] == ["star.png", "two_shapes_circle_triangle.png"]
    assert [p.uid for p in panels] == [p.uid for p in before]
    board = reopen(workspace.OWN, token)
    assert len(board.image) == 2 and any(b.label == "Remove" for b in board.button)
    # A change in the restored session saves the image list again: the restored upload stays in it.
    pick_sample(again, "circle.png")
    third = reopen(workspace.OWN, token, "pages/1_Explain.py")
    assert sorted(e.name for e in third.session_state[state.IMAGES].values()) == sorted({*names, "circle.png"})
    assert sum(e.sample is None for e in third.session_state[state.IMAGES].values()) == 1  # the upload


def test_a_shared_board_opens_read_only_with_its_downloads() -> None:
    at, token = build()
    at.switch_page("pages/3_Board.py").run()
    button(ok(at), "Make a read-only link").click().run()
    link = ok(at).session_state[state.SHARE_LINK]
    share = link.split(f"{workspace.SHARED}=")[1]
    assert share != token and token not in link
    viewer = reopen(workspace.SHARED, share)
    assert "read-only" in " ".join(i.value for i in viewer.info)
    assert len(viewer.image) == 2 and not viewer.button  # no Remove, no Clear, no share
    assert state.WORKSPACE not in viewer.session_state  # the viewer never holds the owner's workspace
    labels = [d.label for d in viewer.get("download_button")]
    assert "Download report (HTML)" in labels and "Download data (ZIP)" in labels
    # The share id pasted as a workspace id is read-only too.
    pasted = reopen(workspace.OWN, share)
    assert state.WORKSPACE not in pasted.session_state and len(pasted.image) == 2


@pytest.mark.parametrize("token", ["x" * 32, "../../etc/passwd", "a" * 40])
def test_a_forged_link_says_so_and_starts_afresh(token: str) -> None:
    at = reopen(workspace.OWN, token)
    warned = " ".join(w.value for w in at.warning)
    assert "Link:" in warned and ("mistyped" in warned or "not one this app makes" in warned)
    assert state.WORKSPACE not in at.session_state and not at.image


def test_a_full_board_refuses_the_pin_with_a_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRADCAM_DATA", str(tmp_path))
    monkeypatch.setenv("GRADCAM_WORKSPACE_PANELS", "1")
    storage.store.clear()
    try:
        at = start("pages/1_Explain.py")
        pick_sample(at, "star.png")
        button(at, "Pin to board").click().run()
        button(ok(at), "Pin to board").click().run()
        errors = " ".join(e.value for e in ok(at).error)
        assert "Not pinned" in errors and "limit of 1 panels" in errors
        assert len(at.session_state[state.BOARD]) == 1
        assert len(reopen(workspace.OWN, at.session_state[state.WORKSPACE].token).image) == 1
    finally:
        storage.store.clear()

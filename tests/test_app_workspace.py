"""Workspaces through the real Streamlit runtime (AppTest): restore from the link, share read-only, quotas, bad ids."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from gradcam_core.demo.model import SAMPLES_DIR
from tests.conftest import Counter, my_cnn
from tests.test_app import ROOT, button, crop_to, image_uploader, ok, pick_sample, start, upload_weights
from tests.test_app_your_model import scripted_bytes
from tests.test_workspaces import filled_store
from ui import models, server, state, storage, workspace
from ui.models import YourModel
from workspaces.blobs import sha256

pytestmark = pytest.mark.xdist_group("workspace")  # quotas swap the process's store: one worker runs these


def reopen(param: str, token: str, page: str = "pages/3_Board.py") -> AppTest:
    """A new session (a reload, another tab, or another person) opening ``?param=token`` at ``page``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params[param] = token
    if page != "app.py":  # the link opens at that page, as /Board?board=… does
        at.switch_page(page)
    return ok(at.run())


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
    counter = Counter(models.cached_model("shapes-demo").model)
    try:
        viewer = reopen(workspace.SHARED, share)
    finally:
        counter.handle.remove()
    assert counter.images == 0  # the panels keep their maps: opening the board runs no model
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


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set server settings through their environment variables for this test (read again, models forgotten)."""

    def apply(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        server.settings.clear()
        models.model_cache.clear()

    yield apply
    monkeypatch.undo()
    server.settings.clear()
    models.model_cache.clear()


def own_model() -> bytes:
    """A TorchScript model whose file no other test uploads (the content store is shared by the test run)."""
    model = my_cnn()
    with torch.no_grad():
        model.decide.bias.add_(0.125)
    return scripted_bytes(model)


def test_your_model_comes_back_with_the_workspace_and_is_hashed_again_when_loaded() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    at.file_uploader(key=state.W_CUSTOM_LABELS).upload("fruit.txt", b"apple\npear\nplum\n", "text/plain")
    at = upload_weights(at, "resnet18", "fruit.pt", own_model())
    key = at.session_state[state.SETTINGS][state.W_MODEL]
    spec = YourModel.parse(key)
    ws = at.session_state[state.WORKSPACE]
    files = ws.store.files
    assert ws.has_file(spec.digest) and spec.labels is not None and ws.has_file(spec.labels)
    models.model_cache().clear()  # as after a restart: loaded again from the content store
    again = reopen(workspace.OWN, ws.token, "pages/1_Explain.py")
    assert again.selectbox(key=state.W_MODEL).value == key
    button(again, "Pin to board").click().run()
    panel = ok(again).session_state[state.BOARD][-1]
    assert panel.weights == "fruit.pt (uploaded)" and {c for c, _ in panel.top5} <= {"apple", "pear", "plum"}
    # The same file with other labels replaces it: the old labels file goes, the model file stays.
    again.file_uploader(key=state.W_CUSTOM_LABELS).upload("fruit.txt", b"fig\nkiwi\nlime\n", "text/plain")
    again = upload_weights(again, "resnet18", "fruit.pt", own_model())
    assert len(again.session_state[state.CUSTOM]) == 1 and not ws.has_file(spec.labels) and ws.has_file(spec.digest)
    # The old labels file is deleted unless another workspace of this test run uploaded the same labels.
    assert files.has(spec.labels) == ws.store.referenced(spec.labels) and files.has(spec.digest)
    # A model file changed on disk is refused when it is loaded, with what to do.
    path = files.path(spec.digest)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    try:
        models.model_cache().clear()
        broken = reopen(workspace.OWN, ws.token, "pages/1_Explain.py")
        errors = " ".join(e.value for e in broken.error)
        assert "changed on disk" in errors and "upload the model again" in errors
    finally:
        path.write_bytes(data)
    # A session without that workspace cannot load it, even knowing its key.
    stranger = AppTest.from_file(str(ROOT / "pages/1_Explain.py"), default_timeout=120)
    stranger.session_state[state.CUSTOM] = [again.session_state[state.CUSTOM][0]]
    stranger.session_state[state.SETTINGS] = {state.W_MODEL: again.session_state[state.CUSTOM][0]}
    assert "not in this workspace" in " ".join(e.value for e in ok(stranger.run()).error)


def test_a_model_that_cannot_be_used_is_not_kept() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    junk = b"not a checkpoint at all" * 1000
    at = upload_weights(at, "resnet18", "junk.pth", junk)
    assert "cannot be used as resnet18 weights" in " ".join(e.value for e in at.error)
    assert not at.session_state[state.WORKSPACE].store.files.has(sha256(junk)) and not at.session_state[state.CUSTOM]


def test_with_model_uploads_off_the_control_is_gone_and_its_path_refuses(server_env: Callable[..., None]) -> None:
    warning = "A TorchScript file runs the code it holds on this server"
    at = start("pages/1_Explain.py")
    assert "Your model" in [e.label for e in at.expander] and any(warning in c.value for c in at.sidebar.caption)
    server_env(GRADCAM_MODEL_UPLOADS="off")
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    assert not any(warning in c.value for c in at.sidebar.caption)
    assert "Your model" not in [e.label for e in at.expander]
    assert not [u for u in at.get("file_uploader") if u.key == state.W_CUSTOM_FILE]

    def forged_upload() -> None:  # the callback the hidden control would run, reached anyway
        from ui.your_model import _load_your_model

        _load_your_model()

    forged = AppTest.from_function(forged_upload).run()
    assert "Model uploads are turned off" in " ".join(e.value for e in forged.error) and not forged.exception


def test_a_model_over_the_servers_size_limit_is_refused(server_env: Callable[..., None]) -> None:
    server_env(GRADCAM_MAX_MODEL_MB="1")
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    at = upload_weights(at, "resnet18", "big.pth", b"\0" * (2 * 2**20))
    assert "is 2 MB; this server takes model files up to 1 MB" in " ".join(e.value for e in at.error)
    assert not at.session_state[state.CUSTOM]


def test_a_bad_server_setting_is_named(server_env: Callable[..., None]) -> None:
    with pytest.raises(ValueError, match="GRADCAM_MODEL_CACHE_MB"):
        server.ServerSettings.read({"GRADCAM_MODEL_CACHE_MB": "lots"}, {})
    with pytest.raises(ValueError, match=r"model_uploads in secrets\.toml"):
        server.ServerSettings.read({}, {"model_uploads": "perhaps"})
    env = {"GRADCAM_MAX_MODEL_MB": "100", "GRADCAM_MODEL_UPLOADS": "on"}
    read = server.ServerSettings.read(env, {"max_model_mb": 7})
    assert (read.max_model_mb, read.model_uploads, read.model_cache_entries) == (7, True, 3)  # secrets.toml wins


def test_the_title_and_notes_are_kept_and_shown_read_only_to_the_shared_link() -> None:
    at, token = build()
    at.switch_page("pages/3_Board.py").run()
    at.text_input(key=state.W_TITLE).input("Shapes for the review").run()
    first = ok(at).session_state[state.BOARD][0].uid
    at.text_area(key=f"{state.W_NOTE}.{first}").input("The star's points draw it.").run()
    ws = ok(at).session_state[state.WORKSPACE]
    assert ws.title() == "Shapes for the review" and ws.panels()[0].note == "The star's points draw it."
    again = reopen(workspace.OWN, token)
    assert again.text_input(key=state.W_TITLE).value == "Shapes for the review"
    assert again.text_area(key=f"{state.W_NOTE}.{first}").value == "The star's points draw it."
    viewer = reopen(workspace.SHARED, ws.share())
    assert [s.value for s in viewer.subheader] == ["Shapes for the review"]
    assert "The star's points draw it." in " ".join(m.value for m in viewer.markdown)
    assert not viewer.text_input and not viewer.text_area  # nothing to edit


def test_two_tabs_on_one_workspace_see_each_others_pins_and_removals() -> None:
    one, token = build()
    two = reopen(workspace.OWN, token, "pages/1_Explain.py")
    # Each tab uploads and crops an image of its own: a reload keeps both tabs' work, not the last writer's.
    image_uploader(one).upload("mine.png", (SAMPLES_DIR / "square.png").read_bytes(), "image/png").run()
    image_uploader(two).upload("yours.png", (SAMPLES_DIR / "triangle.png").read_bytes(), "image/png").run()
    # (AppTest runs a page without app.py after switch_page, so a run's changes are saved at the next run.)
    crop_to(one.switch_page("pages/2_Crop_and_Compare.py").run(), [10, 10, 80, 80]).run()
    crop_to(two.switch_page("pages/2_Crop_and_Compare.py").run(), [20, 20, 60, 60]).run()
    third = reopen(workspace.OWN, token, "pages/1_Explain.py")
    restored = {e.name: k for k, e in third.session_state[state.IMAGES].items()}
    assert {"star.png", "mine.png", "yours.png"} <= set(restored)
    crops = third.session_state[state.CROP]
    assert crops[restored["mine.png"]] == (10, 10, 80, 80) and crops[restored["yours.png"]] == (20, 20, 60, 60)
    two.switch_page("pages/1_Explain.py").run()
    one.switch_page("pages/1_Explain.py").run()
    pick_sample(two, "circle.png")
    button(two, "Pin to board").click().run()
    pick_sample(one, "cross.png")
    button(one, "Pin to board").click().run()  # the first tab's next run reads the second's pin
    names = ["star.png", "two_shapes_circle_triangle.png", "circle.png", "cross.png"]
    assert [p.image_name for p in ok(one).session_state[state.BOARD]] == names
    two.run()
    assert [p.image_name for p in ok(two).session_state[state.BOARD]] == names
    two.switch_page("pages/3_Board.py").run()
    next(b for b in ok(two).button if b.label == "Remove").click().run()
    one.run()
    assert [p.image_name for p in ok(one).session_state[state.BOARD]] == names[1:]
    assert [r.record["image_name"] for r in one.session_state[state.WORKSPACE].panels()] == names[1:]


@pytest.mark.parametrize("damage", ["truncated", "newer"])
def test_a_damaged_or_newer_database_turns_saving_off_and_is_left_alone(
    damage: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = filled_store(tmp_path)
    with sqlite3.connect(store.path) as db:
        if damage == "newer":
            db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    if damage == "truncated":
        store.path.write_bytes(store.path.read_bytes()[: store.path.stat().st_size // 2])
    before = store.path.read_bytes()
    monkeypatch.setenv("GRADCAM_DATA", str(tmp_path))
    storage.store.clear()
    try:
        at = pick_sample(start("pages/1_Explain.py"), "star.png")
        warned = " ".join(w.value for w in at.warning)
        assert "Saving is off" in warned
        assert ("move it aside" in warned) if damage == "truncated" else ("newer Grad-CAM Explorer" in warned)
        button(at, "Pin to board").click().run()  # the app goes on, unsaved
        assert len(ok(at).session_state[state.BOARD]) == 1 and state.WORKSPACE not in at.session_state
        assert "?ws=" not in str(dict(at.query_params)) and store.path.read_bytes() == before
    finally:
        storage.store.clear()


def test_remove_takes_the_panel_it_was_drawn_beside_when_another_tab_removed_one_first() -> None:
    one, token = build()
    pick_sample(one, "circle.png")
    button(one, "Pin to board").click().run()
    names = ["star.png", "two_shapes_circle_triangle.png", "circle.png"]
    one.switch_page("pages/3_Board.py").run()
    two = reopen(workspace.OWN, token)
    uids = [p.uid for p in ok(one).session_state[state.BOARD]]
    two.button(key=f"{state.W_REMOVE}.{uids[0]}").click().run()  # the other tab removes the first panel
    one.button(key=f"{state.W_REMOVE}.{uids[1]}").click().run()  # this tab, still showing it, removes the second
    assert [p.image_name for p in ok(one).session_state[state.BOARD]] == names[2:]
    assert [r.record["image_name"] for r in one.session_state[state.WORKSPACE].panels()] == names[2:]


def test_a_grid_past_the_panel_limit_is_refused_whole(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRADCAM_DATA", str(tmp_path))
    monkeypatch.setenv("GRADCAM_WORKSPACE_PANELS", "4")
    storage.store.clear()
    try:
        at = pick_sample(start("pages/1_Explain.py"), "cross.png")  # (star's grid is counted in test_app_deeper)
        at.selectbox(key=state.W_GRID).select("methods").run()
        button(ok(at), "Pin the grid to the board").click().run()  # 7 maps, 4 places: none is pinned
        assert "limit of 4 panels" in " ".join(e.value for e in ok(at).error)
        assert not at.session_state[state.BOARD] and not at.session_state[state.WORKSPACE].panels()
    finally:
        storage.store.clear()


def test_a_workspace_saved_whole_by_the_earlier_app_is_restored_and_stored_item_by_item() -> None:
    from ui import images

    store, _ = storage.store()
    assert store is not None
    ws = store.create()
    cross = images.load_sample("cross")
    ws.set_state({  # as the app saved a workspace before it kept one key per item
        "images": [{"key": cross.key, "name": "cross.png", "sample": "cross"}],
        "current": cross.key,
        "crops": {cross.key: [4, 4, 100, 100]},
        "settings": {state.W_MODEL: "shapes-demo", state.W_METHOD: "layercam"},
    })  # fmt: skip
    at = reopen(workspace.OWN, ws.token, "pages/1_Explain.py")
    assert at.session_state[state.CURRENT] == cross.key and at.selectbox(key=state.W_METHOD).value == "layercam"
    assert at.session_state[state.CROP][cross.key] == (4, 4, 100, 100)
    saved = ws.state()
    assert "images" not in saved and "crops" not in saved and saved[f"crops/{cross.key}"] == [4, 4, 100, 100]


def test_a_board_link_with_the_owners_own_id_is_read_only_too() -> None:
    _owner, token = build()
    viewer = reopen(workspace.SHARED, token)
    assert "read-only" in " ".join(i.value for i in viewer.info) and len(viewer.image) == 2
    assert not viewer.button and not viewer.text_input and state.WORKSPACE not in viewer.session_state


def test_a_viewer_who_pins_has_a_board_of_their_own_beside_the_shared_one() -> None:
    at, token = build()
    share = at.session_state[state.WORKSPACE].share()
    viewer = reopen(workspace.SHARED, share, "pages/1_Explain.py")
    pick_sample(viewer, "cross.png")
    button(viewer, "Pin to board").click().run()
    assert ok(viewer).session_state[state.WORKSPACE].token not in (token, share)
    viewer.switch_page("pages/3_Board.py").run()  # the navigation drops the link's board: their own board
    viewer.query_params.pop(workspace.SHARED, None)
    viewer.run()
    assert [p.image_name for p in ok(viewer).session_state[state.BOARD]] == ["cross.png"] and len(viewer.image) == 1
    button(viewer, "Show the board shared with you").click().run()
    assert len(ok(viewer).image) == 2 and "read-only" in " ".join(i.value for i in viewer.info)
    button(viewer, "Show your own board").click().run()
    assert len(ok(viewer).image) == 1
    assert [r.record["image_name"] for r in at.session_state[state.WORKSPACE].panels()] == [
        "star.png", "two_shapes_circle_triangle.png",
    ]  # fmt: skip


def test_a_plain_visit_makes_no_workspace_and_the_first_choice_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GRADCAM_DATA", str(tmp_path))  # a store of its own: no other test's workspaces in it
    storage.store.clear()
    try:
        at = start("pages/1_Explain.py", model=None)  # a newcomer: the first photo, explained by the default model
        assert at.session_state[state.IMAGES] and state.WORKSPACE not in at.run().session_state
        with sqlite3.connect(tmp_path / "workspaces.sqlite3") as db:
            assert db.execute("SELECT COUNT(*) FROM workspaces").fetchone()[0] == 0
        pick_sample(at, "coffee (photo).png").run()  # a choice: from now on a reload keeps it
        assert "ws" in ok(at).query_params and at.session_state[state.WORKSPACE]
        with sqlite3.connect(tmp_path / "workspaces.sqlite3") as db:
            assert db.execute("SELECT COUNT(*) FROM workspaces").fetchone()[0] == 1
    finally:
        storage.store.clear()

"""Looking deeper on Explain, in the real Streamlit runtime: grids, the object box, Guided Grad-CAM, the sanity
check and smoothing, and what the board and its exports keep of them."""

from __future__ import annotations

import io
import json
import re
import zipfile

import torch

from gradcam_core import CLASS_AGNOSTIC, compute_cam, load_image, load_model
from gradcam_core.boxscore import box_scores
from gradcam_core.demo.model import SAMPLES_DIR
from gradcam_core.regions import Box
from tests.conftest import Counter
from tests.test_app import button, ok, pick_sample, start
from ui import report, state
from ui.models import cached_model

STAR_BOX = (18, 40, 65, 68)  # the star's box, from the samples' manifest.json


def captions(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.value for c in at.caption]


def images_with(at, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Captions of the images on the page that contain ``text``."""
    return [c for image in at.image for c in image.captions if text in c]


def type_box(at, box: tuple[int, int, int, int]):  # type: ignore[no-untyped-def]
    next(t for t in at.toggle if t.key and t.key.startswith(state.W_OBJECT_ON)).set_value(True).run()
    for key, value in zip((state.W_CROP_X, state.W_CROP_Y, state.W_CROP_W, state.W_CROP_H), box, strict=True):
        at.number_input(key=f"{key}.object").set_value(value).run()
    return ok(at)


def test_a_methods_grid_costs_one_forward_pass_and_is_cached_per_cell() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "star.png")
    model = cached_model("shapes-demo").model
    counter = Counter(model)
    try:
        at.selectbox(key=state.W_GRID).select("methods").run()
        ok(at)
        assert counter.images == 1, "every method of the grid from one forward pass"
        cells = images_with(at, " · 16×16 · p = ")
        assert sorted(c.split(" · ")[0] for c in cells) == sorted(
            ["Grad-CAM", "Grad-CAM++", "XGrad-CAM", "LayerCAM", "HiResCAM", "Guided Grad-CAM", "Eigen-CAM"]
        )
        assert any(c.startswith("7 methods at `features.block4` from one shared forward") for c in captions(at))
        button(at, "Pin the grid to the board").click().run()
        pinned = {p.method: p.class_name for p in ok(at).session_state[state.BOARD]}
        assert pinned["gradcam"] == "star" and pinned["eigencam"] == CLASS_AGNOSTIC  # what each map shows
        counter.images = 0
        at.radio(key=state.W_GRID_SCALE).set_value("shared").run()  # display only: nothing runs again
        ok(at)
        assert counter.images == 0
        at.selectbox(key=state.W_GRID).select("layers").run()
        ok(at)
        layers = images_with(at, " · p = ")
        # One pass per block, from the stem to the head, and the sidebar's layer, whose Grad-CAM cell the
        # methods grid above has cached already.
        assert any(c.startswith("features.block4 · ") for c in layers)
        assert len(layers) - 1 == counter.images >= 9
        assert any(c.startswith("features · ") for c in layers)
    finally:
        counter.handle.remove()


def test_an_object_box_scores_the_map_the_grid_and_the_pinned_panels() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "star.png")
    at = type_box(at, STAR_BOX)
    loaded = load_model("shapes-demo")
    image = load_image(SAMPLES_DIR / "star.png")
    cam = compute_cam(loaded.model, loaded.preprocess(image)[None], loaded.default_layer)
    want = box_scores(cam.maps[0, 0], Box(*STAR_BOX), loaded.input_region(image.size), image.size)
    shown = next(m.value for m in at.markdown if m.value.startswith("**Object box:**"))
    assert f"{want.energy:.0%} of the map in the box (chance {want.chance:.0%}" in shown, (shown, want)
    assert ("peak in the box" in shown) == want.pointing

    at.selectbox(key=state.W_GRID).select("classes").run()
    ok(at)
    ranked = next(d.value for d in at.dataframe if "energy in box" in d.value.columns)
    assert list(ranked["energy in box"]) == sorted(ranked["energy in box"], reverse=True)
    # Each row is the core's score of that class's map against the typed box.
    top5 = cam.logits[0].topk(5).indices.tolist()
    maps = compute_cam(loaded.model, loaded.preprocess(image)[None], loaded.default_layer, top5).maps[0]
    region = loaded.input_region(image.size)
    for c, m in zip(top5, maps, strict=True):
        row = ranked[ranked["map"] == loaded.categories[c]].iloc[0]
        found = box_scores(m, Box(*STAR_BOX), region, image.size)
        assert abs(row["energy in box"] - found.energy) < 1e-6 and row["peak in box"] == found.pointing
    button(at, "Pin the grid to the board").click().run()
    button(ok(at), "Pin to board").click().run()
    panels = ok(at).session_state[state.BOARD]
    assert len(panels) == 6 and len({p.grid for p in panels[:5]}) == 1 and panels[5].grid is None
    assert all(p.box_scores is not None and p.box_scores["box"] == list(STAR_BOX) for p in panels)
    assert panels[5].box_scores["energy"] == round(want.energy, 6)

    at.switch_page("pages/3_Board.py").run()
    ok(at)
    assert [c for c in images_with(at, "Compare classes · star.png · ") if c.endswith(" · 5 maps")]
    assert len([b for b in at.button if b.label == "Remove"]) == 2  # the grid is one panel
    manifest = json.loads(
        zipfile.ZipFile(io.BytesIO(report.zip_bytes(panels, 0.45, "jet", None))).read("manifest.json")
    )
    assert [p["grid"] for p in manifest["panels"]] == [panels[0].grid] * 5 + [None]
    assert manifest["panels"][5]["box_scores"]["energy"] == round(want.energy, 6)
    html = report.html_report(panels, 0.45, "jet", None)
    assert html.count("<th>object box</th>") == 6 and "<th>grid</th>" in html


def test_guided_grad_cam_the_sanity_check_and_smoothing() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "star.png")
    at.selectbox(key=state.W_METHOD).select("guided-gradcam").run()
    ok(at)
    assert images_with(at, "Guided Grad-CAM at 128×128") and images_with(at, "Guided backpropagation alone")
    for view in ("signed", "absolute"):
        at.radio(key=state.W_GUIDED_VIEW).set_value(view).run()
        ok(at)
    model = cached_model("shapes-demo").model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    button(at, "Would a model that knows nothing give the same map?").click().run()
    ok(at)
    assert any("falls apart" in s.value for s in at.success), [e.value for e in at.error]
    assert len(images_with(at, " random: ")) >= 4
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    at.selectbox(key=state.W_SMOOTH).select("tta").run()
    ok(at)
    assert any("smoothing: test-time augmentation ×6 passes" in c for c in captions(at))
    button(at, "Pin to board").click().run()
    assert re.match(r"test-time augmentation ×6 passes", ok(at).session_state[state.BOARD][-1].smoothing)


def test_an_object_box_drawn_on_a_board_panel_scores_it() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "star.png")
    button(at, "Pin to board").click().run()
    (panel,) = ok(at).session_state[state.BOARD]
    assert panel.box_scores is None
    at.switch_page("pages/3_Board.py").run()
    ok(at)
    # A drag on the panel's picture, as its frontend sends it when the drag ends (image pixels, revision 0).
    at.session_state[f"{state.W_CROPPER}.panel.{panel.uid}.object"] = {"box": list(STAR_BOX), "revision": 0}
    at.run()
    (scored,) = ok(at).session_state[state.BOARD]
    want = box_scores(panel.raw, Box(*STAR_BOX), Box(*panel.region), panel.frame_size)
    assert scored.box_scores == {
        "box": list(STAR_BOX), "pointing": want.pointing,
        "energy": round(want.energy, 6), "chance": round(want.chance, 6),
    }  # fmt: skip
    shown = [c.replace("\\", "") for image in at.image for c in image.captions]  # markdown escapes
    assert any(f"{want.energy:.0%} of the map in the box (chance {want.chance:.0%}" in c for c in shown), shown


def test_a_methods_grid_on_your_torchscript_model_leaves_out_guided_grad_cam() -> None:
    from tests.conftest import my_cnn
    from tests.test_app_explain import load
    from tests.test_app_your_model import preprocessing

    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    preprocessing(at, 32, 32, crop=False, mean="0.5", std="0.25")
    at = load(at, "mine.pt", my_cnn())
    at.selectbox(key=state.W_GRID).select("methods").run()
    cells = [c.split(" · ")[0] for c in images_with(ok(at), " · p = ")]
    assert len(cells) == 6 and "Guided Grad-CAM" not in cells and not at.error, cells
    at.selectbox(key=state.W_METHOD).select("guided-gradcam").run()
    assert any(
        "Guided Grad-CAM needs an eager PyTorch model" in e.value for e in ok(at).error
    )  # a message, no traceback

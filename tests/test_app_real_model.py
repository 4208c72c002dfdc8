"""The app on its real ImageNet model, efficientnet_lite0, through the real Streamlit runtime (AppTest).

A newcomer sees a real photo explained by it; the sample photos carry their credits; the shapes
scenes bring the shapes model with them; the seed's experiments open with what they need.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gradcam_core.models import DEFAULT_MODEL
from tests.test_app import crop_to, ok
from tests.test_app import start as start_on
from ui import state
from ui.samples import SKIMAGE_PHOTOS

#: Top-1 of efficientnet_lite0 on scikit-image's photos (measured with the registered model).
PHOTO_TOP1 = {
    "Chelsea the cat (photo)": "tiger cat",
    "coffee (photo)": "espresso",
    "rocket (photo)": "missile",
    "astronaut (photo)": "bobsled",  # a misclassification to explore
    "cameraman (photo)": "tripod",
}


def start(page: str):  # type: ignore[no-untyped-def]
    """A newcomer's session: the app's own default model."""
    return start_on(page, model=None)


def model(at) -> str:  # type: ignore[no-untyped-def]
    return at.sidebar.selectbox(key=state.W_MODEL).value


def explained(at) -> str:  # type: ignore[no-untyped-def]
    """The Explain page's caption line: image · model · layer · method · class."""
    return next(c.value for c in at.caption if " · layer `" in c.value)


def infos(at) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(i.value for i in at.info)


def test_a_newcomer_sees_a_real_photo_explained_by_the_real_model() -> None:
    at = start("pages/1_Explain.py")
    assert model(at) == DEFAULT_MODEL
    assert at.sidebar.selectbox(key=state.W_SAMPLE).value == "Chelsea the cat (photo)"
    assert explained(at) == "**chelsea.png** · efficientnet_lite0 · layer `bn2.act` · gradcam · **tiger cat**"
    assert any("Stefan van der Walt, CC0" in m.value for m in at.markdown)
    assert any("Raw map at the layer: 7×7" in c for im in at.image for c in im.captions)
    assert "not one of" not in infos(at) and "shapes scene" not in infos(at)


@pytest.mark.parametrize(("name", "top1"), PHOTO_TOP1.items())
def test_each_sample_photo_is_explained_with_its_licence(name: str, top1: str) -> None:
    at = start("pages/1_Explain.py")
    ok(at.sidebar.selectbox(key=state.W_SAMPLE).select(name).run())
    credit = next(c for _, file, c in SKIMAGE_PHOTOS if name.startswith(Path(file).stem) or file in explained(at))
    shown = [m.value.replace("\\", "") for m in at.markdown]  # Markdown escapes of plain text
    assert any(credit in m and "scikit-image" in m for m in shown), shown
    assert explained(at).endswith(f"· gradcam · **{top1}**"), explained(at)
    assert model(at) == DEFAULT_MODEL


def test_a_shapes_scene_brings_the_shapes_model_and_a_photo_brings_the_real_one() -> None:
    at = start("pages/1_Explain.py")
    ok(at.sidebar.selectbox(key=state.W_SAMPLE).select("tagged circle called star").run())
    assert model(at) == "shapes-demo"
    assert "Switched the model to **shapes-demo**" in infos(at)
    assert explained(at).endswith("· **star**")
    ok(at.sidebar.selectbox(key=state.W_SAMPLE).select("coffee (photo)").run())
    assert model(at) == DEFAULT_MODEL
    assert "Switched the model to **efficientnet_lite0**" in infos(at)
    assert explained(at).endswith("· **espresso**")
    # A photo picked on another ImageNet model keeps that model (nothing to switch).
    ok(at.sidebar.selectbox(key=state.W_SAMPLE).select("rocket (photo)").run())
    assert model(at) == DEFAULT_MODEL and "Switched" not in infos(at)


def test_a_model_shown_a_picture_it_was_not_made_for_says_so() -> None:
    at = start("pages/1_Explain.py")
    ok(at.sidebar.selectbox(key=state.W_SAMPLE).select("star").run())
    assert model(at) == "shapes-demo" and "a drawn shapes scene" not in infos(at)
    # Back to the ImageNet model on the same drawn scene: its answer comes with a notice.
    ok(at.sidebar.selectbox(key=state.W_MODEL).select(DEFAULT_MODEL).run())
    assert "a drawn shapes scene, made for **shapes-demo**" in infos(at), infos(at)
    # And the shapes model on a photo.
    ok(at.sidebar.selectbox(key=state.W_SAMPLE).select("coffee (photo)").run())
    ok(at.sidebar.selectbox(key=state.W_MODEL).select("shapes-demo").run())
    assert "not one of the shapes scenes" in infos(at), infos(at)


def test_the_riding_elephant_crop_story(shared_images: Path) -> None:
    at = start("pages/2_Crop_and_Compare.py")
    ok(at.sidebar.selectbox(key=state.W_SAMPLE).select("riding_elephant.jpg").run())
    assert model(at) == DEFAULT_MODEL
    assert at.subheader[0].value.startswith("top-1 unchanged: water buffalo (0.22)"), at.subheader[0].value
    assert any("Apache-2.0; from tensorflow/tfjs-models" in m.value for m in at.markdown)
    # The elephant's head and front legs: the riders and the child outside the box.
    at = crop_to(at, [320, 260, 193, 253])
    summary = at.subheader[0].value
    assert summary.startswith("top-1 changed: water buffalo (0.22) → tusker ("), summary


@pytest.mark.parametrize("page", ["app.py", "pages/1_Explain.py"])
def test_the_experiments_open_with_what_they_need(page: str, shared_images: Path) -> None:
    at = start(page)
    where = "home" if page == "app.py" else "explain"
    at.button(key=f"{state.W_EXPERIMENT}.{where}.riders").click()
    at = ok(at.run())
    summary = at.subheader[0].value
    assert summary.startswith("top-1 changed: water buffalo (0.22) → tusker (0.48)"), summary
    at = start(page)
    at.button(key=f"{state.W_EXPERIMENT}.{where}.cat_dog").click()
    at = ok(at.run())
    assert explained(at) == "**cat\\_dog.png** · efficientnet_lite0 · layer `bn2.act` · gradcam · **bull mastiff**"
    assert at.toggle(key=state.W_MULTI).value
    at = start(page)
    at.button(key=f"{state.W_EXPERIMENT}.{where}.elephant").click()
    at = ok(at.run())
    assert explained(at).endswith("· gradcam · **African elephant**")

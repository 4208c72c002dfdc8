"""Widgets and renderers shared by the pages: page setup, sidebar, image picker, class picker, panels."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image
from streamlit.runtime.pages_manager import PagesManager

from gradcam_core import (
    COLORMAPS,
    METHODS,
    LoadedModel,
    heatmap_to_rgb,
    list_models,
    overlay,
    paste_map,
)
from gradcam_core.demo.model import DEMO_NAME
from gradcam_core.faithfulness import Faithfulness, verdict
from gradcam_core.labels import parse_labels
from gradcam_core.models import DEFAULT_MODEL
from gradcam_core.preprocess import IMAGENET_MEAN, IMAGENET_STD, parse_stats
from ui import images, share, state
from ui.compute import Explanation
from ui.models import (
    CUSTOM_PREFIX,
    YourModel,
    add_your_model,
    available,
    cached_model,
    display_name,
    get_model,
    label,
    layers_of,
)
from ui.text import plain_text

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
#: What an Explain map shows: evidence for the class, against it, or for it rather than another class.
VIEWS = {"for": "evidence for the class", "against": "evidence against it", "contrast": "why it rather than…"}
#: Upload caps in MB per file: images here, checkpoints up to VGG's 550 MB (the server caps at 600).
MAX_IMAGE_MB, MAX_CHECKPOINT_MB = 50, 600


#: A sidebar wide enough for model, layer and method names (EfficientNet's layers run to 45 characters).
SIDEBAR_CSS = '<style>section[data-testid="stSidebar"] { min-width: 28rem; }</style>'


def page_setup(title: str) -> None:
    """Configure the page; every page calls this first."""
    _route_through_app()
    if (target := st.session_state.pop(state.GO_TO, None)) is not None:
        st.switch_page(target)
    st.set_page_config(page_title=f"{title} · Grad-CAM Explorer", layout="wide")
    st.html(SIDEBAR_CSS)


def _route_through_app() -> None:
    """Make app.py's ``st.navigation`` the router, even for a first visit at a page's own URL.

    Streamlit decides at start-up, from the ``pages/`` folder, to route the first run the old way
    (each file of ``pages/`` a page, app.py shown as "app"), and only ``st.navigation`` switches
    that off. A fresh server opened at ``/Explain`` would run the page directly and draw the old
    navigation; this switches the old routing off, as ``st.navigation`` does, and reruns, so that
    app.py routes the same URL to the same page (both name it after the file: same page hash).
    AppTest sets the old routing again before each run; it is switched off once per session.
    """
    if PagesManager.uses_pages_directory and not st.session_state.get(state.ROUTED):
        PagesManager.uses_pages_directory = False
        st.session_state[state.ROUTED] = True  # once a session: a rerun drops the clicks of its run
        st.rerun()


def _method_label(method: str) -> str:
    return f"{METHODS[method].label} ({METHODS[method].citation})" if method in METHODS else method


def _full_name(text: str) -> str:
    """A help line naming the current choice in full (a long name can still be cut off in the box)."""
    return f"Now: {plain_text(text)}"


@dataclass(frozen=True)
class PageContext:
    """What a page that explains one image works with (see :func:`image_page`)."""

    model_name: str
    layer: str
    method: str
    loaded: LoadedModel
    entry: images.ImageEntry


def image_page(title: str) -> PageContext:
    """Set up a page that explains one image: sidebar, image picker, title.

    Stops the page, with a message, when the model is unusable or no image is chosen yet.
    """
    page_setup(title)
    share.read_link()
    choice = sidebar()
    entry = image_picker()
    st.title(title)
    share.show_warnings()
    if entry is not None:
        image_credit(entry)
    if choice is None:
        st.stop()
    if entry is None:
        st.info("Pick a sample or upload an image in the sidebar.")
        st.stop()
    model_name, layer, method = choice
    return PageContext(model_name, layer, method, cached_model(model_name), entry)


def persist(key: str, default: Any) -> None:
    """Seed widget ``key`` from its persisted value before the widget is drawn.

    Streamlit resets a widget to its default when another page draws it, so every page seeds it
    from ``state.SETTINGS``, where each widget's ``on_change`` keeps the latest choice.
    """
    st.session_state[key] = state.setting(key, default)


def _store(key: str) -> Callable[[], None]:
    return lambda: state.remember(key, st.session_state[key])


def sidebar() -> tuple[str, str, str] | None:
    """Model, layer and method pickers; returns (model, layer, method), or None if the model is unusable."""
    have = available()
    names = list_models() + state.get(state.CUSTOM, [])
    persist(state.W_MODEL, DEFAULT_MODEL)
    if st.session_state[state.W_MODEL] not in names:
        st.session_state[state.W_MODEL] = DEFAULT_MODEL
    with st.sidebar:
        name = st.selectbox(
            "Model",
            names,
            key=state.W_MODEL,
            format_func=lambda n: label(n, have),
            on_change=_store(state.W_MODEL),
            help=_full_name(label(st.session_state[state.W_MODEL], have)),
        )
        your_model()
        loaded = get_model(name)
        if loaded is None:
            return None
        infos = layers_of(name)
        by_name = {info.name: info for info in infos}
        layer_key = f"{state.W_LAYER}.{name}"
        if (linked := share.pending("layer")) is not None:
            if linked in by_name:
                state.remember(layer_key, linked)
            else:
                share.reject(f"the link's layer '{linked}' is not a spatial layer of {name}")
        persist(layer_key, loaded.default_layer)
        if st.session_state[layer_key] not in by_name:
            st.session_state[layer_key] = loaded.default_layer
        shown_layer = by_name.get(st.session_state[layer_key])
        layer = st.selectbox(
            "Target layer",
            list(by_name),
            key=layer_key,
            format_func=lambda n: f"{by_name[n]}" + (" · default" if n == loaded.default_layer else ""),
            on_change=_store(layer_key),
            help="Every module whose output is a spatial map, with its output shape (channels × height × width)."
            + ("" if shown_layer is None else f"\n\n{_full_name(str(shown_layer))}"),
        )
        persist(state.W_METHOD, "gradcam")
        method = st.selectbox(
            "Method",
            list(METHODS),
            key=state.W_METHOD,
            format_func=_method_label,
            on_change=_store(state.W_METHOD),
            help=_full_name(_method_label(st.session_state.get(state.W_METHOD, ""))),
        )
        if not loaded.trained:
            st.warning("This model has random weights: its maps are meaningless.")
    return name, layer, method


def your_model() -> None:
    """The sidebar's "Your model": a TorchScript file or a state_dict, labels, input size, normalisation.

    "Load model" checks everything and, when the model works, makes it the sidebar's model.
    """
    with st.expander("Your model"):
        st.file_uploader(
            "Model file: TorchScript, or a state_dict",
            type=["pt", "pth", "bin"],
            key=state.W_CUSTOM_FILE,
            max_upload_size=MAX_CHECKPOINT_MB,
            help="A TorchScript file (torch.jit.save) is loaded on the CPU and runs the code it holds: upload only "
            "models you trust. A state_dict is read with torch.load(weights_only=True), so files that carry Python "
            "code are refused; it needs its architecture below, and a head with any number of classes is accepted.",
        )
        st.selectbox(
            "Architecture (for a state_dict)",
            [n for n in list_models() if n != DEMO_NAME],
            key=state.W_CUSTOM_ARCH,
            help="Not used for TorchScript files, which carry their architecture.",
        )
        st.file_uploader(
            "Labels (optional): one per line, or JSON", type=["txt", "json"], key=state.W_CUSTOM_LABELS,
            max_upload_size=MAX_IMAGE_MB,
        )  # fmt: skip
        st.caption("Preprocessing the model was trained with (ImageNet's by default)")
        height, width = st.columns(2)
        height.number_input("Input height", 8, 4096, 224, key=state.W_CUSTOM_HEIGHT)
        width.number_input("Input width", 8, 4096, 224, key=state.W_CUSTOM_WIDTH)
        st.checkbox(
            "Resize the shorter side, then crop the centre",
            value=True,
            key=state.W_CUSTOM_CROP,
            help="As for ImageNet: to 256 for a 224 input, then the centre 224 × 224. Unticked, the whole image is "
            "resized to the input size.",
        )
        st.text_input("Mean (R, G, B)", ", ".join(map(str, IMAGENET_MEAN)), key=state.W_CUSTOM_MEAN)
        st.text_input("Std (R, G, B)", ", ".join(map(str, IMAGENET_STD)), key=state.W_CUSTOM_STD)
        st.button("Load model", key=state.W_CUSTOM_LOAD, on_click=_load_your_model, type="primary")


def _load_your_model() -> None:
    """Read "Your model"'s widgets (callbacks run before the page) and load the model they describe."""
    upload = st.session_state[state.W_CUSTOM_FILE]
    if upload is None:
        st.error("Choose a model file first: a TorchScript .pt, or a state_dict for a listed architecture.")
        return
    labels_file = st.session_state.get(state.W_CUSTOM_LABELS)
    try:
        labels = None if labels_file is None else parse_labels(labels_file.getvalue())
    except ValueError as exc:
        st.error(f"Labels file **{plain_text(labels_file.name)}**: {exc}")
        return
    try:
        mean = parse_stats(st.session_state[state.W_CUSTOM_MEAN], "mean")
        std = parse_stats(st.session_state[state.W_CUSTOM_STD], "std")
    except ValueError as exc:
        st.error(f"Normalisation: {plain_text(str(exc))}")
        return
    data = upload.getvalue()
    spec = YourModel(
        file=upload.name,
        digest=hashlib.sha256(data).hexdigest(),
        arch=st.session_state[state.W_CUSTOM_ARCH],
        input_size=(int(st.session_state[state.W_CUSTOM_HEIGHT]), int(st.session_state[state.W_CUSTOM_WIDTH])),
        crop=bool(st.session_state[state.W_CUSTOM_CROP]),
        mean=mean,
        std=std,
    )
    key = add_your_model(spec, data, labels)
    if key is not None:  # it replaces the same file loaded earlier with other labels or preprocessing
        others = [k for k in state.get(state.CUSTOM, []) if YourModel.parse(k).digest != spec.digest]
        st.session_state[state.CUSTOM] = [*others, key]
        state.remember(state.W_MODEL, key)


def image_picker() -> images.ImageEntry | None:
    """Upload one or many images, or pick a bundled sample; returns the image being explained.

    There is one current image (``state.CURRENT``), and every widget here is re-seeded from it on
    each run: the sample picker names it when it is a sample (and is empty otherwise), and the
    image picker selects it. So no widget can show an image the page is not explaining.
    """
    found = images.samples()
    if images.current() is None and not state.get(state.IMAGES, {}):  # a newcomer: show a sample at once
        first = FIRST_SAMPLE.get(state.setting(state.W_MODEL, DEFAULT_MODEL), FIRST_SAMPLE[DEFAULT_MODEL])
        if first in found:
            images.add(images.load_sample(first))
    with st.sidebar:
        st.divider()
        current = images.current()
        st.session_state[state.W_SAMPLE] = current.sample if current is not None else None
        st.selectbox(
            "Sample image",
            list(found),
            key=state.W_SAMPLE,
            index=None,
            placeholder="Pick a sample photo or shapes scene",
            on_change=_pick_sample,
            help="Photos for the ImageNet models, drawn shapes scenes for the shapes model: picking one switches "
            "to the model it was made for when the current one was not.",
        )
        if (switched := st.session_state.pop(state.MODEL_SWITCHED, None)) is not None:
            st.info(switched)

        def take_uploads() -> None:
            files = st.session_state[state.upload_key()] or []
            st.session_state[state.UPLOAD_ERRORS] = images.add_files([(f.name, f.getvalue()) for f in files])
            st.session_state[state.UPLOAD_ROUND] = st.session_state.get(state.UPLOAD_ROUND, 0) + 1

        st.file_uploader(
            "Or upload images",
            type=UPLOAD_TYPES,
            accept_multiple_files=True,
            max_upload_size=MAX_IMAGE_MB,
            key=state.upload_key(),
            on_change=take_uploads,
        )
        for name, reason in st.session_state.get(state.UPLOAD_ERRORS, []):
            st.error(f"Could not read **{plain_text(name)}**: {reason}")
        entries = state.get(state.IMAGES, {})
        if len(entries) > 1 and current is not None:
            st.session_state[state.W_IMAGE] = current.key
            st.selectbox(
                "Image",
                list(entries),
                format_func=lambda k: entries[k].name,
                key=state.W_IMAGE,
                on_change=lambda: st.session_state.__setitem__(state.CURRENT, st.session_state[state.W_IMAGE]),
                help="Every image of this session: the samples picked and the files uploaded.",
            )
    return images.current()


#: The sample a newcomer sees first, by the model they start with.
FIRST_SAMPLE = {DEFAULT_MODEL: "Chelsea the cat (photo)", DEMO_NAME: "tagged circle called star"}


def _pick_sample() -> None:
    """Make the picked sample current (with the model it was made for, if the current one was not)."""
    if st.session_state[state.W_SAMPLE]:
        images.use_sample(st.session_state[state.W_SAMPLE])


def image_credit(entry: images.ImageEntry) -> None:
    """Say whose picture a sample is, under which licence."""
    sample = images.sample_of(entry.key)
    if sample is not None:
        st.markdown(f":gray[Sample image **{plain_text(sample.name)}**: {plain_text(sample.credit)}.]")


def class_picker(exp: Explanation, categories: list[str], key: str) -> int:
    """The top-5 first (with probabilities), then every class; defaults to the prediction."""
    top = exp.top(5)
    order = top + [i for i in range(len(categories)) if i not in top]

    def fmt(i: int) -> str:
        return f"{categories[i]} ({exp.probabilities[i]:.1%})" + (" · predicted" if i == top[0] else "")

    if (linked := share.pending("class")) is not None:
        found = next((i for i, name in enumerate(categories) if linked in (name, str(i))), None)
        if found is None:
            share.reject(f"the link's class '{linked}' is not a class of this model")
        else:
            st.session_state[key] = found
    if st.session_state.get(key) not in order:
        st.session_state[key] = top[0]
    return st.selectbox("Class to explain", order, key=key, format_func=fmt)


def display_controls() -> tuple[float, str]:
    """Opacity and colour map (display only: they never rerun the model)."""
    persist(state.W_ALPHA, 0.45)
    persist(state.W_CMAP, "jet")
    cols = st.columns(2)
    alpha = cols[0].slider("Heat-map opacity", 0.0, 1.0, key=state.W_ALPHA, on_change=_store(state.W_ALPHA))
    cmap = cols[1].selectbox("Colour map", list(COLORMAPS), key=state.W_CMAP, on_change=_store(state.W_CMAP))
    return alpha, cmap


def full_map(exp: Explanation, k: int, image: Image.Image, frame: tuple[int, int, int, int] | None) -> np.ndarray:
    """Map ``k`` of ``exp`` in the full ``image``'s frame, placed where the model's input came from.

    ``frame`` is the crop box when the explained image was a crop of ``image``.
    """
    region = exp.region
    if frame is not None:
        region = (frame[0] + region.x, frame[1] + region.y, region.w, region.h)
    return paste_map(exp.maps[k], region, image.size)


def overlay_full(
    image: Image.Image,
    exp: Explanation,
    k: int,
    frame: tuple[int, int, int, int] | None,
    alpha: float,
    cmap: str,
    vmax: float | None = None,
) -> Image.Image:
    """Map ``k`` of ``exp`` over the full ``image`` (see :func:`full_map`)."""
    return overlay(image, full_map(exp, k, image, frame), alpha=alpha, colormap=cmap, vmax=vmax)


def raw_grid(exp: Explanation, k: int, cmap: str, vmax: float | None = None, side: int = 256) -> np.ndarray:
    """The raw map at the layer's resolution, each cell a crisp block."""
    h, w = exp.maps[k].shape
    scale = max(1, side // max(h, w))
    return heatmap_to_rgb(exp.maps[k], (w * scale, h * scale), cmap, vmax, interpolation="nearest")


def predictions(exp: Explanation, categories: list[str], k: int = 5) -> pd.DataFrame:
    """The top-k as a table: class, logit, probability."""
    top = exp.top(k)
    return pd.DataFrame(
        {
            "class": [categories[i] for i in top],
            "logit": [float(exp.logits[i]) for i in top],
            "probability": [float(exp.probabilities[i]) for i in top],
        }
    )


def show_predictions(exp: Explanation, categories: list[str]) -> None:
    """Top-5 as a bar chart and a table."""
    table = predictions(exp, categories)
    st.bar_chart(table, x="class", y="probability", horizontal=True, sort="-probability", height=200)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={"probability": st.column_config.ProgressColumn("probability", format="percent", max_value=1.0)},
    )


def fit_notice(model_name: str, keys: list[str]) -> None:
    """Say so when a model is shown images it was not made for.

    ``keys`` are the content hashes of the images shown. The shapes model was made for the shapes
    scenes (picked, or uploaded as files), and nothing else; the other models were made for photos,
    not for the shapes scenes.
    """
    found = [images.sample_of(k) for k in keys]
    what = "This image is" if len(keys) == 1 else "{n} of these {total} images are"
    if model_name == DEMO_NAME:
        others = sum(s is None or s.photo for s in found)
        if others:
            cats = cached_model(model_name).categories
            st.info(
                f"{what.format(n=others, total=len(keys))} not one of the shapes scenes. **{DEMO_NAME}** knows only "
                f"{len(cats)} shapes ({', '.join(cats)}), drawn on a plain background: shown anything else, it still "
                'names one of them, often with high confidence, which only means "looks most like". For photos, '
                f"pick **{DEFAULT_MODEL}** or another ImageNet model, or load your own under *Your model*."
            )
        return
    scenes = sum(s is not None and not s.photo for s in found)
    if scenes and not model_name.startswith(CUSTOM_PREFIX):  # your own model may have been made for them
        st.info(
            f"{what.format(n=scenes, total=len(keys))} a drawn shapes scene, made for **{DEMO_NAME}**. "
            f"**{display_name(model_name)}** was not trained on such scenes, and ImageNet has no circle, cross, "
            "square, star or triangle class: its answer only says what the drawing looks most like. Pick "
            f"**{DEMO_NAME}** to see the scene explained by the model it was made for."
        )


def region_legend(exp: Explanation, image_size: tuple[int, int]) -> None:
    """A legend line for overlays when the model saw only part of the image (its centre crop)."""
    region = exp.region
    if (region.w, region.h) == tuple(image_size):
        return
    st.caption(
        f"The model sees only the centre {region.w}×{region.h} of this {image_size[0]}×{image_size[1]} image "
        "(its preprocessing resizes, then crops the centre): outside that region the map is empty, so the overlay "
        "there is tinted with the colour map's lowest colour, with a hard edge."
    )


def show_warnings(exp: Explanation) -> None:
    """The engine's notes on misleading maps."""
    for note in exp.warnings:
        st.warning(note)


def show_faithfulness(cam: Faithfulness, chance: Faithfulness) -> None:
    """Curves of the map and of the random baseline, the summary numbers beside each other, and a verdict."""
    st.markdown(f"**{verdict(cam, chance)}** Scored on {plain_text(cam.score)}.")
    curves = pd.DataFrame(
        {
            "fraction changed": cam.curves.fractions,
            "deletion (map)": cam.curves.deletion,
            "insertion (map)": cam.curves.insertion,
            "deletion (random)": chance.curves.deletion,
            "insertion (random)": chance.curves.insertion,
        }
    )
    st.line_chart(curves, x="fraction changed", y_label=plain_text(cam.score), height=260)
    st.dataframe(
        pd.DataFrame(
            {
                "": [
                    "deletion AUC (lower is better)",
                    "insertion AUC (higher is better)",
                    "Average Drop % (lower is better)",
                    "Increase (1 is better)",
                ],
                "this map": [cam.curves.deletion_auc, cam.curves.insertion_auc, cam.average_drop, float(cam.increase)],
                "random map": [
                    chance.curves.deletion_auc,
                    chance.curves.insertion_auc,
                    chance.average_drop,
                    float(chance.increase),
                ],
            }
        ),
        hide_index=True,
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("this map", "random map")},
    )

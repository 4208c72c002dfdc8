"""Renderers shared by the pages: pickers, display controls, overlays, predictions, notices, faithfulness."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from gradcam_core import COLORMAPS, DEFAULT_MODEL, DEMO_MODEL, Faithfulness, crop, heatmap_to_rgb, overlay, verdict
from ui import images, rules, share, state
from ui.compute import Explanation
from ui.models import CUSTOM_PREFIX, cached_model, display_name
from ui.text import plain_text


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
    state.persist(state.W_ALPHA, 0.45)
    state.persist(state.W_CMAP, "jet")
    cols = st.columns(2)
    alpha = cols[0].slider("Heat-map opacity", 0.0, 1.0, key=state.W_ALPHA, on_change=state.store(state.W_ALPHA))
    cmap = cols[1].selectbox("Colour map", list(COLORMAPS), key=state.W_CMAP, on_change=state.store(state.W_CMAP))
    return alpha, cmap


def overlay_full(
    image: Image.Image, exp: Explanation, k: int, alpha: float, cmap: str, vmax: float | None = None
) -> Image.Image:
    """Map ``k`` of ``exp`` over ``image``, the original (or its erased copy), where the model's input came from."""
    return overlay(image, exp.full_map(k, image.size), alpha=alpha, colormap=cmap, vmax=vmax)


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
    if model_name == DEMO_MODEL:
        others = sum(s is None or s.photo for s in found)
        if others:
            cats = cached_model(model_name).categories
            st.info(
                f"{what.format(n=others, total=len(keys))} not one of the shapes scenes. **{DEMO_MODEL}** knows only "
                f"{len(cats)} shapes ({', '.join(cats)}), drawn on a plain background: shown anything else, it still "
                'names one of them, often with high confidence, which only means "looks most like". For photos, '
                f"pick **{DEFAULT_MODEL}** or another ImageNet model, or load your own under *Your model*."
            )
        return
    scenes = sum(s is not None and not s.photo for s in found)
    if scenes and not model_name.startswith(CUSTOM_PREFIX):  # your own model may have been made for them
        st.info(
            f"{what.format(n=scenes, total=len(keys))} a drawn shapes scene, made for **{DEMO_MODEL}**. "
            f"**{display_name(model_name)}** was not trained on such scenes, and ImageNet has no circle, cross, "
            "square, star or triangle class: its answer only says what the drawing looks most like. Pick "
            f"**{DEMO_MODEL}** to see the scene explained by the model it was made for."
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


def smoothed(exp: Explanation) -> str:
    """The caption's "· smoothing: …" part, when the maps were smoothed (else nothing)."""
    return "" if exp.smoothing == "none" else f" · smoothing: {exp.smoothing}"


def show_warnings(exp: Explanation) -> None:
    """The engine's notes on misleading maps."""
    for note in exp.warnings:
        st.warning(note)


FAITHFULNESS_PROTOCOL = (
    "Deletion: the most salient pixels are replaced by the mean colour, step by step; insertion: they are "
    "put back into a blurred copy. A faithful map makes the score fall fast (low deletion AUC) and rise "
    "fast (high insertion AUC). The score is the class probability for the evidence for a class, the "
    "probability of not that class for the evidence against it, and p(A) / (p(A) + p(B)) for A rather "
    "than B. Average Drop and Increase in Confidence use the image masked by the map. A random map of the "
    "same size is the chance baseline. Protocol: gradcam_core/faithfulness.py."
)


def faithfulness_section(image: images.ImageEntry, exp: Explanation) -> None:
    """The protocol, a button that measures the map (with progress), and the last measurement of it."""
    st.caption(FAITHFULNESS_PROTOCOL)
    if st.button("Measure faithfulness", key=state.W_FAITH):
        bar = st.progress(0.0, text="Measuring…")

        def measuring(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Measuring: {done} of {total} curves")

        rules.measure_faithfulness(image, exp, measuring)
        bar.empty()
    if (measured := rules.measured_faithfulness(image, exp)) is not None:
        show_faithfulness(*measured)


def model_input_view(image: images.ImageEntry, exp: Explanation, input_size: tuple[int, int]) -> None:
    """The region the model was given, resized to its input size, as the model saw it."""
    region = exp.region
    st.image(
        crop(image.image, region).resize(input_size[::-1]),
        caption=f"What the model saw: {region.w}×{region.h} region resized to {input_size[1]}×{input_size[0]}",
        width=320,
    )


def class_row(image: Image.Image, exp: Explanation, categories: list[str], alpha: float, cmap: str) -> None:
    """One overlay per explained class, side by side, each captioned with its probability."""
    row = st.columns(len(exp.classes))
    for k, c in enumerate(exp.classes):
        row[k].image(
            overlay_full(image, exp, k, alpha, cmap),
            caption=f"{categories[c]} ({exp.probabilities[c]:.1%})",
            width="stretch",
        )


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


def pick_row(table: pd.DataFrame, key: str, column_config: dict[str, Any]) -> int | None:
    """``table`` with its thumbnails, one row selectable; the position of the row picked, if any."""
    picked = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key=key,
        column_config={"thumbnail": st.column_config.ImageColumn("", width="small"), **column_config},
    )
    selected = picked["selection"]["rows"] if picked else []
    return int(selected[0]) if selected and selected[0] < len(table) else None

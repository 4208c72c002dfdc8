"""The sidebar's "Your model" form: a TorchScript file or a state_dict, labels, input size, normalisation."""

from __future__ import annotations

import hashlib

import streamlit as st

from gradcam_core import DEMO_MODEL, IMAGENET_MEAN, IMAGENET_STD, list_models, parse_labels, parse_stats
from ui import server, state, workspace
from ui.models import YourModel, add_your_model, release_your_models
from ui.text import plain_text
from workspaces import StorageError, safe_name

#: The upload cap in MB for a labels file (model files: ui.server.ServerSettings.max_model_mb).
MAX_LABELS_MB = 50


def your_model() -> None:
    """The sidebar's "Your model": a TorchScript file or a state_dict, labels, input size, normalisation.

    "Load model" checks everything and, when the model works, makes it the sidebar's model. The
    caller draws this only when the server allows model uploads (:class:`ui.server.ServerSettings`).
    """
    with st.expander("Your model"):
        # On the control itself, as a caption: a warning box would sit in every page's list of warnings.
        st.caption(":warning: A TorchScript file runs the code it holds on this server: upload only models you trust.")
        st.file_uploader(
            "Model file: TorchScript, or a state_dict",
            type=["pt", "pth", "bin"],
            key=state.W_CUSTOM_FILE,
            max_upload_size=server.settings().max_model_mb,
            help="A TorchScript file (torch.jit.save) is loaded on the CPU and runs the code it holds. A state_dict "
            "is read with torch.load(weights_only=True), so files that carry Python code are refused; it needs its "
            "architecture below, and a head with any number of classes is accepted. The file is kept in your "
            "workspace, so a reload or your link brings it back.",
        )
        st.selectbox(
            "Architecture (for a state_dict)",
            [n for n in list_models() if n != DEMO_MODEL],
            key=state.W_CUSTOM_ARCH,
            help="Not used for TorchScript files, which carry their architecture.",
        )
        st.file_uploader(
            "Labels (optional): one per line, or JSON", type=["txt", "json"], key=state.W_CUSTOM_LABELS,
            max_upload_size=MAX_LABELS_MB,
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
    if not server.settings().model_uploads:  # the control is not drawn then; a forged upload is refused too
        st.error("Model uploads are turned off on this server. Pick one of the listed models.")
        return
    upload = st.session_state.get(state.W_CUSTOM_FILE)
    if upload is None:
        st.error("Choose a model file first: a TorchScript .pt, or a state_dict for a listed architecture.")
        return
    labels_file = st.session_state.get(state.W_CUSTOM_LABELS)
    labels = None
    if labels_file is not None:
        try:
            labels = parse_labels(labels_file.getvalue())
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
        file=safe_name(upload.name),
        digest=hashlib.sha256(data).hexdigest(),
        arch=st.session_state[state.W_CUSTOM_ARCH],
        input_size=(int(st.session_state[state.W_CUSTOM_HEIGHT]), int(st.session_state[state.W_CUSTOM_WIDTH])),
        crop=bool(st.session_state[state.W_CUSTOM_CROP]),
        mean=mean,
        std=std,
    )
    try:
        ws = workspace.own()
    except StorageError as exc:
        st.error(f"Your model cannot be kept: {exc}")
        return
    if ws is None:
        st.error(f"Your model cannot be kept: {workspace.unavailable()}")
        return
    key = add_your_model(spec, data, labels, ws)
    if key is not None:  # it replaces the same file loaded earlier with other labels or preprocessing
        same = [k for k in state.custom_models() if YourModel.parse(k).digest == spec.digest]
        release_your_models(ws, [k for k in same if k != key])
        st.session_state[state.CUSTOM] = [k for k in state.custom_models() if k not in same] + [key]
        state.remember(state.W_MODEL, key)

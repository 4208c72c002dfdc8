"""gradcam_core: class activation maps for image classifiers, on torch, torchvision, NumPy, Pillow and OpenCV.

The public API, in the order a caller meets it::

    loaded = load_model("resnet50")                        # or weights="random" / a checkpoint path
    image = load_image("photo.jpg")                        # any format -> RGB, EXIF applied
    batch = loaded.preprocess(image)[None]
    result = compute_cam(loaded.model, batch, loaded.default_layer, classes=None, method="gradcam")
    picture = overlay(image, paste_map(result.maps[0, 0], loaded.input_region(image.size), image.size))

This package never imports Streamlit; the app's UI lives beside it.
"""

from gradcam_core.cam import CamResult, compute_cam
from gradcam_core.images import MAX_PIXELS, ImageError, load_image
from gradcam_core.layers import LayerInfo, list_layers, resolve_layer
from gradcam_core.methods import METHODS, Method
from gradcam_core.models import (
    LoadedModel,
    ModelSpec,
    from_module,
    from_torchscript,
    list_models,
    load_model,
    model_spec,
    weights_path,
)
from gradcam_core.preprocess import Preprocess
from gradcam_core.regions import Box, clamp_box, crop, occlude, paste_map
from gradcam_core.render import COLORMAPS, heatmap_to_rgb, normalize, overlay
from gradcam_core.torchscript import ScriptedModel
from gradcam_core.weights import CheckpointError, WeightsUnavailable, hub_checkpoint_dir

__version__ = "0.1.0"

__all__ = [
    "COLORMAPS",
    "MAX_PIXELS",
    "METHODS",
    "Box",
    "CamResult",
    "CheckpointError",
    "ImageError",
    "LayerInfo",
    "LoadedModel",
    "Method",
    "ModelSpec",
    "Preprocess",
    "ScriptedModel",
    "WeightsUnavailable",
    "clamp_box",
    "compute_cam",
    "crop",
    "from_module",
    "from_torchscript",
    "heatmap_to_rgb",
    "hub_checkpoint_dir",
    "list_layers",
    "list_models",
    "load_image",
    "load_model",
    "model_spec",
    "normalize",
    "occlude",
    "overlay",
    "paste_map",
    "resolve_layer",
    "weights_path",
]

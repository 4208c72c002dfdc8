"""gradcam_core: class activation maps for image classifiers, on torch, torchvision, NumPy, Pillow and OpenCV.

The public API, in the order a caller meets it::

    loaded = load_model("resnet50")                        # or weights="random" / a checkpoint path
    image = load_image("photo.jpg")                        # any format -> RGB, EXIF applied
    batch = loaded.preprocess(image)[None]
    result = compute_cam(loaded.model, batch, loaded.default_layer, classes=None, method="gradcam")
    picture = overlay(image, paste_map(result.maps[0, 0], loaded.input_region(image.size), image.size))

    out = audit("val/", model="efficientnet_lite0", out="val.parquet")   # a whole labelled dataset
    found = read_audit(out)                                  # .frame (pandas), .maps [N, h, w]

This package never imports Streamlit; the app's UI lives beside it.
"""

from gradcam_core.audit import AuditError, AuditFile, audit, read_audit
from gradcam_core.auditor import Auditor
from gradcam_core.cam import CamResult, compute_cam, compute_cams
from gradcam_core.datasets import Dataset, DatasetError, read_dataset
from gradcam_core.demo.model import DEMO_NAME as DEMO_MODEL
from gradcam_core.demo.model import SAMPLES_DIR as DEMO_SAMPLES
from gradcam_core.faithfulness import Faithfulness, evaluate_map, random_map, target_score, verdict
from gradcam_core.guided import guided_gradcam
from gradcam_core.images import MAX_PIXELS, ImageError, load_image
from gradcam_core.labels import parse_labels
from gradcam_core.layers import LayerInfo, depth_layers, list_layers, resolve_layer
from gradcam_core.mapstats import MapStats, map_stats
from gradcam_core.methods import CLASS_AGNOSTIC, METHODS, Method
from gradcam_core.modelref import ModelRef
from gradcam_core.models import (
    DEFAULT_MODEL,
    LoadedModel,
    ModelSpec,
    from_module,
    from_torchscript,
    list_models,
    load_model,
    model_spec,
    weights_path,
)
from gradcam_core.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess, parse_stats
from gradcam_core.preprocess import describe as describe_preprocess
from gradcam_core.progress import Progress
from gradcam_core.provenance import safe_stem, versions
from gradcam_core.provenance import stamp as provenance_stamp
from gradcam_core.regions import Box, clamp_box, crop, occlude, paste_map
from gradcam_core.render import COLORMAPS, GRADIENT_VIEWS, gradient_to_rgb, heatmap_to_rgb, normalize, overlay
from gradcam_core.scorecam import estimate_scorecam
from gradcam_core.torchscript import ScriptedModel, is_torchscript
from gradcam_core.weights import CheckpointError, WeightsUnavailable, download, expected_hash_prefix, hub_checkpoint_dir

__version__ = "0.1.0"

__all__ = [
    "CLASS_AGNOSTIC",
    "COLORMAPS",
    "DEFAULT_MODEL",
    "DEMO_MODEL",
    "DEMO_SAMPLES",
    "GRADIENT_VIEWS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_PIXELS",
    "METHODS",
    "AuditError",
    "AuditFile",
    "Auditor",
    "Box",
    "CamResult",
    "CheckpointError",
    "Dataset",
    "DatasetError",
    "Faithfulness",
    "ImageError",
    "LayerInfo",
    "LoadedModel",
    "MapStats",
    "Method",
    "ModelRef",
    "ModelSpec",
    "Preprocess",
    "Progress",
    "ScriptedModel",
    "WeightsUnavailable",
    "audit",
    "clamp_box",
    "compute_cam",
    "compute_cams",
    "crop",
    "depth_layers",
    "describe_preprocess",
    "download",
    "estimate_scorecam",
    "evaluate_map",
    "expected_hash_prefix",
    "from_module",
    "from_torchscript",
    "gradient_to_rgb",
    "guided_gradcam",
    "heatmap_to_rgb",
    "hub_checkpoint_dir",
    "is_torchscript",
    "list_layers",
    "list_models",
    "load_image",
    "load_model",
    "map_stats",
    "model_spec",
    "normalize",
    "occlude",
    "overlay",
    "parse_labels",
    "parse_stats",
    "paste_map",
    "provenance_stamp",
    "random_map",
    "read_audit",
    "read_dataset",
    "resolve_layer",
    "safe_stem",
    "target_score",
    "verdict",
    "versions",
    "weights_path",
]

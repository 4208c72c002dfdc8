"""Every method against a plain, loop-by-loop reference written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradcam_core import METHODS, compute_cam
from tests.conftest import TinyNet

CLASSES = [0, 3]


def split(model: TinyNet, x: torch.Tensor, cut: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``features[:cut]`` to get A (a leaf), then the rest of the network on A."""
    acts = model.features[:cut](x).detach().requires_grad_(True)
    logits = model.head(model.pool(model.features[cut:](acts.clone())).flatten(1))
    return acts, logits


def reference_map(model: TinyNet, x: torch.Tensor, cut: int, method: str, cls: int, n: int) -> torch.Tensor:
    acts, logits = split(model, x, cut)
    (grads,) = torch.autograd.grad(logits[n, cls], acts)
    a, g = acts[n].detach(), grads[n]
    channels, h, w = a.shape
    out = torch.zeros(h, w)
    if method in ("gradcam", "guided-gradcam"):  # Guided Grad-CAM's coarse map is Grad-CAM's
        for k in range(channels):
            out += g[k].mean() * a[k]
    elif method == "gradcam++":
        for k in range(channels):
            weight = 0.0
            for i in range(h):
                for j in range(w):
                    num = g[k, i, j] ** 2
                    den = 2 * g[k, i, j] ** 2 + a[k].sum() * g[k, i, j] ** 3
                    alpha = num / den if den != 0 else 0.0
                    weight += alpha * max(float(g[k, i, j]), 0.0)
            out += weight * a[k]
    elif method == "xgradcam":
        for k in range(channels):
            out += (g[k] * a[k]).sum() / (a[k].sum() + 1e-7) * a[k]
    elif method == "layercam":
        for k in range(channels):
            out += g[k].clamp(min=0) * a[k]
    elif method == "hirescam":
        for k in range(channels):
            out += g[k] * a[k]
    elif method == "scorecam":
        with torch.no_grad():
            for k in range(channels):
                mask = F.interpolate(a[k][None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
                if mask.max() > mask.min():
                    mask = (mask - mask.min()) / (mask.max() - mask.min())
                    prob = torch.softmax(model(x[n : n + 1] * mask), dim=1)[0, cls]
                    out += prob * a[k]
    elif method == "eigencam":
        mat = a.reshape(channels, h * w).T.numpy().astype(np.float64)
        mean = mat.mean(axis=0)
        mat = mat - mean
        _, _, vt = np.linalg.svd(mat, full_matrices=False)
        proj = mat @ vt[0]
        if vt[0] @ mean < 0:  # the component agrees with the mean activation vector
            proj = -proj
        out = torch.from_numpy(proj.reshape(h, w)).float()
    return out.clamp(min=0)


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize(("layer", "cut"), [("features.3", 4), ("features.0", 1)])
def test_method_matches_reference(tiny: TinyNet, images: torch.Tensor, method: str, layer: str, cut: int) -> None:
    result = compute_cam(tiny, images, layer, classes=CLASSES, method=method, batch_size=4)
    assert result.maps.shape == (3, 2, *split(tiny, images, cut)[0].shape[-2:])
    for n in range(images.shape[0]):
        for j, cls in enumerate(CLASSES):
            expected = reference_map(tiny, images, cut, method, cls, n)
            torch.testing.assert_close(result.maps[n, j], expected, rtol=1e-4, atol=1e-5)


def test_conv_rectified_in_place_is_explained_as_rectified(tiny: TinyNet, images: torch.Tensor) -> None:
    """``features.2`` is a conv whose output ``ReLU(inplace=True)`` overwrites: the map is the ReLU's."""
    conv = compute_cam(tiny, images, "features.2", classes=CLASSES)
    relu = compute_cam(tiny, images, "features.3", classes=CLASSES)
    torch.testing.assert_close(conv.maps, relu.maps)

"""Eigen smoothing worked out by hand and against the method's own weighting; test-time augmentation aligned back."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from gradcam_core import compute_cam, load_image, load_model
from gradcam_core.boxscore import box_scores
from gradcam_core.demo.evaluate import clean_scenes
from gradcam_core.demo.model import SAMPLES_DIR
from gradcam_core.methods import METHODS, eigen_smooth
from gradcam_core.regions import Box
from gradcam_core.smoothing import smoothing_label, tta_cam
from tests.conftest import Counter


def test_eigen_smoothing_of_one_channel_by_hand() -> None:
    # One channel, values 1 2 3 4: the only component is the centred map (-1.5 -0.5 0.5 1.5), its sign
    # agreeing with the map itself; rectified: 0 0 0.5 1.5.
    weighted = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, 2, 2)
    torch.testing.assert_close(eigen_smooth(weighted), torch.tensor([[[[0.0, 0.0], [0.5, 1.5]]]]))
    torch.testing.assert_close(eigen_smooth(-weighted), torch.tensor([[[[1.5, 0.5], [0.0, 0.0]]]]))


def test_eigen_smoothing_keeps_the_main_direction_and_drops_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    pattern = torch.zeros(8, 8)
    pattern[2:5, 3:6] = 1.0
    channel = torch.linspace(0.5, 2.0, 16)
    noise = 0.05 * torch.randn(16, 8, 8, generator=gen)
    weighted = (channel[:, None, None] * pattern + noise)[None, None]
    smoothed = eigen_smooth(weighted)[0, 0]
    plain = torch.relu(weighted.sum(2))[0, 0]
    inside, outside = pattern.bool(), ~pattern.bool()
    # Both find the square; the smoothed map's background is flatter relative to its peak.
    assert smoothed[inside].min() > smoothed[outside].max() and plain[inside].min() > plain[outside].max()
    assert (smoothed[outside].std() / smoothed.max()) < (plain[outside].std() / plain.max())


def test_the_engine_smooths_each_gradient_method_of_its_weighted_activations() -> None:
    loaded = load_model("shapes-demo")
    x = loaded.preprocess(load_image(SAMPLES_DIR / "star.png"))[None]
    for method in [m for m, spec in METHODS.items() if spec.weigh is not None]:
        plain = compute_cam(loaded.model, x, loaded.default_layer, None, method)  # the prediction, star
        smooth = compute_cam(loaded.model, x, loaded.default_layer, None, method, eigen_smooth=True)
        assert smooth.maps.shape == plain.maps.shape and smooth.maps.min() >= 0
        assert not torch.allclose(smooth.maps, plain.maps), method
        assert torch.corrcoef(torch.stack([smooth.maps.flatten(), plain.maps.flatten()]))[0, 1] > 0.5, method
    eigen = compute_cam(loaded.model, x, loaded.default_layer, [0], "eigencam", eigen_smooth=True)
    assert any("eigen smoothing applies to the gradient methods only" in w for w in eigen.warnings)


def test_test_time_augmentation_averages_six_views_aligned_back() -> None:
    loaded = load_model("shapes-demo")
    x = loaded.preprocess(load_image(SAMPLES_DIR / "star.png"))[None]
    counter = Counter(loaded.model)
    try:
        got = tta_cam(loaded.model, x, loaded.default_layer, [3], scales=(0.75, 1.0, 1.25))
    finally:
        counter.handle.remove()
    assert counter.images == 6
    h, w = got.maps.shape[-2:]
    views = []
    for s in (0.75, 1.0, 1.25):
        size = round(128 * s)
        xs = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False) if s != 1.0 else x
        for flip in (False, True):
            m = compute_cam(loaded.model, xs.flip(-1) if flip else xs, loaded.default_layer, [3]).maps
            m = m.flip(-1) if flip else m
            views.append(F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False))
    torch.testing.assert_close(got.maps, torch.stack(views).mean(0), rtol=1e-4, atol=1e-6)
    assert smoothing_label(True, (0.75, 1.0, 1.25)).startswith("test-time augmentation ×6 passes")
    assert smoothing_label(False, None) == "none"


def test_smoothed_maps_still_point_at_the_shape() -> None:
    """On 20 scenes the demo model has not seen, TTA + eigen maps land in the shape's box as the plain maps do."""
    loaded = load_model("shapes-demo")
    hits = {"plain": 0, "smoothed": 0}
    for scene in clean_scenes(20, world="other"):
        x = loaded.preprocess(Image.fromarray(scene.image))[None]
        box, region = Box(*scene.box), Box(0, 0, 128, 128)
        plain = compute_cam(loaded.model, x, loaded.default_layer).maps[0, 0]
        smooth = tta_cam(loaded.model, x, loaded.default_layer, eigen_smooth=True).maps[0, 0]
        hits["plain"] += bool(box_scores(plain, box, region, (128, 128)).pointing)
        hits["smoothed"] += bool(box_scores(smooth, box, region, (128, 128)).pointing)
    assert hits["smoothed"] >= 17 and hits["plain"] >= 17, hits

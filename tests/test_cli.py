"""The command line on real photos (random-weights ImageNet model) and on the demo samples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gradcam_core.cli import main
from gradcam_core.demo.model import SAMPLES_DIR
from gradcam_core.provenance import SCHEMA


def test_shared_photos_with_a_random_imagenet_model(shared_images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["explain", str(shared_images), "--model", "resnet18", "--weights", "random", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    photos = sorted(p for p in shared_images.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    assert manifest["schema"] == SCHEMA and manifest["model"]["trained"] is False
    assert [Path(i["image"]).name for i in manifest["items"]] == [p.name for p in photos]
    first = manifest["items"][0]
    (entry,) = first["maps"]
    assert np.load(out / entry["map"]).shape == (7, 7) == tuple(entry["map_shape"])
    assert Image.open(out / entry["overlay"]).size == Image.open(photos[0]).size
    assert len(first["top5"]) == 5 and first["top5"][0]["index"] == entry["index"]


def test_demo_samples_top5_with_a_crop_and_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    shutil.copytree(SAMPLES_DIR, folder)
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    status = main(["explain", str(folder), "--model", "shapes-demo", "--classes", "top5", "--crop", "0,0,100,128",
                   "--method", "layercam", "--out", str(out)])  # fmt: skip
    assert status == 1  # one file skipped
    manifest = json.loads((out / "manifest.json").read_text())
    assert [Path(s["image"]).name for s in manifest["skipped"]] == ["broken.png"]
    assert "not an image format" in manifest["skipped"][0]["reason"]
    assert len(manifest["items"]) == 9
    item = next(i for i in manifest["items"] if i["image"].endswith("tagged_circle_called_star.png"))
    assert item["crop"] == [0, 0, 100, 128] and len(item["maps"]) == 5
    assert manifest["model"]["weights_sha256"] and manifest["method"] == "layercam"
    err = capsys.readouterr().err
    assert "[1/10]" in err and "skipped 1" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nope"], "--model must be a TorchScript file or one of"),
        (["--model", "shapes-demo", "--classes", "top7"], "--classes must be"),
        (["--model", "shapes-demo", "--classes", "9"], "indices must be in 0..4"),
        (["--model", "shapes-demo", "--crop", "1,2,3"], "--crop must be x,y,w,h"),
        (["--model", "shapes-demo", "--object-box", "1,2,3,0"], "--object-box must be x,y,w,h"),
        (["--model", "shapes-demo", "--layer", "features.block9"], "unknown layer 'features.block9'"),
        (["--model", "shapes-demo", "--alpha", "3"], "--alpha must be between 0 and 1"),
        (["--model", str(SAMPLES_DIR / "circle.png")], "'circle.png' is not a TorchScript file"),
        (["--model", "shapes-demo", "--input-size", "1,2,3"], "--input-size must be H,W"),
        (["--model", "shapes-demo", "--resize", "big"], "--resize must be a number of pixels or 'none'"),
        (["--model", "shapes-demo", "--mean", "1,2"], "mean must be one number, or three"),
        (["--model", "shapes-demo", "--input-size", "128,128", "--resize", "64"], "`resize` at least"),
        (["--model", "shapes-demo", "--labels", "missing.txt"], "missing.txt"),
        (["--model", "shapes-demo", "--methods", "gradcam,nope"], "unknown method(s) nope"),
        (["--model", "shapes-demo", "--layers", "features.block4,features.blok9"], "unknown layer 'features.blok9'"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["explain", str(SAMPLES_DIR / "circle.png"), *args, "--out", str(tmp_path)])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_torchscript_model_with_labels_and_preprocessing_matches_the_registry_model(tmp_path: Path) -> None:
    import warnings

    import torch

    from gradcam_core import load_model
    from gradcam_core.demo.world import CATEGORIES

    model_file, labels = tmp_path / "shapes.pt", tmp_path / "shapes.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.14
        torch.jit.script(load_model("shapes-demo").model).save(str(model_file))
    labels.write_text("\n".join(CATEGORIES))
    common = ["explain", str(SAMPLES_DIR), "--classes", "top5", "--method", "gradcam++"]
    assert main([*common, "--model", "shapes-demo", "--out", str(tmp_path / "registry")]) == 0
    preprocessing = ["--input-size", "128,128", "--resize", "none", "--mean", "0.5", "--std", "0.25"]
    mine = ["--model", str(model_file), "--labels", str(labels), *preprocessing]
    assert main([*common, *mine, "--out", str(tmp_path / "script")]) == 0
    registry, script = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("registry", "script"))
    assert script["model"]["weights_sha256"] and "Preprocess(size=(128, 128), mean=(0.5, 0.5, 0.5)" in str(script)
    assert len(script["items"]) == len(registry["items"]) == 9
    for ours, theirs in zip(script["items"], registry["items"], strict=True):
        assert [c["name"] for c in ours["top5"]] == [c["name"] for c in theirs["top5"]]
        for a, b in zip(ours["maps"], theirs["maps"], strict=True):
            assert a["name"] == b["name"] and a["probability"] == pytest.approx(b["probability"], abs=1e-5)
            ours_map, theirs_map = np.load(tmp_path / "script" / a["map"]), np.load(tmp_path / "registry" / b["map"])
            np.testing.assert_allclose(ours_map, theirs_map, rtol=1e-4, atol=1e-6)


def test_the_app_subcommand_serves_the_app(tmp_path: Path) -> None:
    """``python -m gradcam_core app`` (the console script's ``gradcam-explorer app``) starts a server that answers."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["--server.headless", "true", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    # From another folder, with the checkout on the path as `pip install -e .` puts it (README's test command
    # does not install the package itself).
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen(
        [sys.executable, "-m", "gradcam_core", "app", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, answer = time.monotonic() + 60, b""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                    answer = reply.read()
                break
            except OSError:
                time.sleep(0.5)
        assert answer == b"ok", server.stdout.read().decode() if server.poll() is not None and server.stdout else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
            assert b"<title>Streamlit</title>" in reply.read()
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_exported_file_names_never_carry_a_path_or_odd_characters() -> None:
    from gradcam_core import safe_stem

    assert safe_stem("../../etc/passwd") == "passwd" and safe_stem("C:\\photos\\cat 1.jpg") == "cat_1"
    assert safe_stem(".hidden") == "hidden" and safe_stem("...") == "image" and safe_stem("été.png") == "t"
    assert safe_stem("x" * 80 + ".png") == "x" * 60 and len(safe_stem("y" * 80, 40)) == 40


def test_an_object_box_scores_every_map_in_the_manifest(tmp_path: Path) -> None:
    from gradcam_core.boxscore import box_scores
    from gradcam_core.demo.evaluate import clean_scenes
    from gradcam_core.regions import Box

    scene = clean_scenes(1, world="other")[0]
    Image.fromarray(scene.image).save(tmp_path / "scene.png")
    box = Box(*scene.box)
    args = [
        "explain",
        str(tmp_path / "scene.png"),
        "--model",
        "shapes-demo",
        "--classes",
        "top5",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main([*args, "--object-box", ",".join(map(str, box))]) == 0
    maps = json.loads((tmp_path / "out" / "manifest.json").read_text())["items"][0]["maps"]
    top = maps[0]["box_scores"]
    assert top["box"] == list(box) and top["pointing"] is True and top["energy"] > 2 * top["chance"]
    for m in maps:  # each map's scores are those of its saved raw map
        want = box_scores(np.load(tmp_path / "out" / m["map"]), box, Box(0, 0, 128, 128), (128, 128))
        assert m["box_scores"]["energy"] == pytest.approx(want.energy, abs=1e-6)
        assert m["box_scores"]["chance"] == pytest.approx(box.w * box.h / 128**2, abs=1e-6)


def test_a_grid_of_methods_and_layers_with_smoothing(tmp_path: Path) -> None:
    """--methods × --layers: a map per cell equal to the engine's own, a grid sheet, Guided Grad-CAM's pixels."""
    import torch

    from gradcam_core import compute_cam, load_image, load_model

    out = tmp_path / "out"
    args = ["explain", str(SAMPLES_DIR / "star.png"), "--model", "shapes-demo", "--out", str(out)]
    grid = ["--methods", "gradcam,layercam,guided-gradcam", "--layers", "features.block3,features.block4"]
    assert main([*args, *grid]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["grid"] == {"layers": ["features.block3", "features.block4"],
                                "methods": ["gradcam", "layercam", "guided-gradcam"]}  # fmt: skip
    assert manifest["smoothing"] == "none"
    (item,) = manifest["items"]
    assert [(m["layer"], m["method"]) for m in item["maps"]] == [
        (layer, method) for layer in manifest["grid"]["layers"] for method in manifest["grid"]["methods"]
    ]
    assert Image.open(out / item["grid"]).size[0] > 3 * 256
    loaded = load_model("shapes-demo")
    x = loaded.preprocess(load_image(SAMPLES_DIR / "star.png"))[None]
    for m in item["maps"]:
        want = compute_cam(loaded.model, x, m["layer"], [m["index"]], m["method"]).maps[0, 0].numpy()
        np.testing.assert_allclose(np.load(out / m["map"]), want, rtol=1e-4, atol=1e-6 * float(want.max()))
        assert ("guided_map" in m) == (m["method"] == "guided-gradcam")
    guided = next(m for m in item["maps"] if m["method"] == "guided-gradcam")
    assert np.load(out / guided["guided_map"]).shape == (3, 128, 128)
    # Smoothing is recorded, and changes the maps; "blocks" names the model's blocks.
    assert (
        main(
            [*args, "--methods", "all", "--layers", "blocks", "--smoothing", "tta+eigen", "--out", str(tmp_path / "s")]
        )
        == 0
    )
    smoothed = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert smoothed["smoothing"].startswith("test-time augmentation ×6 passes") and "eigen" in smoothed["smoothing"]
    assert smoothed["grid"]["methods"] == [
        "gradcam",
        "gradcam++",
        "xgradcam",
        "layercam",
        "hirescam",
        "guided-gradcam",
        "eigencam",
    ]
    assert len(smoothed["grid"]["layers"]) > 8 and smoothed["grid"]["layers"][-1] == "features"
    tta = next(m for m in smoothed["items"][0]["maps"] if (m["layer"], m["method"]) == ("features", "gradcam"))
    plain = compute_cam(loaded.model, x, "features", [tta["index"]]).maps[0, 0].numpy()
    assert not np.allclose(plain, np.load(tmp_path / "s" / tta["map"]), rtol=0.05)
    assert torch.isfinite(torch.from_numpy(np.load(tmp_path / "s" / tta["map"]))).all()


def test_an_engine_error_on_an_image_is_a_skip_with_its_reason(tmp_path: Path) -> None:
    """Guided Grad-CAM on a TorchScript file: the image is skipped with the engine's message; a manifest is written."""
    import warnings

    import torch

    from gradcam_core import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(load_model("shapes-demo").model).save(str(tmp_path / "m.pt"))
    args = ["explain", str(SAMPLES_DIR / "star.png"), "--model", str(tmp_path / "m.pt"), "--input-size", "128,128"]
    assert main([*args, "--resize", "none", "--method", "guided-gradcam", "--out", str(tmp_path / "o")]) == 1
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["items"] == [] and "needs an eager PyTorch model" in manifest["skipped"][0]["reason"]

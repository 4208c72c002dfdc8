"""The dataset audit, run here: the demo model on shapes scenes with planted tags, EfficientNet-Lite0 on
the real photos, bad inputs, and a run killed and resumed. (The Ray mode: tests/test_audit_ray.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from gradcam_core import (
    DEMO_MODEL,
    AuditError,
    DatasetError,
    audit,
    compute_cam,
    load_image,
    load_model,
    map_stats,
    read_audit,
    read_dataset,
)
from gradcam_core.audit_tables import class_accuracy, confusion
from gradcam_core.datasets import read_bytes
from gradcam_core.demo.dataset import write_dataset
from gradcam_core.demo.world import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
CLEAN, TAGGED = 40, 10


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gradcam_core", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_dataset(tmp_path_factory.mktemp("audit") / "shapes", CLEAN, TAGGED)
    (folder / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a whole PNG")
    (folder / "readme.txt").write_text("scenes for the audit test")
    (folder / "square" / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def shapes_audit(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return audit(shapes, model=DEMO_MODEL, out=tmp_path_factory.mktemp("out") / "shapes.parquet", progress=False)


def test_the_shortcut_ranking_puts_the_tagged_scenes_first(shapes_audit: Path) -> None:
    found = read_audit(shapes_audit).frame
    ok = found[found["error"].isna()]
    assert len(ok) == CLEAN + TAGGED
    ranked = ok.sort_values("border_mass", ascending=False)
    k = TAGGED
    top = ranked["path"].head(k).str.contains("tagged-").sum()
    tagged = ok[ok["path"].str.contains("tagged-")]
    assert top / k >= 0.9, ranked[["path", "pred_name", "border_mass"]].head(2 * k).to_string()
    # The tag is what the model reads: most tagged non-stars are called "star", and their maps lie on the tag.
    assert (tagged["pred_name"] == "star").mean() >= 0.8
    assert tagged["border_mass"].median() > 3 * ok[~ok["path"].str.contains("tagged-")]["border_mass"].median()
    # The clean scenes are mostly right: the wrong ones of the tagged scenes are the right-for-the-wrong-reason kind.
    clean = ok[ok["path"].str.contains("clean-")]
    assert clean["correct"].mean() >= 0.85


def test_the_file_has_one_row_per_image_its_maps_as_tensors_and_its_provenance(shapes_audit: Path) -> None:
    table = pq.read_table(shapes_audit)
    maps = table.column("map_16x16").combine_chunks()
    assert isinstance(maps.type, pa.FixedShapeTensorType)
    assert maps.type.value_type == pa.float32() and list(maps.type.shape) == [16, 16]
    assert table.num_rows == CLEAN + TAGGED + 1  # and broken.png, with its reason
    paths = table.column("path").to_pylist()
    assert paths == sorted(paths) and len(set(paths)) == len(paths)
    for name in ("label", "true_index", "pred_index", "pred_name", "correct", "true_prob", "top5_index", "top5_prob"):
        assert name in table.column_names
    for name in ("peak_x", "peak_y", "hot_mass", "border_mass", "entropy", "model", "layer", "method", "error"):
        assert name in table.column_names
    meta = json.loads(table.schema.metadata[b"gradcam_audit"])
    weights = ROOT / "gradcam_core" / "demo" / "shapes_demo.pt"
    assert meta["schema"] == "gradcam-explorer/audit/1"
    assert meta["model"]["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert "Preprocess(size=(128, 128)" in meta["model"]["preprocess"]
    assert {"torch", "torchvision", "gradcam_core"} <= set(meta["versions"])
    assert meta["layers"] == ["features.block4"] and meta["method"] == "gradcam"
    # The reader gives the same maps, row for row, as the tensor column itself.
    found = read_audit(shapes_audit)
    assert found.maps.shape == (table.num_rows, 16, 16) and found.maps.dtype == np.float32
    ok = found.frame["error"].isna().to_numpy()
    stored = maps.storage.to_pylist()
    k = int(np.flatnonzero(ok)[3])
    np.testing.assert_array_equal(found.maps[k], np.asarray(stored[k], np.float32).reshape(16, 16))
    assert np.isnan(found.maps[~ok]).all()
    # Each row's statistics are those of its own map: the peak sits where the map is largest.
    row = found.frame.iloc[k]
    y, x = np.unravel_index(int(np.argmax(found.maps[k])), (16, 16))
    assert (row["peak_x"], row["peak_y"]) == pytest.approx(((x + 0.5) / 16, (y + 0.5) / 16))


def test_a_broken_image_keeps_its_row_and_files_left_out_are_named(shapes_audit: Path) -> None:
    found = read_audit(shapes_audit)
    broken = found.frame[found.frame["path"] == "circle/broken.png"].iloc[0]
    assert "not a readable image" in broken["error"]
    assert broken["label"] == "circle" and broken["true_name"] == "circle"
    assert pd.isna(broken["pred_index"]) and pd.isna(broken["border_mass"])
    problems = " ".join(found.meta["problems"])
    assert "not in a class folder" in problems and "readme.txt" in problems
    assert "not images" in problems and "square/notes.txt" in problems


def test_the_cli_reports_bad_inputs_and_audits_the_rest(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    run = cli("audit", str(tmp_path / "empty"), "--model", DEMO_MODEL, "--out", str(tmp_path / "e.parquet"))
    assert run.returncode == 2 and "no images found" in run.stderr and "Traceback" not in run.stderr

    data = write_dataset(tmp_path / "data", clean=6, tagged=0)
    (data / "hexagon").mkdir()  # a folder that is not one of the model's classes
    Image.open(next((data / "circle").glob("*.png"))).save(data / "hexagon" / "odd.png")
    listed = [f"{p.parent.name}/{p.name},{p.parent.name}" for p in sorted(data.glob("*/*.png"))]
    (data / "list.csv").write_text("path,label\n" + "\n".join([*listed, "circle/gone.png,circle"]) + "\n")
    run = cli("audit", str(data / "list.csv"), "--model", DEMO_MODEL, "--out", str(tmp_path / "c.parquet"), "--quiet")
    assert run.returncode == 1, run.stderr  # one listed file does not exist
    assert "1 file(s) that list.csv lists do not exist: circle/gone.png" in run.stderr
    assert "'hexagon' (1)" in run.stderr and "--labels-map" in run.stderr
    found = read_audit(tmp_path / "c.parquet").frame.set_index("path")
    assert len(found) == 8 and found["error"].notna().sum() == 1
    assert found.loc["circle/gone.png", "error"].startswith("no such file")
    odd = found.loc["hexagon/odd.png"]  # audited, with no true class
    assert pd.isna(odd["true_name"]) and odd["pred_name"] in CATEGORIES and pd.isna(odd["correct"])

    with zipfile.ZipFile(tmp_path / "data.zip", "w") as z:  # a zipped folder: its top folder is not a class
        for p in sorted(data.glob("*/*.png")):
            z.write(p, f"data/{p.parent.name}/{p.name}")
        z.writestr("data/circle/notes.pdf", b"%PDF-1.4 not an image")
        z.writestr("data/square/bad.jpg", b"\xff\xd8\xff\xe0 truncated")
    run = cli("audit", str(tmp_path / "data.zip"), "--model", DEMO_MODEL, "--out", str(tmp_path / "z.parquet"))
    assert run.returncode == 1 and "not images and were left out: circle/notes.pdf" in run.stderr
    found = read_audit(tmp_path / "z.parquet").frame.set_index("path")
    assert len(found) == 8 and "not a readable image" in found.loc["square/bad.jpg", "error"]
    assert found["pred_name"].notna().sum() == 7


def test_a_batch_in_which_no_image_can_be_read_does_not_stop_the_audit(tmp_path: Path) -> None:
    for n in range(3):
        (tmp_path / "data" / "star").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / "star" / f"{n}.jpg").write_bytes(b"not a jpeg")
    out = audit(tmp_path / "data", model=DEMO_MODEL, out=tmp_path / "o.parquet", batch_size=2, progress=False)
    found = read_audit(out)
    assert len(found.frame) == 3 and found.frame["error"].str.startswith("not a readable image").all()
    assert np.isnan(found.maps).all()


def test_a_labels_map_names_the_classes_and_two_layers_give_two_rows_an_image(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", clean=5, tagged=0)
    for folder in list(data.iterdir()):
        folder.rename(data / f"n0{CATEGORIES.index(folder.name)}")  # WordNet-like IDs
    (tmp_path / "map.json").write_text(json.dumps({f"n0{i}": name for i, name in enumerate(CATEGORIES)}))
    out = tmp_path / "o.parquet"
    layers = ("--layer", "features.block3", "--layer", "features.block4")
    run = cli(
        "audit",
        str(data),
        "--model",
        DEMO_MODEL,
        "--labels-map",
        str(tmp_path / "map.json"),
        *layers,
        "--out",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    assert "wrote 10 rows" in run.stderr
    with pytest.raises(AuditError, match=re.escape("several layers: pick one of features.block3, features.block4")):
        read_audit(out)
    coarse, fine = read_audit(out, layer="features.block4"), read_audit(out, layer="features.block3")
    assert coarse.maps.shape == (5, 16, 16) and fine.maps.shape == (5, 32, 32)
    found = coarse.frame
    assert found["true_name"].tolist() == [CATEGORIES[int(p[2])] for p in found["path"]]
    assert found["label"].str.startswith("n0").all()
    # Each layer's map is that layer's: as compute_cam gives it at block3 for the same image.
    loaded = load_model(DEMO_MODEL)
    image = load_image(Path(found["uri"].iloc[2]))
    at3 = compute_cam(loaded.model, loaded.preprocess(image)[None], "features.block3").maps[0, 0].numpy()
    np.testing.assert_allclose(fine.maps[2], at3, rtol=1e-4, atol=1e-5 * float(at3.max()))
    assert not np.allclose(fine.maps[2][::2, ::2], coarse.maps[2])
    with pytest.raises(AuditError, match=re.escape("made at layers features.block3, features.block4")):
        audit(data, model=DEMO_MODEL, out=out, layers=["features.block4"], resume=True, progress=False)


def test_datasets_are_listed_as_a_person_would_lay_them_out(tmp_path: Path) -> None:
    cats = ["circle", "square", "crane", "star", "crane"]  # a name twice, as ImageNet has "crane"
    png = (ROOT / "gradcam_core" / "demo" / "samples").glob("*.png").__next__().read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip", "w") as z:  # one class folder at the root
        z.writestr("circle/a!.png", png)  # a member name with "!"
        z.writestr("circle/b.png", png)
    one = read_dataset(tmp_path / "one.zip", cats)
    assert [(i.path, i.index) for i in one.items] == [("circle/a!.png", 0), ("circle/b.png", 0)]
    assert read_bytes(one.items[0].uri) == png
    with zipfile.ZipFile(tmp_path / "beside.zip", "w") as z:  # an ImageFolder with a CSV of notes beside it
        z.writestr("data/square/a.png", png)
        z.writestr("data/crane/b.png", png)
        z.writestr("data/notes.csv", "photographer,date\nann,2024\n")
    beside = read_dataset(tmp_path / "beside.zip", cats)
    assert [(i.path, i.index) for i in beside.items] == [("crane/b.png", 2), ("square/a.png", 1)]
    assert any("'crane'" not in p and "crane" in p and "first" in p for p in beside.problems), beside.problems
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "x.png").write_bytes(png)
    (tmp_path / "list.csv").write_text("filename,class\n./imgs/x.png,star\n")
    listed = read_dataset(tmp_path / "list.csv", cats)
    assert [(i.path, i.index) for i in listed.items] == [("imgs/x.png", 3)]
    assert Path(listed.items[0].uri).is_absolute() and read_bytes(listed.items[0].uri) == png


def test_an_existing_output_is_kept_unless_resumed_by_the_same_run(shapes: Path, tmp_path: Path) -> None:
    out = audit(shapes, model=DEMO_MODEL, out=tmp_path / "o.parquet", limit=4, progress=False)
    with pytest.raises(AuditError, match="--resume"):
        audit(shapes, model=DEMO_MODEL, out=out, limit=4, progress=False)
    with pytest.raises(AuditError, match="method"):
        audit(shapes, model=DEMO_MODEL, out=out, method="gradcam++", resume=True, progress=False)
    with pytest.raises(DatasetError, match="no dataset at"):
        audit(tmp_path / "nowhere", model=DEMO_MODEL, out=tmp_path / "n.parquet")


def test_resume_after_a_killed_run_loses_no_row_and_repeats_none(
    shapes: Path, shapes_audit: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.parquet"
    parts = tmp_path / "o.parquet.parts"
    args = ("audit", str(shapes), "--model", DEMO_MODEL, "--out", str(out), "--batch-size", "2", "--quiet")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # slow enough to be killed half-way
    run = subprocess.Popen([sys.executable, "-m", "gradcam_core", *args], cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(list(parts.glob("part-*.parquet"))) < 5 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        run.send_signal(signal.SIGKILL)
    finally:
        run.wait(30)
        assert run.stderr is not None
        run.stderr.close()
    written = sum(pq.read_metadata(p).num_rows for p in parts.glob("part-*.parquet"))
    assert not out.exists() and 10 <= written < CLEAN + TAGGED + 1, "the run was not killed half-way"

    again = cli(*args, "--resume")
    assert again.returncode == 1, again.stderr  # broken.png
    assert f"resuming: {written} row(s) already written; {CLEAN + TAGGED + 1 - written} image(s) to go" in again.stderr
    resumed, whole = read_audit(out), read_audit(shapes_audit)
    assert not parts.exists()
    assert resumed.frame["path"].tolist() == whole.frame["path"].tolist()  # each once, in order
    cols = ["pred_index", "border_mass", "error"]
    assert resumed.frame[cols].equals(whole.frame[cols])
    # The killed run had one thread, the whole run two: a probability may differ in its last bits.
    np.testing.assert_allclose(resumed.frame["true_prob"], whole.frame["true_prob"], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(resumed.maps, whole.maps, rtol=1e-5, atol=1e-7)


def test_the_local_run_imports_no_ray(shapes: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from gradcam_core import audit; "
        f"audit({str(shapes)!r}, model={DEMO_MODEL!r}, out={str(tmp_path / 'o.parquet')!r}, limit=3, progress=False); "
        "print('ray' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_the_real_photos_audit_as_compute_cam_explains_them_one_by_one(shared_images: Path, tmp_path: Path) -> None:
    loaded = load_model("efficientnet_lite0")
    manifest = json.loads((shared_images / "manifest.json").read_text())
    data = tmp_path / "photos"
    for entry in manifest["images"]:
        expected = entry["expected_imagenet_indices"]
        label = loaded.categories[expected[0]] if expected else "no single class"
        (data / label).mkdir(parents=True, exist_ok=True)
        (data / label / entry["file"]).symlink_to(shared_images / entry["file"])
    layers = [loaded.default_layer, "blocks.5.0"]
    out = audit(
        data, model="efficientnet_lite0", out=tmp_path / "o.parquet", layers=layers, batch_size=8, progress=False
    )
    found = read_audit(out, layer=loaded.default_layer)
    frame = found.frame
    assert len(frame) == len(manifest["images"]) and frame["error"].isna().all()
    assert "'no single class'" in " ".join(read_audit(out, layer="blocks.5.0").meta["problems"])
    for k, row in frame.iterrows():
        image = load_image(data / row["path"])
        result = compute_cam(loaded.model, loaded.preprocess(image)[None], loaded.default_layer, classes=None)
        probs = result.probabilities[0]
        assert row["pred_index"] == int(result.classes[0, 0]), row["path"]
        assert row["pred_name"] == loaded.categories[int(result.classes[0, 0])]
        assert row["top5_index"].tolist() == torch.topk(probs, 5).indices.tolist()
        np.testing.assert_allclose(row["top5_prob"], torch.topk(probs, 5).values.numpy(), rtol=1e-4, atol=1e-6)
        one = result.maps[0, 0].numpy()
        np.testing.assert_allclose(found.maps[k], one, rtol=1e-3, atol=1e-4 * float(one.max()), err_msg=row["path"])
        if not pd.isna(row["true_index"]):
            assert row["correct"] == (row["pred_index"] == row["true_index"])
            assert row["true_prob"] == pytest.approx(float(probs[int(row["true_index"])]), rel=1e-4, abs=1e-7)
    # Most photos are what the manifest expects (16 of 18 at top-1, measured in test_real_photos).
    labelled = frame[frame["true_name"].notna()]
    assert labelled["correct"].mean() >= 0.7


def test_map_statistics_worked_out_by_hand() -> None:
    corner = np.zeros((8, 8), np.float32)
    corner[0, 7] = 3.0  # all the mass in the top-right cell
    s = map_stats(corner)
    assert (s.peak_x, s.peak_y) == (15 / 16, 1 / 16)
    assert s.peak_offcentre == pytest.approx(np.hypot(7 / 16, 7 / 16) / np.hypot(0.5, 0.5))
    assert (s.hot_mass, s.border_mass, s.entropy) == (1.0, 1.0, 0.0)
    flat = map_stats(np.full((8, 8), 2.0))
    assert flat.border_mass == pytest.approx(28 / 64)  # the outer ring: cell centres within 1/8 of a side
    assert flat.hot_mass == pytest.approx(6 / 64)  # the hottest 10 % of 64 cells: 6
    assert flat.entropy == pytest.approx(1.0)
    assert np.isnan(map_stats(np.zeros((7, 7))).border_mass)  # no mass: no statistics, not zeros


def test_two_classes_of_one_name_stay_apart_in_the_tables() -> None:
    frame = pd.DataFrame(
        {
            "true_name": ["crane", "crane", "crane", "star"],
            "true_index": [134, 517, 517, 3],
            "pred_name": ["crane", "crane", "crane", "crane"],
            "pred_index": [517, 517, 134, 134],
            "correct": [False, True, False, False],
            "error": [None] * 4,
        }
    )
    cells = confusion(frame).set_index(["true_name", "pred_name"])["count"].to_dict()
    assert cells == {("crane #134", "crane #517"): 1, ("crane #517", "crane #517"): 1,
                     ("crane #517", "crane #134"): 1, ("star", "crane #134"): 1}  # fmt: skip
    by_class = class_accuracy(frame).set_index("class")["accuracy"].to_dict()
    assert by_class == {"crane #134": 0.0, "crane #517": 0.5, "star": 0.0}

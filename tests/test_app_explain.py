"""Explain (and the pages beside it) in the real Streamlit runtime: contrasts, engine errors, notices, legends."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest
from torch import nn

from gradcam_core.demo.model import SAMPLES_DIR
from tests.conftest import my_cnn
from tests.test_app import button, image_uploader, ok, pick_sample, start, upload_weights
from tests.test_app_batch import batch_uploader
from tests.test_app_your_model import preprocessing, scripted_bytes
from ui import state


def load(at: AppTest, file: str, module: nn.Module, labels: list[str] | None = None) -> AppTest:
    if labels is not None:
        at.file_uploader(key=state.W_CUSTOM_LABELS).upload("labels.txt", "\n".join(labels).encode(), "text/plain")
    at = upload_weights(at, "resnet18", file, scripted_bytes(module))
    assert not at.error, [e.value for e in at.error]
    return at


def photo(width: int = 160, height: int = 90) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def class_box(at: AppTest):  # type: ignore[no-untyped-def]
    return next(s for s in at.selectbox if s.key and s.key.startswith(state.W_CLASS))


def test_rather_than_never_offers_the_chosen_class() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    preprocessing(at, 32, 32, crop=False, mean="0.5", std="0.25")
    at = load(at, "eight.pt", my_cnn(classes=8), [f"class {i}" for i in range(8)])
    class_box(at).select_index(6).run()  # a class outside the top 5
    cls = class_box(ok(at)).value  # values are class indices; AppTest's options are the labels shown
    at.radio(key=state.W_VIEW).set_value("contrast").run()
    contrast = next(s for s in ok(at).selectbox if s.key and s.key.startswith(state.W_CONTRAST))
    assert f"class {cls}" not in contrast.options and len(contrast.options) == 7, (cls, contrast.options)
    # Then choosing, as the class, the one it is contrasted with: the contrast moves to another class.
    contrast.select_index(6).run()
    chosen = next(s for s in ok(at).selectbox if s.key and s.key.startswith(state.W_CONTRAST)).value
    picker = class_box(ok(at))
    picker.select_index(next(i for i, o in enumerate(picker.options) if o.startswith(f"class {chosen} ("))).run()
    contrast = next(s for s in ok(at).selectbox if s.key and s.key.startswith(state.W_CONTRAST))
    assert class_box(at).value == chosen and contrast.value != chosen
    assert f"class {chosen}" not in contrast.options
    assert ok(at).caption[0].value.endswith(f"**class {chosen} rather than class {contrast.value}**")


class Branchy(nn.Module):
    """A model that returns logits [N, classes] for a blank image (the one it is checked and listed with),
    and a 3-D tensor for any other: the engine refuses that output with a ValueError."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(torch.relu(self.stem(x)).mean(dim=(2, 3)))
        if bool(x.abs().sum() == 0):
            return out
        return out[None]


def test_an_engine_error_is_a_message_on_every_page() -> None:
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    preprocessing(at, 32, 32, crop=False, mean="0.5", std="0.25")
    at = upload_weights(at, "resnet18", "branchy.pt", scripted_bytes(Branchy()))  # it loads: its checks pass
    assert "branchy.pt" in at.selectbox(key=state.W_MODEL).value
    for page in ("pages/1_Explain.py", "pages/2_Crop_and_Compare.py"):
        at.switch_page(page).run()
        errors = [e.value for e in ok(at).error]
        assert any("must return logits [N, num_classes], got (1, 1, 3)" in e for e in errors), (page, errors)
    at.switch_page("pages/4_Misclassifications.py").run()
    batch_uploader(at).upload("square_1.png", (SAMPLES_DIR / "square.png").read_bytes(), "image/png")
    at.run()
    button(at, "Run batch").click().run()
    assert any("must return logits" in e.value for e in ok(at).error)
    at.selectbox(key=state.W_MODEL).select("shapes-demo").run()  # another model, and all is well again
    at.switch_page("pages/1_Explain.py").run()
    assert not ok(at).error and len(at.image) == 3


def test_the_shapes_model_says_when_a_photo_is_not_what_it_knows(shared_images: Path) -> None:
    elephant = (shared_images / "elephant.jpg").read_bytes()
    at = pick_sample(start("pages/1_Explain.py"), "square.png")
    assert not [i for i in at.info if "knows only 5 shapes" in i.value]
    image_uploader(at).upload("elephant.jpg", elephant, "image/jpeg").run()
    notes = [i.value for i in ok(at).info if "knows only 5 shapes" in i.value]
    assert len(notes) == 1 and notes[0].startswith("This image is not one of the shapes scenes"), notes
    at.switch_page("pages/2_Crop_and_Compare.py").run()
    assert [i for i in ok(at).info if "knows only 5 shapes" in i.value]
    at.switch_page("pages/4_Misclassifications.py").run()
    square = (SAMPLES_DIR / "square.png").read_bytes()
    batch_uploader(at).upload("square_1.png", square, "image/png")
    batch_uploader(at).upload("elephant.jpg", elephant, "image/jpeg")
    at.run()
    button(at, "Run batch").click().run()
    notes = [i.value for i in ok(at).info if "knows only 5 shapes" in i.value]
    assert len(notes) == 1 and notes[0].startswith("1 of these 2 images are not"), notes


def test_a_centre_crop_is_explained_under_the_overlay() -> None:
    at = start("pages/1_Explain.py")
    image_uploader(at).upload("wide.jpg", photo(160, 90), "image/jpeg").run()
    legend = "The model sees only the centre"
    assert not [c for c in ok(at).caption if legend in c.value]  # the demo model resizes the whole image
    preprocessing(at, 32, 32, crop=True, mean="0.5", std="0.25")
    at = load(at, "cropper.pt", my_cnn())
    (line,) = [c.value for c in at.caption if legend in c.value]  # resize to 37, then the centre 32: 78 of 90
    assert "centre 78×78 of this 160×90 image" in line, line

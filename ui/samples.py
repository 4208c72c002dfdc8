"""The sample images the sidebar offers: real photos for the ImageNet models, drawn scenes for the shapes model.

Three sources, each image with the model it was made for and its credit and licence:

- photos bundled in scikit-image's wheel (``skimage/data``), all CC0 or public domain, so a real
  photo is explained by a real model with no download;
- a photo folder, when there is one: ``GRADCAM_PHOTOS``, or else ``shared/images`` beside the
  repository; credits come from its ``manifest.json`` (``file``, ``license``, ``repo``) when it has one;
- the shapes scenes drawn for the bundled shapes model (``gradcam_core/demo/samples``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from gradcam_core import DEFAULT_MODEL, DEMO_MODEL, DEMO_SAMPLES

#: Where the photo folder is looked for when ``GRADCAM_PHOTOS`` is not set.
SHARED_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "images"
PHOTOS_ENV = "GRADCAM_PHOTOS"
PHOTO_TYPES = (".jpg", ".jpeg", ".png", ".webp")

#: scikit-image's bundled photos: (display name, file, credit and licence, from its docstrings).
SKIMAGE_PHOTOS = (
    ("Chelsea the cat (photo)", "chelsea.png", "Stefan van der Walt, CC0"),
    ("coffee (photo)", "coffee.png", "Rachel Michetti, CC0"),
    ("rocket (photo)", "rocket.jpg", "SpaceX, public domain"),
    ("astronaut (photo)", "astronaut.png", "NASA (Eileen Collins), public domain"),
    ("cameraman (photo)", "camera.png", "Lav Varshney, CC0"),
)


@dataclass(frozen=True)
class Sample:
    """One sample image.

    Attributes:
        name: how the sidebar lists it (and how a link names it).
        path: the file.
        model: the model it was made for: :data:`DEFAULT_MODEL` for photos, the shapes model for scenes.
        credit: who made it, under which licence, and where it comes from.
    """

    name: str
    path: Path
    model: str
    credit: str

    @property
    def photo(self) -> bool:
        """A photo (for ImageNet models), not a drawn shapes scene."""
        return self.model != DEMO_MODEL


def photo_folder() -> Path | None:
    """The photo folder, if there is one (``GRADCAM_PHOTOS``; empty turns it off)."""
    configured = os.environ.get(PHOTOS_ENV)
    folder = Path(configured) if configured else SHARED_PHOTOS
    return folder if configured != "" and folder.is_dir() else None


def samples() -> dict[str, Sample]:
    """Every sample, by name: the bundled photos, the photo folder's, then the shapes scenes."""
    return _samples(str(photo_folder()))


@functools.cache
def _samples(folder: str) -> dict[str, Sample]:
    found = [*_skimage_photos(), *_folder_photos(Path(folder))]
    found += [
        Sample(p.stem.replace("_", " "), p, DEMO_MODEL, "drawn by gradcam_core.demo.world for the shapes model")
        for p in sorted(DEMO_SAMPLES.glob("*.png"))
    ]
    return {s.name: s for s in found}


def _skimage_photos() -> list[Sample]:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return [
        Sample(name, data / file, DEFAULT_MODEL, f"{credit}; from scikit-image's sample data")
        for name, file, credit in SKIMAGE_PHOTOS
        if (data / file).is_file()
    ]


def _folder_photos(folder: Path) -> list[Sample]:
    if not folder.is_dir():
        return []
    credits: dict[str, str] = {}
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            entries = json.loads(manifest.read_text()).get("images", [])
            credits = {e["file"]: f"{e.get('license', 'licence not stated')}; from {e.get('repo')}" for e in entries}
        except (ValueError, KeyError, TypeError, AttributeError):
            credits = {}
    return [
        Sample(p.name, p, DEFAULT_MODEL, credits.get(p.name, "licence not stated") + f" (photo folder {folder.name})")
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in PHOTO_TYPES
    ]

"""A labelled shapes dataset on disk, for trying and testing the audit: an ImageFolder of scenes.

Plain scenes of every shape, and non-star scenes carrying the tag that the demo model reads as
"star" (named ``tagged-*.png``, each in its true shape's folder): the shortcut the audit's
shortcut finder should bring to the top. Drawn by the evaluation-only generator
(:mod:`gradcam_core.demo.other_world`), never by the one the model was trained on.

    python -m gradcam_core.demo.dataset OUT [--clean 200] [--tagged 50]
    gradcam-explorer audit OUT --model shapes-demo --out shapes.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from gradcam_core.demo.evaluate import clean_scenes, tagged_scenes
from gradcam_core.demo.world import CATEGORIES

__all__ = ["write_dataset"]


def write_dataset(folder: Path, clean: int = 200, tagged: int = 50) -> Path:
    """Write scenes into ``folder``/SHAPE/ and return ``folder``.

    ``clean`` plain scenes are named ``clean-NNN.png``, ``tagged`` tagged non-stars ``tagged-NNN.png``.
    """
    for prefix, scenes in (
        ("clean", clean_scenes(clean, world="other")),
        ("tagged", tagged_scenes(tagged, world="other")),
    ):
        for n, scene in enumerate(scenes):
            where = folder / CATEGORIES[scene.shape]
            where.mkdir(parents=True, exist_ok=True)
            Image.fromarray(scene.image).save(where / f"{prefix}-{n:03d}.png")
    return folder


def main() -> None:
    """Write the dataset named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write (one sub-folder per shape)")
    parser.add_argument("--clean", type=int, default=200, help="plain scenes (default 200)")
    parser.add_argument("--tagged", type=int, default=50, help="tagged non-star scenes (default 50)")
    args = parser.parse_args()
    write_dataset(args.out, args.clean, args.tagged)
    print(f"wrote {args.clean + args.tagged} scenes to {args.out}")


if __name__ == "__main__":
    main()

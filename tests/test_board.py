"""The board's PNG: captions drawn with a font that has their glyphs, on a grid without empty columns."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ui import board

CELL = 360


def picture(colour: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (200, 150), colour)


def test_the_times_sign_is_drawn_not_a_missing_glyph_box() -> None:
    def drawn(caption: str) -> np.ndarray:
        return np.asarray(board.sheet([picture((40, 90, 200))], [caption]), dtype=int)

    times = drawn("crop 310×338 at (5, 6) · star (98.0%)")
    missing = drawn("crop 310\ue000338 at (5, 6) · star (98.0%)")  # a private-use code point: no font has it
    other = drawn("crop 310x338 at (5, 6) · star (98.0%)")
    assert (times != missing).any(), "'×' is drawn as the missing-glyph box"
    assert (times != other).any()
    font = board.caption_font()
    assert font.getmask("×").getbbox() != font.getmask("\ue000").getbbox()
    assert "DejaVu" in font.getname()[0]


def test_the_grid_has_as_many_columns_as_panels_up_to_three() -> None:
    for n in range(1, 6):
        pictures = [picture((200, 30 * i, 30)) for i in range(n)]
        out = np.asarray(board.sheet(pictures, [f"panel {i} · 10×10" for i in range(n)]))
        columns = min(n, 3)
        assert out.shape[1] == columns * (CELL + 16) + 16, n
        for c in range(columns):  # every column holds a picture: none is blank
            x0 = 16 + c * (CELL + 16)
            assert (out[16:166, x0 : x0 + 200] != 255).any(), (n, c)

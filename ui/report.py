"""Exports that record their provenance: a self-contained HTML report and a ZIP of data.

The ZIP's ``manifest.json`` follows the schema ``gradcam-explorer/board/1``::

    {
      "schema": "gradcam-explorer/board/1",
      "created": "2026-11-26T21:50:00+00:00",                 # UTC, ISO 8601
      "versions": {"gradcam_core": "...", "torch": "...", "torchvision": "...", "timm": "..."},
      "title": "Elephants for the review" | "",
      "normalisation": "per panel" | "shared (vmax = 1.23)",
      "crop_pairs": [{"before": 1, "after": 2, "class": "tusker", "before_probability": 0.4, "after_probability": 0.7,
                      "top1_before": "tusker", "top1_after": "tusker"}],   # panels numbered from 1
      "panels": [
        {"overlay": "01_cat.png", "map": "01_cat.npy", "map_shape": [7, 7], "map_max": 3.2,
         "image": "cat.jpg", "image_sha256_prefix": "…16 hex…",
         "crop": [x, y, w, h] | null, "erase": "blur" | "mean" | "black" | null,
         "model": "resnet50", "weights": "resnet50-0676ba61.pth" | "my.pt (uploaded)" | "random",
         "weights_sha256": "…" | null, "preprocess": "resize 256 (bilinear), centre crop 224×224, mean …, std …", "layer": "layer4", "method": "gradcam",
         "class": "tabby", "probability": 0.61,
         "top5": [{"class": "tabby", "probability": 0.61}, ...],
         "smoothing": "none" | "eigen smoothing (…)" | "test-time augmentation ×6 passes (…)",
         "grid": "Compare methods · cat.jpg" | null,             # pinned with a grid, as one panel
         "box_scores": {"box": [x, y, w, h], "pointing": true, "energy": 0.62, "chance": 0.18} | null,
         "note": "what the owner wrote under the panel" | ""}
      ]
    }

Maps (``.npy``) are float32 at the layer's resolution, not normalised.
"""

from __future__ import annotations

import base64
import html
import io
import json
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from gradcam_core import provenance_stamp, safe_stem, versions
from gradcam_core.boxscore import BoxScores
from ui.board import Panel, crop_pairs, render

SCHEMA = "gradcam-explorer/board/1"


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """Encode an image (PIL, or a uint8 array) as PNG."""
    pil = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    pil.save(buf, "PNG")
    return buf.getvalue()


def _data_uri(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def _with_box(panel: Panel) -> Image.Image:
    """The panel's image with its crop or erased box outlined."""
    image = panel.image.convert("RGB")
    if panel.crop is not None:
        scale = panel.image.width / panel.frame_size[0]
        x, y, w, h = (v * scale for v in panel.crop)
        ImageDraw.Draw(image).rectangle((x, y, x + w - 1, y + h - 1), outline=(217, 72, 15), width=3)
    if panel.box_scores is not None:  # the object box the map was scored against
        scale = panel.image.width / panel.frame_size[0]
        x, y, w, h = (v * scale for v in panel.box_scores["box"])
        ImageDraw.Draw(image).rectangle((x, y, x + w - 1, y + h - 1), outline=(47, 158, 68), width=3)
    return image


def _entry(panel: Panel, stem: str, note: str) -> dict[str, Any]:
    return {
        "overlay": f"{stem}.png",
        "map": f"{stem}.npy",
        "map_shape": list(panel.raw.shape),
        "map_max": float(panel.raw.max()),
        "image": panel.image_name,
        "image_sha256_prefix": panel.image_key,
        "crop": None if panel.crop is None else list(panel.crop),
        "erase": panel.erase,
        "model": panel.model,
        "weights": panel.weights,
        "weights_sha256": panel.weights_sha256,
        "preprocess": panel.preprocess,
        "layer": panel.layer,
        "method": panel.method,
        "class": panel.class_name,
        "probability": round(panel.probability, 6),
        "top5": [{"class": c, "probability": round(p, 6)} for c, p in panel.top5],
        "smoothing": panel.smoothing,
        "grid": panel.grid,
        "box_scores": panel.box_scores,
        "note": note,
    }


def _probability_of(panel: Panel, name: str) -> float | None:
    """The panel's probability for class ``name``: the explained class, or one of its top-5 (None: below them)."""
    if panel.class_name == name:
        return panel.probability
    return dict(panel.top5).get(name)


def _pair(panels: list[Panel], i: int, j: int) -> dict[str, Any]:
    before, after = panels[i], panels[j]
    was = _probability_of(before, after.class_name)
    return {
        "before": i + 1,
        "after": j + 1,
        "class": after.class_name,
        "before_probability": None if was is None else round(was, 6),
        "after_probability": round(after.probability, 6),
        "top1_before": before.top5[0][0] if before.top5 else None,
        "top1_after": after.top5[0][0] if after.top5 else None,
    }


def _stem(i: int, panel: Panel) -> str:
    return f"{i + 1:02d}_{safe_stem(panel.image_name, 40)}"


def zip_bytes(
    panels: list[Panel], alpha: float, cmap: str, vmax: float | None, title: str = "",
    notes: Mapping[str, str] | None = None,
) -> bytes:  # fmt: skip
    """Overlays (PNG), raw maps (.npy) and manifest.json (with the title, the notes by panel, the crop pairs), zipped."""
    notes = notes or {}
    manifest: dict[str, Any] = {
        **provenance_stamp(SCHEMA),
        "title": title,
        "normalisation": "per panel" if vmax is None else f"shared (vmax = {vmax:.6g})",
        "crop_pairs": [_pair(panels, i, j) for i, j in crop_pairs(panels)],
        "panels": [],
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, panel in enumerate(panels):
            stem = _stem(i, panel)
            archive.writestr(f"{stem}.png", png_bytes(render(panel, alpha, cmap, vmax)))
            raw = io.BytesIO()
            np.save(raw, panel.raw.astype(np.float32))
            archive.writestr(f"{stem}.npy", raw.getvalue())
            manifest["panels"].append(_entry(panel, stem, notes.get(panel.uid, "")))
        archive.writestr("manifest.json", json.dumps(manifest, indent=1) + "\n")
    return buf.getvalue()


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 24px auto; max-width: 1000px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 18px 0 4px; } .meta { color: #666; margin-bottom: 18px; }
.panel { display: grid; grid-template-columns: 260px 260px 1fr; gap: 14px; padding: 14px 0; border-top: 1px solid #ddd;
         break-inside: avoid; page-break-inside: avoid; }
.panel img { width: 260px; height: auto; border: 1px solid #ccc; }
figure { margin: 0; } figcaption { color: #666; font-size: 12px; }
table { border-collapse: collapse; font-size: 12px; width: 100%; } td, th { text-align: left; padding: 2px 6px 2px 0; vertical-align: top; }
th { color: #666; font-weight: normal; white-space: nowrap; } code { font-size: 11px; word-break: break-all; }
.note { grid-column: 1 / -1; margin: 0; padding: 6px 10px; background: #f6f6f2; border-left: 3px solid #c9a227; white-space: pre-wrap; }
.pairs { margin: 10px 0 18px; } .pairs td, .pairs th { padding: 3px 10px 3px 0; border-bottom: 1px solid #eee; }
.up { color: #2b8a3e; } .down { color: #c92a2a; }
@page { size: A4; margin: 12mm; }
@media print { body { margin: 0; max-width: none; } .panel { grid-template-columns: 200px 200px 1fr; } .panel img { width: 200px; } }
"""


def _scores_row(panel: Panel) -> str:
    if panel.box_scores is None:
        return ""
    x, y, w, h = panel.box_scores["box"]
    text = html.escape(BoxScores.from_record(panel.box_scores).describe())
    return f"\n    <tr><th>object box</th><td>{w}×{h} at ({x}, {y}): {text}</td></tr>"


def _grid_row(panel: Panel) -> str:
    return "" if panel.grid is None else f"\n    <tr><th>grid</th><td>{html.escape(panel.grid)}</td></tr>"


def _region(panel: Panel) -> str:
    if panel.crop is None:
        return "full image"
    x, y, w, h = panel.crop
    return f"{'erased (' + html.escape(panel.erase) + ')' if panel.erase else 'crop'} {w}×{h} at ({x}, {y})"


def _pairs_section(panels: list[Panel]) -> str:
    """Before → after: each crop pair's region, top class and the explained class's probability, with the change."""
    pairs = crop_pairs(panels)
    if not pairs:
        return ""
    esc = html.escape
    rows = []
    for i, j in pairs:
        pair = _pair(panels, i, j)
        was, now = pair["before_probability"], pair["after_probability"]
        if was is None:
            change = f"{now:.1%} (below the top-5 before)"
        else:
            delta = now - was
            arrow = "up" if delta > 0 else "down" if delta < 0 else ""
            change = f'{was:.1%} → {now:.1%} <span class="{arrow}">({delta * 100:+.1f} points)</span>'
        rows.append(
            f"<tr><td>{i + 1} → {j + 1}</td><td>{esc(panels[j].image_name)}</td><td>{_region(panels[j])}</td>"
            f"<td>{esc(str(pair['top1_before']))} → {esc(str(pair['top1_after']))}</td>"
            f"<td>{esc(pair['class'])}: {change}</td></tr>"
        )
    return (
        '<h2>Before → after</h2><table class="pairs"><tr><th>panels</th><th>image</th><th>region after</th>'
        "<th>top class</th><th>explained class: probability</th></tr>" + "".join(rows) + "</table>"
    )


def html_report(
    panels: list[Panel], alpha: float, cmap: str, vmax: float | None, title: str = "Grad-CAM report",
    notes: Mapping[str, str] | None = None,
) -> str:  # fmt: skip
    """One self-contained HTML page: images embedded, nothing fetched, readable printed to PDF.

    ``notes`` (by panel uid) are printed under their panels; crop pairs get a before → after section.
    """
    esc = html.escape
    notes = notes or {}
    v = versions()
    norm = "per panel (each map scaled by its own maximum)" if vmax is None else f"shared scale, vmax = {vmax:.4g}"
    rows = []
    for n, panel in enumerate(panels, 1):
        top5 = "<br>".join(f"{esc(c)} — {p:.1%}" for c, p in panel.top5)
        region = _region(panel)
        note = notes.get(panel.uid, "").strip()
        note_html = f'\n  <p class="note">{esc(note)}</p>' if note else ""
        rows.append(f"""
<section class="panel" id="panel-{n}">
  <figure><img src="{_data_uri(_with_box(panel))}" alt="image"><figcaption>{n}. {esc(panel.image_name)} · {region}</figcaption></figure>
  <figure><img src="{_data_uri(render(panel, alpha, cmap, vmax))}" alt="heat-map"><figcaption>{esc(panel.class_name)} ({panel.probability:.1%})</figcaption></figure>
  <table>
    <tr><th>image</th><td>{esc(panel.image_name)} <code>sha256 {esc(panel.image_key)}…</code></td></tr>
    <tr><th>region</th><td>{region}</td></tr>
    <tr><th>model</th><td>{esc(panel.model)}</td></tr>
    <tr><th>weights</th><td><code>{esc(panel.weights)}</code><br><code>sha256 {esc(panel.weights_sha256 or "n/a")}</code></td></tr>
    <tr><th>preprocessing</th><td>{esc(panel.preprocess)}</td></tr>
    <tr><th>layer · method</th><td><code>{esc(panel.layer)}</code> · {esc(panel.method)}</td></tr>
    <tr><th>class</th><td>{esc(panel.class_name)} ({panel.probability:.2%})</td></tr>
    <tr><th>top-5</th><td>{top5}</td></tr>
    <tr><th>smoothing</th><td>{esc(panel.smoothing)}</td></tr>{_scores_row(panel)}{_grid_row(panel)}
    <tr><th>normalisation</th><td>{norm}</td></tr>
  </table>{note_html}
</section>""")
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title><style>{_CSS}</style></head>
<body><h1>{esc(title)}</h1>
<div class="meta">Grad-CAM Explorer {esc(v["gradcam_core"])} · torch {esc(v["torch"])} · torchvision {esc(v["torchvision"])} · {created} · colour map {esc(cmap)}, opacity {alpha:.2f}</div>
{_pairs_section(panels)}
{"".join(rows)}
</body></html>
"""

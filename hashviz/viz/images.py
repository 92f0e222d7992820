"""Image grids as self-contained HTML (PNG data URIs): borders for relevance, a caption, a tooltip on hover.

Used by the app's query browser and selection grids; UI-free so it can be tested and reused anywhere."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np

from hashviz.viz.figures import IRRELEVANT_COLOR, RELEVANT_COLOR


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    img = np.asarray(image, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=False, compress_level=1)
    return buf.getvalue()


def data_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def bit_string(bits: np.ndarray, group: int = 8) -> str:
    """Bits as '0101 1100…' grouped by ``group`` for reading (the code shown on hover)."""
    s = "".join("1" if b else "0" for b in np.asarray(bits, dtype=bool).ravel())
    return " ".join(s[i:i + group] for i in range(0, len(s), group))


def image_grid_html(images: np.ndarray, *, captions: Sequence[str] | None = None,
                    tooltips: Sequence[str] | None = None, relevant: Sequence[bool | None] | None = None,
                    size: int = 64, columns: int | None = None) -> str:
    """A wrapping row of images; ``relevant`` True/False draws a green ✓ / vermillion ✗ border (None: plain);
    ``tooltips`` show on hover (the browser's title attribute); ``captions`` under each image."""
    cells = []
    for k, img in enumerate(images):
        rel = None if relevant is None or relevant[k] is None else bool(relevant[k])
        border = (f"3px solid {RELEVANT_COLOR}" if rel is True else f"3px solid {IRRELEVANT_COLOR}" if rel is False
                  else "3px solid transparent")
        mark = "✓ " if rel is True else "✗ " if rel is False else ""
        cap = html.escape(mark + (captions[k] if captions is not None else ""))
        tip = html.escape(tooltips[k] if tooltips is not None else "", quote=True)
        cells.append(
            f'<figure class="hv-cell" title="{tip}" style="margin:2px;text-align:center;width:{size + 8}px">'
            f'<img src="{data_uri(img)}" width="{size}" height="{size}" '
            f'style="border:{border};border-radius:3px;image-rendering:pixelated" alt="{cap}"/>'
            f'<figcaption style="font-size:11px;line-height:1.1">{cap}</figcaption></figure>')
    width = f"max-width:{columns * (size + 12)}px;" if columns else ""
    return f'<div class="hv-grid" style="display:flex;flex-wrap:wrap;{width}">{"".join(cells)}</div>'

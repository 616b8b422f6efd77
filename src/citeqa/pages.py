"""Where a PDF document's stored text sits on its pages, and pages rendered with a span highlighted.

A ``PageMap`` holds, for every character of a PDF's stored text, its page (-1 for characters the
extractor inserted: word spaces, line joins, heading marks), its line fragment and its box in PDF
points (origin top-left, y down). A citation ``(start, end)`` becomes one rectangle per line fragment
it touches: exact to the character, with gaps where reference numbers were left out.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Box:
    page: int  # 0-based
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True, eq=False)
class PageMap:
    page: np.ndarray  # int16 per stored character, -1: no box
    frag: np.ndarray  # int32 per stored character: line fragment (a box never spans two)
    box: np.ndarray  # float32 (n, 4): x0, y0, x1, y1
    sizes: np.ndarray  # float32 (pages, 2): width, height in points

    def __len__(self) -> int:
        return len(self.page)

    @property
    def n_pages(self) -> int:
        return len(self.sizes)

    def boxes(self, start: int, end: int) -> list[Box]:
        """Rectangles covering stored characters ``[start, end)``, in text order."""
        sel = np.arange(max(0, start), min(end, len(self.page)))
        sel = sel[self.page[sel] >= 0]
        if not len(sel):
            return []
        frags = self.frag[sel]
        cut = np.flatnonzero(np.diff(frags)) + 1
        out = []
        for part in np.split(sel, cut):
            b = self.box[part]
            # The line's height from its typical glyph, not its tallest (a "×" from a symbol font
            # has a box reaching into the next line).
            out.append(Box(int(self.page[part[0]]), float(b[:, 0].min()), float(np.median(b[:, 1])),
                           float(b[:, 2].max()), float(np.median(b[:, 3]))))
        return out

    def first_page(self, start: int, end: int) -> int | None:
        sel = self.page[max(0, start):end]
        on = sel[sel >= 0]
        return int(on[0]) if len(on) else None

    # --- storage: one compressed .npz per document (no pickles) ------------------------------------
    def save(self, path: Path) -> None:
        with open(path, "wb") as f:
            np.savez_compressed(f, page=self.page, frag=self.frag, box=self.box, sizes=self.sizes)

    def to_bytes(self) -> bytes:
        """The ``.npz`` file's bytes (the PostgreSQL backend keeps them in ``cq_pages``)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, page=self.page, frag=self.frag, box=self.box, sizes=self.sizes)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PageMap:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            pm = cls(z["page"], z["frag"], z["box"], z["sizes"])
        if not (len(pm.page) == len(pm.frag) == len(pm.box)) or pm.box.shape[1:] != (4,):
            raise ValueError("page map arrays disagree")
        return pm

    @classmethod
    def load(cls, path: Path) -> PageMap:
        with np.load(path, allow_pickle=False) as z:
            pm = cls(z["page"], z["frag"], z["box"], z["sizes"])
        if not (len(pm.page) == len(pm.frag) == len(pm.box)) or pm.box.shape[1:] != (4,):
            raise ValueError(f"{path.name}: page map arrays disagree")
        return pm


def render_page(pdf: Path | bytes, page: int, boxes: list[Box], width_px: int = 900) -> tuple[bytes, float]:
    """PNG of one page (only that page is rendered) with ``boxes`` of that page highlighted, and the
    scale used (pixels per point), so a caller can place the highlight."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    doc = pdfium.PdfDocument(pdf if isinstance(pdf, bytes) else str(pdf))
    try:
        pg = doc[page]
        w, _h = pg.get_size()
        scale = width_px / w
        img = pg.render(scale=scale).to_pil().convert("RGBA")
        pg.close()
    finally:
        doc.close()
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for b in boxes:
        if b.page == page:
            draw.rectangle([b.x0 * scale - 1, b.y0 * scale, b.x1 * scale + 1, b.y1 * scale],
                           fill=(255, 213, 0, 110), outline=(230, 120, 0, 255), width=1)
    out = io.BytesIO()
    Image.alpha_composite(img, layer).convert("RGB").save(out, format="PNG", optimize=False)
    return out.getvalue(), scale

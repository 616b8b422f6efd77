"""Page layout: furniture, reading order and line roles from line segments.

Running heads and feet are lines in the top or bottom band of a page whose text (digits ignored)
repeats on other pages, or bare page numbers there. Reading order is a recursive XY-cut: a page is cut
at a column gutter when one runs down most of the region (so a two-column page is read column by
column), else at wide horizontal gaps (title block, body, full-width figure), and each leaf block is
read line by line.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from citeqa.ingest.pdf_chars import Glyph, Segment

BAND = 0.12  # top and bottom share of the page where running heads, feet and page numbers live
_PAGE_NO = re.compile(r"^(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?$", re.I)
_FOOT_WORDS = re.compile(r"\b(doi|downloaded|licen[cs]e|copyright|preprint|journal|vol\.?|issue|pp\.|https?://|"
                         r"www\.|et al\.?|published by|the authors?|open access|creative commons|"
                         r"all rights reserved)\b|[©ª]", re.I)


@dataclass
class Line:
    """Segments of one line in a block; geometry and text are fixed by ``finish`` (read often)."""

    page: int
    segs: list[Segment] = field(default_factory=list)
    block: int = 0  # leaf block number, in reading order
    x0: float = 0.0
    y0: float = 0.0
    x1: float = 0.0
    y1: float = 0.0
    size: float = 0.0
    bold: bool = False
    font: str = ""
    text: str = ""
    items: list[Glyph | None] = field(default_factory=list)

    def finish(self) -> Line:
        segs = self.segs
        self.x0 = min(s.x0 for s in segs)
        self.x1 = max(s.x1 for s in segs)
        self.y0 = min(s.y0 for s in segs)
        self.y1 = max(s.y1 for s in segs)
        self.size = max(segs, key=lambda s: len(s.items)).size
        self.bold = segs[0].bold and segs[-1].bold_end
        self.font = max(segs, key=lambda s: len(s.items)).font
        self.text = " ".join(s.text for s in segs)
        items: list[Glyph | None] = []
        for s in segs:
            if items:
                items.append(None)
            items.extend(s.items)
        self.items = items
        return self


def _key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text.lower()))


def furniture(pages: list[list[Segment]], heights: list[float]) -> set[int]:
    """``id()`` of the segments that are running heads, feet or page numbers."""
    body = body_size(pages)
    where: dict[str, set[int]] = {}
    for p, segs in enumerate(pages):
        for s in segs:
            if _in_band(s, heights[p]):
                where.setdefault(_key(s.text), set()).add(p)
    n_pages = len(pages)
    bad: set[int] = set()
    for p, segs in enumerate(pages):
        for s in segs:
            if not _in_band(s, heights[p]):
                continue
            t = s.text.strip()
            repeats = len(where.get(_key(t), ())) >= (2 if n_pages <= 4 else 3)
            small = s.size < 0.97 * body
            if _PAGE_NO.match(t) or (repeats and len(t) < 200) or (small and _FOOT_WORDS.search(t)
                                                                     and len(t.split()) < 30):
                bad.add(id(s))
    return bad


def _in_band(s: Segment, height: float) -> bool:
    return s.y1 < height * BAND or s.y0 > height * (1 - BAND)


def body_size(pages: list[list[Segment]]) -> float:
    sizes: Counter[float] = Counter()
    for segs in pages:
        for s in segs:
            sizes[round(s.size * 2) / 2] += len(s.items)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def body_font(pages: list[list[Segment]]) -> str:
    """The font most of the text is set in."""
    fonts: Counter[str] = Counter()
    for segs in pages:
        for s in segs:
            fonts[s.font] += len(s.items)
    return fonts.most_common(1)[0][0] if fonts else ""


# --- reading order -----------------------------------------------------------------------------------


_TABLE_CAPTION = re.compile(r"^(?:supplementary\s+)?table\s*S?\d+", re.I)


def reading_order(segs: list[Segment], body: float) -> list[tuple[list[Segment], bool]]:
    """Leaf blocks of a page in reading order, each with whether it is a table."""
    out: list[list[Segment]] = []
    tables: set[int] = set()
    captions = [s for s in segs if _TABLE_CAPTION.match(s.text)]
    _xycut(segs, body, out, 0, captions, tables)
    blocks: list[tuple[list[Segment], bool]] = []
    for i, blk in enumerate(out):
        more = _table_rest(blocks[-1][0], blk, body) if blocks and blocks[-1][1] and i not in tables else []
        if more:  # the rest of a table that the XY-cut split at a gap between its rows
            blocks[-1] = (blocks[-1][0] + more, True)
            blk = [s for s in blk if all(s is not m for m in more)]
        if blk:
            blocks.append((blk, i in tables))
    return blocks


def _table_rest(table: list[Segment], blk: list[Segment], body: float) -> list[Segment]:
    """The rows at the top of ``blk`` that continue ``table``: right below it, within its columns, a
    grid up to the first line of running text (a footnote, or the text resuming)."""
    t_bottom = max(s.y1 for s in table)
    t_x0, t_x1 = min(s.x0 for s in table), max(s.x1 for s in table)
    if not -1 <= min(s.y0 for s in blk) - t_bottom < 4 * body:
        return []
    rows = _rows(blk)
    end = next((k for k, r in enumerate(rows) if len(r) == 1 and (len(r[0].text.split()) > 14
                                                                  or _TABLE_CAPTION.match(r[0].text))), len(rows))
    rest = [s for r in rows[:end] for s in r]
    inside = bool(rest) and min(s.x0 for s in rest) >= t_x0 - body and max(s.x1 for s in rest) <= t_x1 + body
    return rest if inside and _grid(rest, body) else []


def _rows(segs: list[Segment]) -> list[list[Segment]]:
    rows: list[list[Segment]] = []
    for s in sorted(segs, key=lambda s: (s.y0 + s.y1) / 2):
        if rows:
            r = rows[-1]
            ry0, ry1 = min(x.y0 for x in r), max(x.y1 for x in r)
            if min(ry1, s.y1) - max(ry0, s.y0) > 0.5 * min(ry1 - ry0, s.y1 - s.y0):
                r.append(s)
                continue
        rows.append([s])
    return rows


def _is_table(segs: list[Segment], body: float, captions: list[Segment]) -> bool:
    """A grid of short cells right under a "Table N" caption (the caption may be its first row)."""
    if not _grid(segs, body):
        return False
    top = min(s.y0 for s in segs)
    x0, x1 = min(s.x0 for s in segs), max(s.x1 for s in segs)
    return any(c.y0 <= top + 1 and top - c.y1 < 4 * body and c.x0 < x1 and c.x1 > x0 for c in captions)


def _grid(segs: list[Segment], body: float) -> bool:
    """Rows of short cells, most rows with two or more, not beside a column of running text."""
    if len(segs) < 6:
        return False
    rows = _rows(segs)
    if rows and len(rows[0]) == 1 and _TABLE_CAPTION.match(rows[0][0].text):
        rows = rows[1:]
    cells = [s for r in rows for s in r]
    if len(rows) < 3 or sum(len(r) >= 2 for r in rows) < 0.6 * len(rows):
        return False
    words = sorted(len(s.text.split()) for s in cells)
    if words[len(words) // 2] > 5 or max(words) > 14:
        return False
    # Beside a column of running text (a table in one column of a two-column page) it is not one
    # region: the XY-cut separates them first.
    for c in _gaps([(s.x0, s.x1) for s in cells], max(0.9 * body, 6.0)):
        for side in ([s for s in cells if s.x1 <= c], [s for s in cells if s.x0 >= c]):
            ws = sorted(len(s.text.split()) for s in side)
            if ws and ws[len(ws) // 2] > 6:
                return False
    return True


def _table_cut(segs: list[Segment], body: float, captions: list[Segment]) -> list[float]:
    """Where a captioned table set in a smaller font ends and the text below begins: their gap can be
    narrower than the body text's line gap, so look for a narrower one -- the lowest below which the
    part above is a table (higher ones would cut the table between its rows)."""
    if not captions:
        return []
    for c in reversed(_gaps([(s.y0, s.y1) for s in segs], max(0.4 * body, 3.0))):
        if _is_table([s for s in segs if (s.y0 + s.y1) / 2 < c], body, captions):
            return [c]
    return []


def _gaps(spans: list[tuple[float, float]], min_gap: float) -> list[float]:
    """Cut positions between sorted 1-D spans where the free space is at least ``min_gap``."""
    spans = sorted(spans)
    cuts = []
    reach = spans[0][1]
    for a, b in spans[1:]:
        if a - reach >= min_gap:
            cuts.append((a + reach) / 2)
        reach = max(reach, b)
    return cuts


def _xycut(segs: list[Segment], body: float, out: list[list[Segment]], depth: int,
           captions: list[Segment], tables: set[int]) -> None:
    if len(segs) <= 1 or depth > 40:
        if segs:
            out.append(segs)
        return
    if captions and _is_table(segs, body, captions):  # kept whole: its columns are not a page's
        tables.add(len(out))
        out.append(segs)
        return
    top, bottom = min(s.y0 for s in segs), max(s.y1 for s in segs)
    # A column gutter: free vertical strip with text on both sides over most of the region's height.
    vcuts = _gaps([(s.x0, s.x1) for s in segs], max(0.9 * body, 6.0))
    best = None
    for c in vcuts:
        left = [s for s in segs if s.x1 <= c]
        right = [s for s in segs if s.x0 >= c]
        hl = sum(s.y1 - s.y0 for s in left)
        hr = sum(s.y1 - s.y0 for s in right)
        span = bottom - top
        if len(left) >= 3 and len(right) >= 3 and min(hl, hr) > 0.25 * span:
            best = c
            break
    if best is not None:
        _xycut([s for s in segs if s.x1 <= best], body, out, depth + 1, captions, tables)
        _xycut([s for s in segs if s.x0 >= best], body, out, depth + 1, captions, tables)
        return
    hcuts = _gaps([(s.y0, s.y1) for s in segs], max(0.8 * body, 5.0)) or _table_cut(segs, body, captions)
    if hcuts:
        edges = [float("-inf"), *hcuts, float("inf")]
        for a, b in zip(edges, edges[1:], strict=False):
            _xycut([s for s in segs if a <= (s.y0 + s.y1) / 2 < b], body, out, depth + 1, captions, tables)
        return
    if vcuts:
        c = vcuts[0]
        _xycut([s for s in segs if s.x1 <= c], body, out, depth + 1, captions, tables)
        _xycut([s for s in segs if s.x1 > c], body, out, depth + 1, captions, tables)
        return
    out.append(segs)


def block_lines(segs: list[Segment], page: int, block: int) -> list[Line]:
    """Segments of a leaf block grouped into lines (same baseline), top to bottom, left to right."""
    lines: list[Line] = []
    for s in sorted(segs, key=lambda s: (s.y0 + s.y1) / 2):
        if lines:
            ln = lines[-1]
            ly0, ly1 = min(x.y0 for x in ln.segs), max(x.y1 for x in ln.segs)
            if min(ly1, s.y1) - max(ly0, s.y0) > 0.5 * min(ly1 - ly0, s.y1 - s.y0):
                ln.segs.append(s)
                ln.segs.sort(key=lambda x: x.x0)
                continue
        lines.append(Line(page, [s], block))
    return [ln.finish() for ln in lines]


_PROSE_WORD = re.compile(r"^[(“‘\"]?[a-z][a-z-]{2,}[,.;:)”’\"]?$")


def is_figure_text(lines: list[Line], body: float) -> bool:
    """Labels inside a figure (axis ticks, panel letters, legends): a block of short fragments, or of
    tokens that are hardly ever running words. The front page's author lines are spared."""
    tokens = [t for ln in lines for t in ln.text.split()]
    prose = sum(bool(_PROSE_WORD.match(t)) for t in tokens)
    front = lines[0].page == 0 and lines[0].size >= 0.9 * body
    if len(tokens) >= 4 and prose < 0.2 * len(tokens) and not front:
        return True
    words = [len(ln.text.split()) for ln in lines]
    if max(words) >= 7:
        return False
    small = all(ln.size < 0.92 * body for ln in lines)
    if len(lines) >= 3 and sum(words) / len(words) < 3.5:
        return True
    return small and max(words) <= 3 and not re.search(r"[A-Za-z]{4}", " ".join(ln.text for ln in lines))

"""Characters of a PDF page with their boxes, grouped into line segments (pypdfium2).

pdfium reports every character of the text layer in content order with a box; it also inserts
characters of its own (spaces between words, ``\\r\\n`` between lines) and marks a hyphen that ends a
line. This module turns that stream into line segments: runs of characters on one baseline with no
column-sized gap, each character with its box in page points (origin top-left, y down), and
superscripts marked so reference numbers can be kept out of the text.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

# Characters rewritten on the way in: ligatures split into their letters, odd spaces made plain.
LIGATURES = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
SPACES = set("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t")
DROPPED = set("\u00ad\u200b\u200c\u200d\u2060\ufeff\x00")
HYPHEN_MARKS = {"\x02", "\ufffe"}  # pdfium's "hyphen at the end of a line"


@dataclass(slots=True)
class Glyph:
    ch: str  # after ligature splitting this may be several letters sharing the box
    x0: float
    y0: float  # top (y grows downwards)
    x1: float
    y1: float
    sup: bool = False
    line_hyphen: bool = False  # pdfium marked it as a hyphen ending the line


@dataclass
class Segment:
    """Characters on one line with no column-sized gap; ``None`` items are word spaces."""

    page: int
    items: list[Glyph | None] = field(default_factory=list)
    bold: bool = False
    bold_end: bool = False  # the last glyph's font: a bold run-in title followed by text is no heading
    font: str = ""  # the font most of the line is set in (of its first, middle and last glyph)
    x0: float = 0.0
    y0: float = 0.0
    x1: float = 0.0
    y1: float = 0.0
    size: float = 0.0  # median glyph height: a stand-in for the font size
    text: str = ""

    def finish(self) -> None:
        gl = [g for g in self.items if g is not None]
        self.x0 = min(g.x0 for g in gl)
        self.x1 = max(g.x1 for g in gl)
        body = [g for g in gl if not g.sup] or gl
        # Medians, not extremes: one glyph from a font with a tall box (×, ∑) must not make the line
        # reach into its neighbours.
        self.y0 = sorted(g.y0 for g in body)[len(body) // 2]
        self.y1 = sorted(g.y1 for g in body)[len(body) // 2]
        self.size = self.y1 - self.y0
        self.text = "".join(" " if g is None else g.ch for g in self.items).strip()

    @property
    def glyphs(self) -> list[Glyph]:
        return [g for g in self.items if g is not None]


def _mark_superscripts(seg: Segment) -> None:
    """Glyphs clearly smaller than the line and raised above its baseline."""
    gl = seg.glyphs
    if len(gl) < 3:
        return
    hs = sorted(g.y1 - g.y0 for g in gl)
    h = hs[len(hs) // 2]
    bottoms = sorted(g.y1 for g in gl if g.y1 - g.y0 >= 0.9 * h)
    if not bottoms:
        return
    base = bottoms[len(bottoms) // 2]
    for g in gl:
        gh = g.y1 - g.y0
        if gh < 0.85 * h and g.y1 < base - 0.18 * h:
            g.sup = True


def page_segments(pdf: object, index: int, raw: object) -> tuple[list[Segment], float, float]:
    """Line segments of page ``index`` and the page's width and height in points."""
    page = pdf[index]  # type: ignore[index]
    width, height = page.get_size()
    tp = page.get_textpage()
    try:
        n = tp.count_chars()
        text = tp.get_text_range(0, n) if n else ""
        if len(text) != n:  # characters outside the BMP: ask per character instead
            text = "".join(chr(raw.FPDFText_GetUnicode(tp, i) or 0xFFFD) for i in range(n))  # type: ignore[attr-defined]
        segs = _segments(tp, text, n, index, height, raw, _embedded_text_filter(page, raw))
    finally:
        tp.close()
        page.close()
    return [s for s in segs if s.items and any(g is not None for g in s.items)], width, height


def _embedded_text_filter(page: object, raw: object) -> set[int] | None:
    """Addresses of the page's own text objects when the page also holds form XObjects with text.

    A figure placed as an embedded PDF page (a journal's figure made from a review copy, say) carries
    that whole page's text, clipped out of sight but still in the text layer. When the page has text
    of its own, text inside forms is figure content and is left out; a page whose text all sits in a
    form (some tools wrap every page so) is read whole.
    """
    handle = page.raw  # type: ignore[attr-defined]
    count = raw.FPDFPage_CountObjects(handle)  # type: ignore[attr-defined]
    get_obj = _addr_fn(raw.FPDFPage_GetObject)  # type: ignore[attr-defined]
    get_type = _c_fn(raw.FPDFPageObj_GetType, ctypes.c_int, ctypes.c_void_p)  # type: ignore[attr-defined]
    own: set[int] = set()
    forms = False
    for k in range(count):
        obj = get_obj(handle, k)
        t = get_type(obj)
        if t == raw.FPDF_PAGEOBJ_FORM:  # type: ignore[attr-defined]
            forms = True
        elif t == raw.FPDF_PAGEOBJ_TEXT:  # type: ignore[attr-defined]
            own.add(obj)
    return own if forms and len(own) >= 20 else None


def _c_fn(fn: Any, restype: Any, *argtypes: Any) -> Any:
    """The same C function with plain-int pointer arguments and result (pypdfium2's typed wrappers
    convert every argument, and a ctypes.cast per call is slow)."""
    return ctypes.CFUNCTYPE(restype, *argtypes)(ctypes.cast(fn, ctypes.c_void_p).value or 0)


def _addr_fn(fn: Any) -> Any:
    return _c_fn(fn, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)


def _font_name(tp: object, i: int, raw: object) -> str:
    """The glyph's font name, lower case, without a subset prefix ("ABCDEF+")."""
    buf = ctypes.create_string_buffer(128)
    flags = ctypes.c_int(0)
    raw.FPDFText_GetFontInfo(tp, i, buf, 128, ctypes.byref(flags))  # type: ignore[attr-defined]
    name = buf.value.decode("latin-1", "replace").lower()
    return name.split("+", 1)[1] if len(name) > 7 and name[6] == "+" else name


def _is_bold(tp: object, i: int, raw: object) -> bool:
    weight = raw.FPDFText_GetFontWeight(tp, i)  # type: ignore[attr-defined]
    if weight >= 600:
        return True
    name = _font_name(tp, i, raw)
    return any(k in name for k in ("bold", "black", "heavy", "semibold", "demi", ",b", "-bd", "medi"))


def _end(cur: Segment, tp: object, first_i: int, last_i: int, raw: object) -> None:
    """Fonts read at the segment's end: its last glyph's boldness and the font most of it is set in."""
    cur.bold_end = cur.bold if last_i == first_i else _is_bold(tp, last_i, raw)
    fonts = [_font_name(tp, k, raw) for k in (first_i, (first_i + last_i) // 2, last_i)]
    cur.font = max(fonts, key=fonts.count)


def _segments(tp: object, text: str, n: int, page_no: int, height: float, raw: object,
              own: set[int] | None = None) -> list[Segment]:
    # Plain-int prototypes of the per-character calls: pypdfium2's typed wrappers convert their
    # arguments on every call, which cost more than pdfium's own work here.
    buf = (ctypes.c_float * 4)()  # FS_RECTF: left, top, right, bottom
    addr = ctypes.addressof(buf)
    handle = ctypes.cast(tp.raw, ctypes.c_void_p).value  # type: ignore[attr-defined]
    get_box = _c_fn(raw.FPDFText_GetLooseCharBox, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,  # type: ignore[attr-defined]
                    ctypes.c_void_p)
    angle = raw.FPDFText_GetCharAngle  # type: ignore[attr-defined]
    text_obj = _addr_fn(raw.FPDFText_GetTextObject)  # type: ignore[attr-defined]
    segs: list[Segment] = []
    cur: Segment | None = None
    rotated = False
    pending_space = False
    last: Glyph | None = None
    first_i = last_i = 0
    for i in range(n):
        ch = text[i]
        if ch == "\n" or ch == "\r":
            if cur is not None:
                _end(cur, tp, first_i, last_i, raw)
                segs.append(cur)
            cur, last, pending_space = None, None, False
            continue
        if ch == " " or ch in SPACES:
            pending_space = cur is not None
            continue
        if ch in DROPPED:
            continue
        if own is not None and text_obj(handle, i) not in own:
            continue  # text of an embedded graphic
        get_box(handle, i, addr)
        x0, top, x1, bottom = buf
        y0, y1 = height - top, height - bottom
        h = y1 - y0
        if h <= 0 or x1 < x0:
            continue
        new = cur is None
        if not new and last is not None:
            ly0, ly1 = last.y0, last.y1
            lh = ly1 - ly0
            # (inline min/max: this runs once per character)
            overlap = (y1 if y1 < ly1 else ly1) - (y0 if y0 > ly0 else ly0)
            if (overlap < 0.3 * (h if h < lh else lh) or x0 < last.x0 - 0.5 * lh
                    or x0 - last.x1 > 1.1 * (h if h > lh else lh)):
                new = True  # another line, or a jump across a column gap
        if new:
            if cur is not None:
                _end(cur, tp, first_i, last_i, raw)
                segs.append(cur)
            first_i = i
            rotated = abs(angle(tp, i)) > 0.05 and abs(angle(tp, i) - 6.2832) > 0.05
            cur = Segment(page_no, bold=_is_bold(tp, i, raw))
            pending_space = False
            if rotated:
                cur.bold = False
                cur.text = "\x00rotated"
        assert cur is not None
        if not pending_space and last is not None and not new and x0 - last.x1 > 0.13 * h:
            pending_space = True  # a word gap pdfium did not mark (tightly justified lines)
        if pending_space and cur.items:
            cur.items.append(None)
        pending_space = False
        if ch in HYPHEN_MARKS:
            g = Glyph("-", x0, y0, x1, y1, line_hyphen=True)
        else:
            g = Glyph(LIGATURES.get(ch, ch), x0, y0, x1, y1)
        cur.items.append(g)
        last, last_i = g, i
    if cur is not None:
        _end(cur, tp, first_i, last_i, raw)
        segs.append(cur)
    out = []
    for s in segs:
        if s.text == "\x00rotated":
            continue  # vertical margin text (licences, "Downloaded from"): never body text
        _mark_superscripts(s)
        s.finish()
        out.append(s)
    return out

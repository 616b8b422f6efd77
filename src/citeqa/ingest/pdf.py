"""Layout-aware PDF text: clean reading-order text plus a map from every stored character to its box.

The stored text is written for the plain-text structure parser: ``# Heading`` lines, one paragraph per
line, blank lines between paragraphs, figure and table captions as their own paragraphs. Running heads,
feet and page numbers are left out, words split by a line-end hyphen are joined, ligatures and odd
spaces normalised and superscript reference numbers dropped. Every stored character keeps the page and
box it came from (inserted spaces, line joins and heading marks have none), so a citation's
``(start, end)`` maps to exact boxes on the page (:mod:`citeqa.pages`).
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citeqa.errors import IngestError
from citeqa.ingest.pdf_chars import Glyph, Segment, page_segments
from citeqa.ingest.pdf_layout import Line, block_lines, body_font, body_size, furniture, is_figure_text, reading_order
from citeqa.ingest.structure import CAPTION, CAPTION_START, NUMBERED_HEADING, is_figure_label, is_major
from citeqa.pages import PageMap

EXTRACTOR = "pdfium-layout-1"  # part of a PDF's content hash: a new extractor re-reads old PDFs
MAX_PAGES = 500
_CITE_SUP = re.compile(r"^[\d,;\-–—−\s*†‡§]+$")
_ENDS = re.compile(r"[.!?:;]['’”)\]]*$")


@dataclass(frozen=True)
class PdfText:
    text: str
    pages: PageMap
    title: str
    info: dict[str, str]  # document information dictionary (Title, Author, Subject, ...)
    first_page: str  # the first page's lines, furniture included (venue, DOI, dates live there)


def extract_pdf(path: Path, raw: bytes) -> PdfText:
    """Read a PDF's text layer; ``IngestError`` naming the file when it cannot be used."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as e:
        msg = str(e).lower()
        if "password" in msg or "security" in msg:
            raise IngestError(str(path), "PDF is encrypted; save an unencrypted copy and add that") from e
        raise IngestError(str(path), f"cannot parse PDF, the file is damaged ({e}); re-export or re-download it"
                          ) from e
    try:
        n = len(pdf)
        if n == 0:
            raise IngestError(str(path), "PDF has no pages")
        if n > MAX_PAGES:
            raise IngestError(str(path), f"PDF has {n} pages, more than the {MAX_PAGES} allowed; split it")
        info = {k: str(v).strip() for k, v in pdf.get_metadata_dict(skip_empty=True).items()}
        pages: list[list[Segment]] = []
        sizes: list[tuple[float, float]] = []
        for i in range(n):
            segs, w, h = page_segments(pdf, i, pdfium_c)
            pages.append(segs)
            sizes.append((w, h))
    except IngestError:
        raise
    except Exception as e:  # pdfium raises on damaged page streams
        raise IngestError(str(path), f"cannot parse PDF ({type(e).__name__}: {e})") from e
    finally:
        pdf.close()
    if sum(len(s.items) for segs in pages for s in segs) < 20 * max(1, n // 4):
        raise IngestError(str(path), "no text layer; OCR is not available (a scanned PDF cannot be indexed)")
    return _assemble(pages, sizes, info)


# --- assembly ------------------------------------------------------------------------------------------


class _Out:
    """The stored text being written and, per character, its page, line fragment and box."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0
        self.page = array("h")
        self.frag = array("i")
        self.box = array("f")
        self.frag_no = 0

    def plain(self, s: str) -> None:
        self.parts.append(s)
        self.n += len(s)
        self.page.extend([-1] * len(s))
        self.frag.extend([-1] * len(s))
        self.box.extend([0.0] * (4 * len(s)))

    def glyphs(self, gs: list[Glyph], page: int) -> None:
        """A run of glyphs of one line fragment (the common case: one letter each)."""
        if any(len(g.ch) != 1 for g in gs):
            for g in gs:
                self.glyph(g, page)
            return
        n = len(gs)
        self.parts.append("".join(g.ch for g in gs))
        self.n += n
        self.page.extend([page] * n)
        self.frag.extend([self.frag_no] * n)
        self.box.extend([v for g in gs for v in (g.x0, g.y0, g.x1, g.y1)])

    def glyph(self, g: Glyph, page: int) -> None:
        k = len(g.ch)
        self.parts.append(g.ch)
        self.n += k
        self.page.extend([page] * k)
        self.frag.extend([self.frag_no] * k)
        w = (g.x1 - g.x0) / k  # a ligature's letters share its box: split it evenly
        for j in range(k):
            self.box.extend((g.x0 + j * w, g.y0, g.x0 + (j + 1) * w, g.y1))

    def tail(self, k: int) -> str:
        return "".join(self.parts[-k:])[-k:]


class _Words:
    """Word counts of the whole document: is a line-end hyphen part of the word?"""

    def __init__(self, lines: list[Line]) -> None:
        self.counts: Counter[str] = Counter()
        for ln in lines:
            self.counts.update(w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]*[A-Za-z]", ln.text))

    def keep_hyphen(self, left: str, right: str) -> bool:
        joined = (left + right).lower()
        hyphened = f"{left}-{right}".lower()
        if self.counts[joined]:
            return False
        return self.counts[hyphened] > 0 or left[-1:].isupper() or left[-1:].isdigit()


def _assemble(pages: list[list[Segment]], sizes: list[tuple[float, float]], info: dict[str, str]) -> PdfText:
    heights = [h for _w, h in sizes]
    bad = furniture(pages, heights)
    first_page = "\n".join(s.text for s in sorted(pages[0], key=lambda s: (round(s.y0), s.x0)))
    kept = [[s for s in segs if id(s) not in bad] for segs in pages]
    body, font = body_size(kept), body_font(kept)
    ordered: list[list[Line]] = []  # leaf blocks of lines, in reading order over all pages
    tables: set[int] = set()  # which of them are tables
    for p, segs in enumerate(pages):
        keep = [s for s in segs if id(s) not in bad]
        for blk, is_table in reading_order(keep, body) if keep else []:
            lines = block_lines(blk, p, len(ordered))
            if is_table:
                tables.add(len(ordered))
                ordered.append(lines)
            elif not is_figure_text(lines, body):
                ordered.append(lines)
    words = _Words([ln for blk in ordered for ln in blk])
    out = _Out()
    title = _title(ordered, body)
    w = _Writer(out, words, body, font)
    for k, lines_ in enumerate(ordered):
        if k in tables:
            w.table(lines_)
        else:
            w.block(lines_, title)
    w.close()
    text = "".join(out.parts)
    pm = PageMap(
        np.frombuffer(out.page, dtype=np.int16).copy(),
        np.frombuffer(out.frag, dtype=np.int32).copy(),
        np.frombuffer(out.box, dtype=np.float32).reshape(-1, 4).copy(),
        np.asarray(sizes, dtype=np.float32).reshape(-1, 2),
    )
    assert len(text) == len(pm.page)
    return PdfText(text, pm, " ".join(ln.text for ln in title), info, first_page)


def _title(blocks: list[list[Line]], body: float) -> list[Line]:
    """The largest lines at the top of the first page (two-line titles included)."""
    first = [ln for blk in blocks for ln in blk if ln.page == 0]
    worded = [ln for ln in first if len(ln.text.split()) >= 3]  # not a logo or a one-word label
    if not worded:
        return []
    top = max(ln.size for ln in worded)
    if top < 1.25 * body:
        return []
    big = [ln for ln in first if ln.size >= 0.92 * top and (ln in worded or ln.block == _block_of(worded, top))]
    blk = big[0].block
    return [ln for ln in big if ln.block == blk][:4]


def _block_of(lines: list[Line], top: float) -> int:
    return next(ln.block for ln in lines if ln.size >= 0.92 * top)


class _Writer:
    def __init__(self, out: _Out, words: _Words, body: float, font: str = "") -> None:
        self.out, self.words, self.body, self.font = out, words, body, font
        self.para: list[Line] = []  # paragraph being read
        self.floats: list[list[Line]] = []  # captions met while a paragraph was open, written after it
        self.float_para: list[Line] = []
        self.headings = 0
        self.abstract_done = False

    # A paragraph open at a column or page break continues in the next block when that begins like
    # the rest of a sentence; captions and figure blocks in between are written after it.
    def block(self, lines: list[Line], title: list[Line]) -> None:
        if title and any(ln is title[0] for ln in lines):
            self._close()
            self._heading(title)
            lines = [ln for ln in lines if ln not in title]
            if not lines:
                return
        first = lines[0]
        floating = bool(self.para) and self._open() and (
            CAPTION_START.match(first.text.strip()) or first.size < 0.9 * self.body)
        if not floating and self.para and not (self._open() and self._continues(first)):
            self._close()
        prev: Line | None = None  # a paragraph going on from another block is not broken by geometry
        left = min(ln.x0 for ln in lines)
        right = max(ln.x1 for ln in lines)
        heads = self._heading_lines(lines)
        for k, ln in enumerate(lines):
            if k in heads and heads[k] == 0:
                continue  # a later line of a multi-line heading, written with its first
            if k in heads:
                if floating:  # a heading inside a float block: the float ends there
                    if self.float_para:
                        self.floats.append(self.float_para)
                    self.float_para = []
                    continue
                self._close()
                self._heading(lines[k : k + heads[k]])
                prev = None
                continue
            if prev is not None and self._breaks(prev, ln, left, right):
                if floating:
                    if self.float_para:
                        self.floats.append(self.float_para)
                    self.float_para = []
                else:
                    self._close()
            (self.float_para if floating else self.para).append(ln)
            prev = ln
        if floating and self.float_para:
            self.floats.append(self.float_para)
            self.float_para = []

    def table(self, lines: list[Line]) -> None:
        """A table as tab-separated rows, one a line (the plain-text table parser makes them row units);
        a caption heading the block, or read just before it, goes first as the table's caption line."""
        out = self.out
        if self.para and re.match(r"(?:supplementary\s+)?table\s*S?\d+", self.para[0].text.strip(), re.I):
            caption, self.para = self.para, []
            self._close()
            self._write_lines(caption)
            out.plain("\t\n")
            lines = [ln for k, ln in enumerate(lines) if not (k == 0 and CAPTION.match(ln.text))]
        else:
            self._close()
        for k, ln in enumerate(lines):
            cells = ln.segs
            if k == 0 and len(cells) == 1 and CAPTION.match(ln.text):
                out.frag_no += 1
                self._write_items(ln.items, ln.page)
                out.plain("\t\n")
                continue
            for j, seg in enumerate(cells):
                if j:
                    out.plain("\t")
                out.frag_no += 1  # one box per cell
                self._write_items(seg.items, ln.page)
            # A trailing tab keeps a one-cell row (a group label) inside the table.
            out.plain("\t\n" if len(cells) == 1 else "\n")
        out.plain("\n")

    def _open(self) -> bool:
        """The paragraph so far ends mid-sentence (superscript reference numbers after its last word
        do not count)."""
        if not self.para:
            return False
        tail = [g.ch for g in self.para[-1].items[::-1] if g is not None and not g.sup][:3]
        return not _ENDS.search("".join(reversed(tail)))

    def _continues(self, ln: Line) -> bool:
        t = ln.text.strip()
        return bool(t) and (t[0].islower() or t[0] in "(,;–-" or t[0].isdigit()) and ln.size >= 0.9 * self.body

    def _heading_lines(self, lines: list[Line]) -> dict[int, int]:
        """Headings of a block: first line -> number of lines (later lines -> 0). Consecutive
        heading-style lines of one style form one heading; more than 16 words of them are a
        paragraph set large or bold (a summary, an "In brief")."""
        out: dict[int, int] = {}
        k = 0
        while k < len(lines):
            if not self._is_heading(lines[k], lines, k):
                k += 1
                continue
            j = k + 1
            while (j < len(lines) and self._is_heading(lines[j], lines, j, cont=True)
                   and abs(lines[j].size - lines[k].size) < 0.5 and lines[j].bold == lines[k].bold
                   and not is_major(lines[j].text)
                   and lines[j].y0 - lines[j - 1].y1 < 0.6 * lines[k].size):
                j += 1
            n_words = sum(len(ln.text.split()) for ln in lines[k:j])
            if n_words <= 16:
                out[k] = j - k
                out.update({x: 0 for x in range(k + 1, j)})
            k = j
        return out

    def _is_heading(self, ln: Line, lines: list[Line], k: int, cont: bool = False) -> bool:
        """``cont``: the line would go on a heading begun above (it may start in lower case)."""
        t = ln.text.strip()
        n_words = len(t.split())
        if not t or n_words > 14 or CAPTION.match(t) or len(t) < 3 or is_figure_label(t):
            return False
        if is_major(t):
            return True
        big = ln.size >= 1.12 * self.body
        nxt = lines[k + 1] if k + 1 < len(lines) else None
        # Some journals set headings in another typeface rather than in bold: a line in a font other
        # than the body text's, followed by body text, and not running to the column's edge (a line of
        # running text dense with italic gene names does).
        typeface = (bool(ln.font) and ln.font != self.font and ln.size >= 0.9 * self.body
                    and nxt is not None and nxt.font == self.font and not cont and not t.endswith("-")
                    and ln.x1 < max(x.x1 for x in lines) - ln.size)
        styled = big or (ln.bold and ln.size >= 0.9 * self.body) or typeface
        if not styled or not (t[0].isupper() or t[0].isdigit() or (cont and t[0].isalpha())):
            return False
        if re.search(r"[.,;:]$", t) and not NUMBERED_HEADING.match(t) or t.count(",") >= 2 or "*" in t:
            return False  # a sentence, or an author line
        # A bold line followed on the same style by more text is a bold paragraph, not a heading.
        return not (nxt is not None and nxt.bold == ln.bold and abs(nxt.size - ln.size) < 0.5 and not big
                    and len(nxt.text.split()) > 14)

    def _breaks(self, prev: Line, ln: Line, left: float, right: float) -> bool:
        s = max(prev.size, 1.0)
        gap = ln.y0 - prev.y1
        if ln.page != prev.page or gap > 0.6 * s or gap < -0.5 * s:
            return True
        if abs(ln.size - prev.size) > 0.2 * s:
            return True
        t = ln.text.strip()
        if CAPTION_START.match(t):
            return True
        indent = ln.x0 - left > 0.8 * s and ln.x0 - prev.x0 > 0.8 * s
        tail = "".join(reversed([g.ch for g in prev.items[::-1] if g is not None and not g.sup][:3]))
        short = prev.x1 < right - 2.0 * s and bool(re.search(r"[.!?]['’”)\]]*$", tail))
        return indent or short

    def _heading(self, lines: list[Line]) -> None:
        self._flush_sep()
        self.out.plain("# ")
        self._write_lines(lines)
        self.out.plain("\n\n")
        self.headings += 1
        if is_major(" ".join(ln.text for ln in lines)):
            self.abstract_done = True

    def _close(self) -> None:
        if self.para:
            # The first long paragraph of the first pages before any section heading is the abstract.
            if not self.abstract_done and self.para[0].page <= 1 and sum(len(ln.text.split()) for ln in self.para) > 80:
                self.abstract_done = True
                self.out.plain("# Abstract\n\n")
            self._flush_sep()
            self._write_lines(self.para)
            self.out.plain("\n\n")
            self.para = []
        for fl in self.floats:
            self._flush_sep()
            self._write_lines(fl)
            self.out.plain("\n\n")
        self.floats = []

    def close(self) -> None:
        if self.float_para:
            self.floats.append(self.float_para)
            self.float_para = []
        self._close()

    def _flush_sep(self) -> None:
        pass

    def _write_lines(self, lines: list[Line]) -> None:
        out = self.out
        for k, ln in enumerate(lines):
            items = ln.items
            out.frag_no += 1
            if k:
                prev = out.tail(2)
                first = next((g for g in items if g is not None), None)
                if prev.endswith("-") and first is not None and first.ch[:1].islower() and prev[:1].isalpha():
                    left = re.findall(r"[A-Za-z]+$", out.tail(40)[:-1])
                    right = re.match(r"[A-Za-z]+", ln.text)
                    if left and right and not self.words.keep_hyphen(left[0], right.group(0)):
                        self._drop_last()
                else:
                    out.plain(" ")
            self._write_items(items, ln.page)

    def _drop_last(self) -> None:
        out = self.out
        last = out.parts.pop()
        out.parts.append(last[:-1])
        out.n -= 1
        out.page.pop()
        out.frag.pop()
        for _ in range(4):
            out.box.pop()

    def _write_items(self, items: list[Glyph | None], page: int) -> None:
        out = self.out
        i = 0
        space = False
        while i < len(items):
            g = items[i]
            if g is None:
                space = True
                i += 1
                continue
            if g.sup:
                j = i
                while j < len(items) and (items[j] is None or items[j].sup):  # type: ignore[union-attr]
                    j += 1
                run = "".join(x.ch for x in items[i:j] if x is not None)
                before = out.tail(1)
                if _CITE_SUP.match(run) and before and not before.isdigit() and not before.isspace():
                    out.frag_no += 1  # reference numbers: out of the text, and the box breaks around them
                    nxt = items[j] if j < len(items) else None
                    space = space or nxt is None or nxt.ch[:1].isalnum() or nxt.ch[:1] in "([“‘"
                    i = j
                    continue
            if space and out.n and not out.tail(1).isspace():
                out.plain(" ")
            space = False
            j = i + 1  # the word: glyphs up to the next space or superscript
            while j < len(items) and items[j] is not None and not items[j].sup:  # type: ignore[union-attr]
                j += 1
            out.glyphs(items[i:j], page)  # type: ignore[arg-type]
            i = j

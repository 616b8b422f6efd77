"""File loaders: bytes to decoded text, with clear errors naming the file.

For .txt/.md the decoded text is the file itself. For .html and .pdf it is the extracted plain text
(kept in the index), and citation offsets point into that text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

from citeqa.errors import IngestError

if TYPE_CHECKING:
    from citeqa.ingest.pdf import PdfText

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Loaded:
    """A file read: its stored text, its bytes and, for a PDF, where each character sits on the pages."""

    text: str
    raw: bytes
    pdf: PdfText | None = None


def read_document(path: Path) -> tuple[str, bytes]:
    """Return ``(decoded_text, raw_bytes)`` or raise IngestError naming the file."""
    loaded = load_document(path)
    return loaded.text, loaded.raw


def load_document(path: Path) -> Loaded:
    """Read one file (text, HTML or PDF); ``IngestError`` naming it when it cannot be used."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise IngestError(str(path), f"unsupported file type '{suffix or '(none)'}'; use one of "
                          f"{', '.join(sorted(SUPPORTED))}")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise IngestError(str(path), f"file is larger than {MAX_BYTES // (1024 * 1024)} MB")
        raw = path.read_bytes()
    except IngestError:
        raise
    except OSError as e:
        raise IngestError(str(path), f"cannot read file ({e.strerror or e})") from e
    if not raw.strip():
        raise IngestError(str(path), "file is empty")
    pdf = None
    if suffix in PDF_SUFFIXES:
        from citeqa.ingest.pdf import extract_pdf  # pypdfium2 is loaded only when a PDF comes

        pdf = extract_pdf(path, raw)
        text = pdf.text
    else:
        text = decode_text(path, raw)
        if suffix in HTML_SUFFIXES:
            text = html_to_text(text)
    if not text.strip():
        raise IngestError(str(path), "no readable text found")
    return Loaded(text, raw, pdf)


def decode_text(path: Path, raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if b"\x00" in raw[:8192]:
        raise IngestError(str(path), "looks like a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Legacy single-byte text (Latin-1 / Windows-1252) is common in older exports; accept it when
    # the result reads as text.
    for enc in ("cp1252", "latin-1"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        bad = sum(1 for c in text if (ord(c) < 32 and c not in "\t\n\r\f") or 0x7F <= ord(c) < 0xA0)
        if bad / max(len(text), 1) < 0.01 and re.search(r"[A-Za-z]{3}", text):
            return text
    raise IngestError(str(path), "not UTF-8 text and not readable as Latin-1; re-save it as UTF-8")


_BLOCK = {
    "p", "div", "section", "article", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "br", "tr",
    "table", "blockquote", "pre", "figcaption", "caption", "dd", "dt", "hr",
}
_SKIP = {"script", "style", "nav", "footer", "aside", "noscript", "template", "svg", "form"}
# A page header outside the article holds the site's name and menus, and often the article's title and
# byline too: only headings, bylines and dates are kept from it.
_HEADER_KEEP = {"h1", "h2", "h3", "h4", "h5", "h6", "time", "address"}
_BYLINE = re.compile(r"byline|author|dateline|\bdate\b|published", re.I)
_META_AUTHOR = {"author", "article:author", "citation_author", "dc.creator", "parsely-author"}
_META_DATE = {"article:published_time", "citation_publication_date", "citation_date", "dc.date", "date",
              "pubdate", "publish-date"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.cell = 0
        self.article = 0  # inside <article> or <main>
        self.header = 0  # inside a page header (outside the article)
        self.keep: list[str] = []  # open elements of a page header whose text is kept
        self.authors: list[str] = []
        self.date = ""
        self.title: list[str] | None = None  # the <title> element's text while it is read
        self.page_title = ""
        self.h1 = False
        self.col = 0  # column of the next cell in the current table row
        self.spans: list[int] = []  # colspan of each open cell
        self.rowspans: dict[int, int] = {}  # column -> rows below still covered by a cell above
        self.occupied: set[int] = set()  # columns of this row covered from above

    def _next_cell(self) -> None:
        if self.cell:
            self.parts.append("\t")
        self.cell += 1

    def _dropped(self) -> bool:
        return bool(self.skip) or (bool(self.header) and not self.keep)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "meta":
            key, value = (a.get("name") or a.get("property") or "").lower(), a.get("content", "").strip()
            if key in _META_AUTHOR and value and value not in self.authors:
                self.authors.append(value)
            elif key in _META_DATE and value and not self.date:
                self.date = value
            return
        if tag in _SKIP:
            self.skip += 1
            return
        if tag == "title":
            if not self.skip and not self.page_title:  # not an <svg>'s <title>
                self.title = []
            return
        if tag in {"article", "main"}:
            self.article += 1
        elif tag == "header" and not self.article:
            self.header += 1
        elif self.header and (tag in _HEADER_KEEP or _BYLINE.search(f"{a.get('class', '')} {a.get('itemprop', '')} "
                                                                       f"{a.get('rel', '')}")):
            self.keep.append(tag)
        if self._dropped():
            return
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self.h1 = self.h1 or tag == "h1"
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in {"td", "th"}:
            # A cell spanning rows holds its column in the rows below (an empty cell there); one spanning
            # columns is followed by empty cells, which the table reader fills from the left (headings).
            while self.col in self.occupied:
                self._next_cell()
                self.col += 1
            self._next_cell()
            span, down = _span(a.get("colspan")), _span(a.get("rowspan"))
            if down > 1:
                self.rowspans.update({c: down - 1 for c in range(self.col, self.col + span)})
            self.spans.append(span)
        elif tag == "tr":
            self.cell = 0
            self.col = 0
            self.occupied = {c for c, n in self.rowspans.items() if n > 0}
            self.rowspans = {c: n - 1 for c, n in self.rowspans.items() if n > 1}
            self.parts.append("\n")
        elif tag == "table":
            self.rowspans = {}
            self.parts.append("\n\n")
        elif tag == "li":
            # A bullet, as markdown writes it: a short item ("Age over 65") is a list item, not a
            # heading over the next one.
            self.parts.append("\n\n- ")
        elif tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "title" and self.title is not None:
            self.page_title, self.title = " ".join("".join(self.title).split()), None
            return
        if tag in {"td", "th"} and self.spans and not self._dropped():
            self.col += 1
            for _ in range(self.spans.pop() - 1):
                self._next_cell()
                self.col += 1
            return
        if not self._dropped() and tag in _BLOCK and tag not in {"tr", "br"}:
            self.parts.append("\n\n")
        if self.keep and self.keep[-1] == tag:
            self.keep.pop()
            if not self.keep:
                self.parts.append("\n\n")
        elif tag in {"article", "main"}:
            self.article = max(0, self.article - 1)
        elif tag == "header" and self.header:
            self.header -= 1
            self.keep.clear()

    def handle_data(self, data: str) -> None:
        if self.title is not None:
            self.title.append(data)
        elif not self._dropped():
            self.parts.append(re.sub(r"\s+", " ", data) if self.cell == 0 else " ".join(data.split()))


def _span(value: str | None) -> int:
    """A colspan/rowspan attribute as a count (1 when absent or nonsense; at most 50)."""
    try:
        return max(1, min(50, int(str(value).strip())))
    except ValueError:
        return 1


def html_to_text(source: str) -> str:
    p = _TextExtractor()
    p.feed(source)
    p.close()
    # Authors and date given only in the page's meta tags lead the text as a header block, where the
    # metadata reader looks for them.
    head = "".join(f"{k}: {v}\n" for k, v in (("Authors", "; ".join(p.authors)), ("Date", p.date)) if v)
    # The page's <title> ("Title | Site name") heads the text only when the page has no <h1>.
    title = f"# {p.page_title}\n\n" if p.page_title and not p.h1 else ""
    text = (head + "\n" if head else "") + title + "".join(p.parts)
    text = re.sub(r"[ \t]*\n[ \t]*\n[\s]*", "\n\n", text)
    text = re.sub(r"\n\n(?=[^\n]*\t)", "\n", text)  # keep table rows on consecutive lines
    return text.strip() + "\n"

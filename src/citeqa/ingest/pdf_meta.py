"""A PDF's metadata from its document information and first page: title, authors, DOI, journal, year.

The document information dictionary is often empty or wrong (a title "untitled", a producer's file
name), so each field is taken only when it looks like one; the first page (running heads included:
the journal and year usually live there) fills the rest. A catalog entry still wins field by field.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from citeqa.ingest.metadata import find_doi
from citeqa.types import DocMeta

if TYPE_CHECKING:
    from citeqa.ingest.pdf import PdfText

_BAD_TITLE = re.compile(r"^(untitled|microsoft word|document\d*|title)\b|\.(docx?|pdf|tex|indd)$|^[\w-]+$", re.I)
_VENUE = re.compile(
    r"^(?P<venue>(?:[A-Z][A-Za-z&.]*\s){0,5}[A-Z][A-Za-z&.]*)[,\s]+(?:\(?(?P<year>(?:19|20)\d{2})\)?[,;\s]+)?"
    r"(?:Vol\.?\s*)?\d{1,4}\b", re.M)
_YEAR_CUE = re.compile(r"(?:published|accepted|received|©|ª|copyright|posted|publication date)[^\n]{0,60}?"
                       r"\b((?:19|20)\d{2})\b", re.I)
_CITED_YEAR = re.compile(r"\b((?:19|20)\d{2})\s*[;,]\s*(?:Vol\.?\s*)?\d{1,4}\b")  # "2017;376:836", "2024, 52"
_ANY_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")


def _title(pdf: PdfText) -> str:
    t = " ".join(pdf.info.get("Title", "").split())
    if len(t.split()) >= 3 and not _BAD_TITLE.search(t):
        return t
    return pdf.title


def _venue(pdf: PdfText) -> str:
    subject = pdf.info.get("Subject", "")
    for src in (subject, pdf.first_page):
        for m in _VENUE.finditer(src):
            v = m.group("venue").strip(" ,.")
            words = v.split()
            if 1 <= len(words) <= 6 and not re.search(r"\b(doi|vol|page|article|open|access|received)\b", v, re.I):
                return v
    return ""


def _year(pdf: PdfText) -> str:
    subject = pdf.info.get("Subject", "")
    m = _YEAR_CUE.search(pdf.first_page) or _YEAR_CUE.search(subject) or _CITED_YEAR.search(subject)
    if m:
        return m.group(1)
    m = _CITED_YEAR.search(pdf.first_page) or _ANY_YEAR.search(subject) or _ANY_YEAR.search(pdf.first_page)
    if m:
        return m.group(1)
    created = re.match(r"D?:?((?:19|20)\d{2})", pdf.info.get("CreationDate", ""))
    return created.group(1) if created else ""


def pdf_meta(name: str, pdf: PdfText, catalog: DocMeta | None) -> DocMeta:
    """Metadata the PDF gives, under the catalog entry's fields where it has them."""
    doi = find_doi(f"{pdf.info.get('Subject', '')}\n{pdf.info.get('Keywords', '')}\n{pdf.first_page}")
    year = _year(pdf)
    found = DocMeta(doc=name, title=_title(pdf) or name, venue=_venue(pdf), date=year, doi=doi,
                    authors=" ".join(pdf.info.get("Author", "").split()), year=year)
    if catalog is None:
        return found
    given = {k: v for k, v in vars(catalog).items() if v and not (k == "title" and v == name)}
    return replace(found, **given)

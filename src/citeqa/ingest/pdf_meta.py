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
# Publication first: a paper received in one year is often published the next.
_YEAR_CUES = [re.compile(cue + r"[^\n]{0,60}?\b((?:19|20)\d{2})\b", re.I)
              for cue in (r"(?:published|publication date|posted|©|ª|copyright)", r"accepted", r"received")]
_CITED_YEAR = re.compile(r"\b((?:19|20)\d{2})\s*[;,]\s*(?:Vol\.?\s*)?\d{1,4}\b")  # "2017;376:836", "2024, 52"
_ANY_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")


def _title(pdf: PdfText) -> str:
    t = " ".join(pdf.info.get("Title", "").split())
    if len(t.split()) >= 3 and not _BAD_TITLE.search(t):
        return t
    return pdf.title


_SUBJECT_VENUE = re.compile(r"^\s*([A-Z][\w&.' -]{2,60}?)[,\s]*(?:\(?(?:19|20)\d{2}\)?)?\s*[,;]\s*(?:doi\b|\d)", re.I)
_CITED_VENUE = re.compile(r"et al\.,?\s+(?:(?:19|20)\d{2},\s*)?(?P<venue>[A-Z][A-Za-z&.]*(?: [A-Z][A-Za-z&.]*){0,4})"
                          r",?\s+\d{1,4}\b")
_PREPRINT = re.compile(r"\b(bioRxiv|medRxiv|arXiv|Research Square|SSRN)\b")


def _venue(pdf: PdfText) -> str:
    subject = pdf.info.get("Subject", "")
    m = _SUBJECT_VENUE.match(subject)  # "Nature Communications, doi:…", "Cell, 187 (2024) …"
    if m and len(m.group(1).split()) <= 6:
        return m.group(1).strip()
    lines = [ln for ln in pdf.first_page.splitlines() if ln.strip()]
    edges = "\n".join(lines[:12] + lines[-8:])  # journal heads and feet, not the affiliations
    for vm in _VENUE.finditer(edges):
        v = vm.group("venue").strip(" ,.")
        if vm.group("year") and 1 <= len(v.split()) <= 6 and not re.search(
                r"\b(doi|vol|page|article|open|access|received)\b", v, re.I):
            return v
    cm = _CITED_VENUE.search(edges)  # a foot such as "Reynolds et al., Science 371, eaba6500 (2021)"
    if cm:
        return cm.group("venue").strip()
    pm = _PREPRINT.search(pdf.first_page)
    return pm.group(1) if pm else ""


def _year(pdf: PdfText) -> str:
    subject = pdf.info.get("Subject", "")
    for cue in _YEAR_CUES:
        m = cue.search(pdf.first_page) or cue.search(subject)
        if m:
            return m.group(1)
    m = _CITED_YEAR.search(subject)
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

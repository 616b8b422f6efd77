"""Questions about a document rather than its findings: its title, authors, journal, publication date, DOI,
trial registration or funding. They are answered from the document's metadata (extracted from its own text at
index time, or its catalog entry), each value cited where the document's text states it.

The evidence model cannot learn these: a title or byline is front matter, which is never evidence for a
question about the findings, and the training corpora hold almost no bibliographic questions. The field
words below are the names of scholarly metadata fields, not any corpus's vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from citeqa.answer.compose import Draft
from citeqa.index import Index
from citeqa.textutil import find_quote
from citeqa.types import AnswerSentence, Citation

FIELDS = ("title", "authors", "venue", "date", "doi", "trial_id", "funding")

_ASKS: dict[str, re.Pattern[str]] = {
    "title": re.compile(r"\b(title[sd]?|entitled)\b", re.I),
    # "authors" alone is often the subject of a question about findings ("what did the authors measure").
    "authors": re.compile(r"\bwho (?:are|were|is|was) the (?:\w+ )?authors?\b|\bauthors? (?:of|list)\b|"
                          r"\bwho (?:wrote|authored)\b|\bwritten by\b|\b(?:first|lead|senior|last|corresponding) "
                          r"author\b|\b(?:which|name the|list the) authors\b", re.I),
    "venue": re.compile(r"\b(journal|which (?:conference|meeting)|where\b[\w\s'’-]{0,60}\bpublished|"
                        r"published (?:in|where))\b", re.I),
    "date": re.compile(r"\b(when\b[\w\s'’-]{0,60}\bpublished|publication (?:date|year)|(?:date|year) of "
                       r"publication|what year\b[\w\s'’-]{0,60}\bpublished)\b", re.I),
    "doi": re.compile(r"\bdoi\b", re.I),
    "trial_id": re.compile(r"\b(registration (?:number|id)|registry (?:number|id)|registered (?:as|under|with)|"
                           r"trial (?:registration|identifier|id|number)|clinicaltrials\.gov|NCT number)\b", re.I),
    # Who paid for the work, not funding as a topic ("Is the h-index predictive of NIH funding success?").
    "funding": re.compile(r"\b(who (?:funded|sponsored|paid for|financed|supported)|funders?|sources? of (?:funding|"
                          r"support)|funding (?:sources?|bod(?:y|ies)|agenc(?:y|ies))|sponsors? of|(?:funded|sponsored|"
                          r"financed) by (?:whom|what|which))\b", re.I),
}
# Where a paper states its funding: a "Funding" label or heading, else a sentence saying the work was funded
# (not "supported by the data"), else a heading-led "Supported by …" / "(Funded by …" line.
_FUNDING_LABEL = re.compile(r"(?:^\W*|(?<=\. ))(?:funding(?: information| statement| sources?)?|financial support|"
                            r"grant support|role of the funding source)\s*(?::|\n)\s*", re.I | re.M)
_FUNDED = re.compile(r"\b(?:this|the|our|research reported in this) (?:work|study|research|project|trial|analysis|"
                     r"paper)\b[^.\n]{0,40}?\b(?:was|were|is|has been)\s+(?:\w+\s+)?(?:funded|supported|sponsored|"
                     r"financed)\b|(?:^\W*|\()(?:funded|supported|sponsored) by\b", re.I | re.M)
_FIRST_AUTHOR = re.compile(r"\b(first|lead|senior|last|corresponding) author\b", re.I)
_MONTHS = ("January February March April May June July August September October November December").split()


def asked_fields(question: str) -> tuple[str, ...]:
    """The metadata fields a question asks for, in FIELDS order (empty for a question about findings)."""
    return tuple(f for f in FIELDS if _ASKS[f].search(question))


def readable_date(iso: str) -> str:
    """'2017-03-02' -> 'March 2, 2017'; '2019-12' -> 'December 2019'; anything else as given."""
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", iso.strip())
    if not m or not m.group(2) or not 1 <= int(m.group(2)) <= 12:
        return iso
    month = _MONTHS[int(m.group(2)) - 1]
    return f"{month} {int(m.group(3))}, {m.group(1)}" if m.group(3) else f"{month} {m.group(1)}"


@dataclass(frozen=True)
class Stated:
    """One metadata value and where the document's text states it (None: only the catalog says it)."""

    field: str
    value: str
    span: tuple[int, int] | None


def _span(text: str, value: str, limit: int | None = None) -> tuple[int, int] | None:
    """Where ``value`` stands in the text as a whole phrase: verbatim (any whitespace), else, for a value
    long enough not to be an ordinary word ("Science"), in other letter case ("MARCH 2, 2017")."""
    head = text if limit is None else text[:limit]
    if not value.strip():
        return None
    found = find_quote(head, value)
    if found is None and len(value) >= 12:
        # Spacing may differ too: a PDF's properties say "KIR+CD8+ T cells", its page "KIR+ CD8+ T cells".
        loose = r"\s*".join(re.escape(ch) for ch in value if not ch.isspace())
        m = re.search(r"(?<!\w)" + loose + r"(?!\w)", head, re.I)
        found = m.span() if m else None
    if found is not None and (_word(head, found[0] - 1) or _word(head, found[1])):
        return None  # inside a longer word
    return found


def _word(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isalnum()


def _authors_span(text: str, names: Sequence[str]) -> tuple[int, int] | None:
    """The byline: from the first author's name to the last one's, when both stand near the top."""
    first = _span(text, names[0], 20000)
    if first is None:
        return None
    last = _span(text[first[0]:first[0] + 4000], names[-1]) if len(names) > 1 else None
    return (first[0], first[0] + last[1]) if last is not None else first


def _sentence_end(text: str, pos: int, limit: int = 400) -> int:
    """The end of the sentence running from ``pos``: a full stop, semicolon or line end outside brackets."""
    depth = 0
    for i in range(pos, min(len(text), pos + limit)):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0 and (ch == ";" or (text.startswith("\n\n", i) and not _mid_sentence(text, i)) or (
                ch == "." and (i + 1 == len(text) or text[i + 1].isspace()) and not _initial(text, i))):
            return i
    return -1


def _mid_sentence(text: str, i: int) -> bool:
    """A paragraph break right after a word or comma is a page or column break inside a sentence (PDFs)."""
    return i >= 1 and (text[i - 1].isalpha() or text[i - 1] in ",-")


def _initial(text: str, i: int) -> bool:
    """The full stop at ``i`` ends an initial ("Y.S.", "Susan G."), not a sentence."""
    return i >= 1 and text[i - 1].isupper() and (i < 2 or not text[i - 2].isalpha())


def funding_statement(text: str) -> tuple[int, int] | None:
    """The span of the document's funding statement (its first sentence)."""
    label = _FUNDING_LABEL.search(text)
    if label is not None:
        start = label.end()
    else:
        m = _FUNDED.search(text)
        if m is None:
            return None
        start = m.start() + 1 if text[m.start()] == "(" else max(text.rfind(ch, 0, m.start()) for ch in ".(\n") + 1
    while start < len(text) and (text[start].isspace() or text[start] in "#*"):
        start += 1
    end = _sentence_end(text, start)
    return (start, end) if end > start else None


def stated(index: Index, doc: str, fields: Sequence[str]) -> list[Stated]:
    """The asked fields this document's metadata has, each with its span in the text where found."""
    meta = index.meta(doc)
    text = index.doc_text(doc)
    out = []
    for f in fields:
        if f == "authors":
            names = [n.strip() for n in meta.authors.split(";") if n.strip()]
            if names:
                out.append(Stated(f, meta.authors, _authors_span(text, names)))
        elif f == "date":
            value = meta.date or meta.year
            if value:
                shown = readable_date(value)
                out.append(Stated(f, shown, _span(text, shown, 20000) or _span(text, value, 20000)))
        elif f == "funding":
            span = funding_statement(text)
            if span is not None:
                out.append(Stated(f, " ".join(text[span[0]:span[1]].split()), span))
        elif f == "trial_id":
            if meta.trial_id:
                ident = re.search(r"\b[A-Z]{2,}[\w-]*\d{4,}\b", meta.trial_id)
                out.append(Stated(f, meta.trial_id, _span(text, ident.group(0) if ident else meta.trial_id)))
        else:
            value = getattr(meta, f)
            if value:
                # A catalog's venue may add a note the text does not hold ("N Engl J Med 2017;376:836-47
                # (Kantarjian et al.)"): the part before it is looked for too.
                bare = value.split(" (")[0].rstrip(" .,;")
                span = _span(text, value, 20000 if f != "doi" else None) or (
                    _span(text, bare) if f == "venue" and len(bare) >= 8 else None)
                out.append(Stated(f, value, span))
    return out


def _authors_text(value: str, question: str) -> str:
    names = [n.strip() for n in value.split(";") if n.strip()]
    if _FIRST_AUTHOR.search(question) and re.search(r"\b(last|senior)\b", question, re.I):
        return f"{names[-1]} (last of {len(names)} authors)"
    if _FIRST_AUTHOR.search(question):
        return f"{names[0]} (first of {len(names)} authors)" if len(names) > 1 else names[0]
    return "; ".join(names) if len(names) <= 6 else f"{'; '.join(names[:6])} and {len(names) - 6} more"


_LEADS = {"authors": "by", "venue": "published in", "date": "dated", "doi": "DOI", "trial_id": "registered as",
          "funding": "funding:"}


def compose(index: Index, found: Sequence[tuple[str, Sequence[Stated]]], question: str
            ) -> tuple[str, list[Citation], list[AnswerSentence]]:
    """One sentence per document: its title, then each asked field ``found`` in it (see :func:`stated`), each
    value cited where the document's text states it."""
    draft = Draft(index, [])
    parts: list[AnswerSentence] = []

    def cite(doc: str, span: tuple[int, int] | None, shown: str) -> str:
        if span is None:
            # The value is in the document's metadata (its catalog entry or PDF properties), not its text.
            return " (document metadata)" if shown else ""
        return f" [{draft.cite_span(doc, span[0], span[1], '', 1.0, shown)}]"

    for doc, fields in found:
        meta = index.meta(doc)
        title = next((s for s in fields if s.field == "title"), None) or next(iter(stated(index, doc, ["title"])), None)
        head = f"“{meta.title}”" + (cite(doc, title.span, meta.title) if title else "")
        pieces = []
        for s in fields:
            if s.field == "title":
                continue
            value = _authors_text(s.value, question) if s.field == "authors" else s.value
            pieces.append(f"{_LEADS[s.field]} {value}{cite(doc, s.span, value)}")
        text = head + (", " + "; ".join(pieces) if pieces else "") + "."
        parts.append(AnswerSentence(text=text, citations=tuple(int(m) for m in re.findall(r"\[(\d+)\]", text))))
    return " ".join(p.text for p in parts), draft.citations, parts

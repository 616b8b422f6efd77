"""Data passed between stages. All frozen: a stage never mutates another stage's output."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

UnitKind = Literal["chunk", "row"]


@dataclass(frozen=True)
class DocMeta:
    """One document's metadata, shown with every citation: its catalog entry where it has one, else (and
    for the fields the entry leaves blank) what its own text says (``citeqa.ingest.metadata``)."""

    doc: str  # file name, e.g. "003_19084b4463aafb5f.txt"
    title: str
    venue: str = ""
    date: str = ""
    kind: str = ""  # trial article, news, blog, ...
    doi: str = ""
    trial_id: str = ""
    aliases: str = ""  # names readers use for the document or its study ("TOWER", "NCI blog")
    # Added later: defaults keep indexes written before them loading (store.meta_from_json).
    authors: str = ""  # "Hagop Kantarjian; Anthony Stein" or as a header writes them
    year: str = ""  # publication year, "2017"


@dataclass(frozen=True)
class Sentence:
    """A citable span: ``doc_text[start:end]`` is the exact quote; ``text`` is its cleaned rendering."""

    start: int
    end: int
    text: str
    # True where the sentence was cut at removed page furniture and goes on in the next sentence.
    continues: bool = False


@dataclass(frozen=True)
class Unit:
    """A retrieval unit: a prose chunk (consecutive sentences of one section) or one table row."""

    id: int
    doc: str
    section: str
    kind: UnitKind
    start: int
    end: int
    text: str  # cleaned, readable text (rows: linearised with caption and headers)
    sentences: tuple[Sentence, ...]
    table: str = ""  # table caption for rows
    cells: tuple[tuple[str, str], ...] = ()  # (column header, value) for rows
    # Start of a sentence cut by a page break, when this chunk begins with its continuation:
    # embedded with the chunk so it reads whole, but outside the chunk's span.
    lead: str = ""

    @property
    def embed_text(self) -> str:
        if self.kind != "chunk":
            return self.text
        body = f"{self.lead} {self.text}" if self.lead else self.text
        return f"{self.section}: {body}" if self.section else body


@dataclass(frozen=True)
class ParsedDoc:
    """Ingestion output for one file."""

    meta: DocMeta
    text: str  # decoded text; every offset points into it
    content_hash: str
    units: tuple[Unit, ...]
    sections: tuple[str, ...]
    tables: int
    furniture: tuple[tuple[int, int], ...] = ()  # removed spans (for audits and tests)
    # PDFs: where each stored character sits on the pages (citeqa.pages.PageMap) and the file itself,
    # kept beside the index so a citation can be shown on its rendered page.
    pages: Any = field(default=None, compare=False, repr=False)
    pdf: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True)
class Passage:
    """A retrieved unit with its fused score."""

    unit: Unit
    title: str
    quote: str  # exact document text[start:end]
    score: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        u = self.unit
        return {
            "doc": u.doc,
            "title": self.title,
            "section": u.section,
            "start": u.start,
            "end": u.end,
            "quote": self.quote,
            "text": u.text,
            "kind": u.kind,
            "score": round(self.score, 6),
        }


@dataclass(frozen=True)
class Citation:
    n: int
    doc: str
    title: str
    section: str
    start: int
    end: int
    quote: str  # == document text[start:end]
    score: float = 0.0
    text: str = ""  # cleaned rendering of the quote (LaTeX/markup resolved)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(self.score, 6)
        return d


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of the answer and the citation numbers backing it."""

    text: str
    citations: tuple[int, ...]
    supported: bool = True
    note: str = ""


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # rendered answer with [n] markers
    citations: list[Citation]
    passages: list[dict[str, Any]] = field(default_factory=list)
    refused: bool = False
    sentences: tuple[AnswerSentence, ...] = ()
    conflicts: tuple[str, ...] = ()  # human-readable notes on source disagreements
    notices: tuple[str, ...] = ()  # e.g. "LLM timed out; showing the extractive answer"
    standalone_question: str = ""
    mode: str = "extractive"
    support: float = 0.0  # P(the sources answer the question), from the answerability model
    # Refused by the detail gate (answer/detail.py: the evidence misses the asked detail), whatever the support.
    gated: bool = False
    verdict: str = ""  # yes/no questions: "yes", "no" or "unclear"
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "passages": self.passages,
            "sentences": [asdict(s) for s in self.sentences],
            "conflicts": list(self.conflicts),
            "notices": list(self.notices),
            "standalone_question": self.standalone_question,
            "mode": self.mode,
            "support": round(self.support, 4),
            "gated": self.gated,
            "verdict": self.verdict,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }

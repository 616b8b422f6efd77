"""Evidence scoring with a learned model: every sentence or table row of the retrieved pool gets
P(it answers the question); the answer leads with the most probable one.

The flow for one question (all frozen data):
``make_query`` → :class:`QuestionView`; ``candidates`` → :class:`Candidate` per sentence/row;
``score`` → :class:`Scored` (probability from ``models/evidence.json``); ``select`` → the evidence
to quote; ``answerability`` → P(the sources answer at all) from ``models/answerable.json``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from citeqa.abbrev import contract, expand
from citeqa.answer import detail as D
from citeqa.answer import features as F
from citeqa.answer.scorer import Model, check_features, columns, load_model, model_path
from citeqa.index import Index
from citeqa.ingest.bylines import is_byline
from citeqa.textutil import index_terms, numbers
from citeqa.types import Passage, Sentence, Unit


@dataclass(frozen=True)
class Candidate:
    unit: Unit
    sentence: Sentence
    position: int  # index of the sentence inside its unit
    passage_rank: int
    passage_score: float
    vector: np.ndarray = field(repr=False, compare=False)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.unit.doc, self.sentence.start, self.sentence.end)

    @property
    def is_row(self) -> bool:
        return self.unit.kind == "row"

    @property
    def text(self) -> str:
        return self.unit.text if self.is_row else self.sentence.text


@dataclass(frozen=True)
class Scored:
    cand: Candidate
    score: float  # P(this evidence answers the question), from the evidence model
    sim: float
    covered: frozenset[str]  # question terms this evidence covers (with its context)
    has_number: bool
    role: str = "other"  # section role (abstract, methods, results, conclusion, ...)
    features: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros(0))


class TermCache:
    """Bounded LRU of text -> terms, shared by the queries of one index snapshot (UI threads too)."""

    def __init__(self, max_items: int = 20_000) -> None:
        self.max_items = max_items
        self._data: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> frozenset[str] | None:
        with self._lock:
            v = self._data.get(key)
            if v is not None:
                self._data.move_to_end(key)
            return v

    def put(self, key: str, value: frozenset[str]) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def term_cache(index: Index) -> TermCache:
    cache = index.snap.derived.get("evidence_terms")
    if not isinstance(cache, TermCache):
        cache = index.snap.derived.setdefault("evidence_terms", TermCache())
    return cache


def table_group(index: Index, unit: Unit) -> Unit | None:
    """The sub-group header row a data row belongs to ("Age — yr | rows: Mean; Range"): the nearest header
    row above it, when it lists the row's label. "Male sex — no. (%)" also reads caption — two parts —
    cells, but is a label of its own, and the "Age — yr" header above it does not list "no. (%)"."""
    n = len(unit.cells)
    parts = unit.text.split(" — ")
    if unit.kind != "row" or not n or len(parts) < n + 3:
        return None
    label = parts[-(n + 1)].strip()
    for other in index.units[max(0, unit.id - 15) : unit.id][::-1]:
        if other.doc == unit.doc and other.kind == "row" and not other.cells and " | rows: " in other.text:
            rows = {r.strip() for r in other.text.split(" | rows: ", 1)[1].split(";")}
            return other if label in rows else None
    return None


def row_label(unit: Unit, grouped: bool = True) -> str:
    """A table row's own label ("Complete remission with partial hematologic recovery"): the part of its
    linearised text before the cells, after the caption and (``grouped``) its group heading."""
    parts = unit.text.split(" — ")
    n_cells = len(unit.cells)
    if not n_cells or len(parts) <= n_cells:
        return parts[-1]
    if grouped or len(parts) < n_cells + 3:
        return parts[-(n_cells + 1)]
    return " — ".join(parts[1 : len(parts) - n_cells])


_BROKEN_WORD = re.compile(r"\b([A-Za-z]{2,})- (?!(?:and|or|nor|to|as|but)\b)([a-z]{2,})\b")


def terms_of(text: str, abbr: dict[str, str], cache: TermCache | None = None, shorten: bool = True
             ) -> frozenset[str]:
    """Evidence terms: stems, hyphen parts, the long forms of abbreviations the text uses and (``shorten``)
    the abbreviations of long forms it spells out, so either way of writing a term meets the other. A
    question is not shortened: its abbreviations are expanded, which is enough to meet either spelling."""
    cache = cache if shorten else None  # the cache holds the shortened terms of a text
    if cache is not None and (hit := cache.get(text)) is not None:
        return hit
    # A word broken at a line end in text copied from a PDF ("hemato- logic") is one word.
    joined = _BROKEN_WORD.sub(r"\1\2", text)
    terms = set(index_terms(f"{joined} {expand(text, abbr)} {contract(joined, abbr) if shorten else ''}", parts=True))
    terms.update(t.replace("-", "") for t in list(terms) if "-" in t)
    out = frozenset(terms)
    if cache is not None:
        cache.put(text, out)
    return out


def make_query(index: Index, question: str, context: str, vector: np.ndarray) -> F.QuestionView:
    """Question terms weighted by rarity (IDF); a follow-up's earlier turn adds its terms at half weight."""
    abbr = index.abbreviations()
    weights: dict[str, float] = {}
    unknown = 0.0
    for text, factor in ((question, 1.0), (context, 0.5)):
        # Sorted: the weights sum in the same order in every process (set order follows the hash seed,
        # and a last-bit difference re-ordered tied candidates between runs).
        for t in sorted(terms_of(text, abbr, shorten=False)):
            known = index.in_corpus(t)
            # A word no document uses is usually the asker's phrasing: weigh it like a common word.
            w = (index.idf(t) if known else 1.0) * factor
            if not known and factor == 1.0 and any(c.isalpha() for c in t):
                unknown += 1.0
            weights[t] = max(weights.get(t, 0.0), w)
    core = frozenset(t for t in terms_of(question, abbr, shorten=False) if t in weights)
    seq = index_terms(question)
    named = frozenset(index.mentioned_docs(f"{question} {context}"))
    return F.QuestionView(
        text=question, weights=weights, core=core, numbers=frozenset(n.lstrip("-") for n in numbers(question)),
        max_idf=max(weights.values(), default=1.0), unknown_share=unknown / max(len(core), 1),
        named=named, vector=vector, **F.describe_question(question, bool(context)),
        bigrams=frozenset(zip(seq, seq[1:], strict=False)), counted=F.counted_noun(question),
        negated=bool(F.LABEL_NEGATION.search(question)),
    )


def candidates(index: Index, passages: Sequence[Passage]) -> list[Candidate]:
    out: list[Candidate] = []
    seen: set[tuple[str, int, int]] = set()
    for p in passages:
        u = p.unit
        if u.kind == "row" and not u.cells:
            continue  # header and sub-group rows are context for data rows, not answers
        if F.section_role(u.section) == "back":
            continue  # references, acknowledgements, funding, disclosures
        sv = index.sentence_vectors(u.id)
        for i, s in enumerate(u.sentences):
            key = (u.doc, s.start, s.end)
            if key in seen or F.INSTRUCTION.search(s.text) or F.NEVER_EVIDENCE.search(s.text) or is_byline(s.text):
                continue  # instructions to the reader or system, licences, funding, author lists: never evidence
            seen.add(key)
            vec = sv[i] if sv is not None and i < len(sv) else index.unit_vector(u.id)
            out.append(Candidate(u, s, i, p.rank, p.score, vec))
    return out


def views(index: Index, q: F.QuestionView, cands: Sequence[Candidate]) -> list[F.CandidateView]:
    abbr = index.abbreviations()
    tc = term_cache(index)
    out = []
    doc_len: dict[str, int] = {}
    for c in cands:
        u = c.unit
        if u.doc not in doc_len:
            doc_len[u.doc] = max(1, index.snap.docs[u.doc].chars) if u.doc in index.snap.docs else 1
        before = u.lead if c.position == 0 else u.sentences[c.position - 1].text
        own = terms_of(c.text, abbr, tc)
        ctx = own | terms_of(f"{u.section} {index.alias_text(u.doc)}", abbr, tc)
        if before and not c.is_row:
            ctx = ctx | terms_of(before, abbr, tc)
        label = F.inline_label(index.doc_text(u.doc), c.sentence.start) if not c.is_row else ""
        row = row_label(u, table_group(index, u) is not None) if c.is_row else ""
        section = f"{u.section} > {label}" if label and u.section else (label or u.section)
        out.append(F.CandidateView(
            text=c.text, own=own, context=ctx, section=section, role=F.section_role(section),
            is_row=c.is_row, position=c.position, rel_pos=c.sentence.start / doc_len[u.doc],
            passage_rank=c.passage_rank, passage_score=c.passage_score,
            sim=float(c.vector @ q.vector), unit_sim=float(index.unit_vector(u.id) @ q.vector), doc=u.doc,
            starts_lower=c.sentence.text[:1].islower(), seq=tuple(index_terms(c.text)),
            label=terms_of(row, abbr, shorten=False) if c.is_row else frozenset(),
            label_negated=bool(F.LABEL_NEGATION.search(row)),
        ))
    return out


def models(models_dir: str | Path | None = None) -> tuple[Model, Model]:
    ev = load_model(str(model_path(models_dir, "evidence")))
    ans = load_model(str(model_path(models_dir, "answerable")))
    check_features(ev, F.FEATURE_NAMES)
    check_features(ans, F.ANSWERABLE_FEATURES)
    return ev, ans


def score(index: Index, q: F.QuestionView, cands: Sequence[Candidate], model: Model) -> list[Scored]:
    vs = views(index, q, cands)
    x = F.feature_matrix(q, vs)
    probs = model.predict(x[:, columns(model, F.FEATURE_NAMES)]) if len(vs) else np.zeros(0)
    # Decisions compare probabilities (ratios, ties, thresholds); rounding keeps them the same when
    # concurrent requests change the last bits of a BLAS result.
    probs = np.round(probs, 4)
    out = []
    figure = F.FEATURE_NAMES.index("has_figure")
    for c, v, p, row in zip(cands, vs, probs, x, strict=True):
        covered = frozenset(t for t in q.weights if t in v.context)
        out.append(Scored(c, float(p), v.sim, covered, bool(row[figure]), v.role, row))
    out.sort(key=lambda s: (-s.score, s.cand.passage_rank, s.cand.sentence.start))
    return out


def answerability(q: F.QuestionView, scored: Sequence[Scored], model: Model) -> float:
    """P(the retrieved evidence answers the question): the refusal decision's input."""
    probs = np.array([s.score for s in scored])
    x = np.array([s.features for s in scored]) if scored else np.zeros((0, len(F.FEATURE_NAMES)))
    vec = F.answerable_vector(q, probs, x, [s.cand.unit.doc for s in scored])
    return round(float(model.predict(vec[columns(model, F.ANSWERABLE_FEATURES)])[0]), 4)


def detail_model(models_dir: str | Path | None = None) -> Model | None:
    """The near-topic refusal gate (``answer/detail.py``); None for a models directory without one."""
    path = model_path(models_dir, "detail")
    if not path.exists():
        return None
    model = load_model(str(path))
    check_features(model, D.DETAIL_FEATURES)
    return model


def doc_names(index: Index, doc: str) -> str:
    """What a question may call a document by: its title, aliases, trial id, venue and DOI ("the eLife paper")."""
    m = index.meta(doc)
    return f"{index.alias_text(doc)} {m.venue} {m.doi}"


def detail(index: Index, q: F.QuestionView, scored: Sequence[Scored], model: Model) -> float:
    """P(the best evidence states the detail the question asks about): the second refusal gate's input."""
    names = {d: doc_names(index, d) for d in {s.cand.unit.doc for s in scored}}
    texts = [D.gate_text(s.cand.text, s.cand.unit.section, names[s.cand.unit.doc]) for s in scored]
    probs = np.array([s.score for s in scored])
    vec = D.detail_vector(q.text, probs, D.candidate_inputs(np.array([s.features for s in scored])), texts)
    return round(float(model.predict(vec[columns(model, D.DETAIL_FEATURES)])[0]), 4)


def select(q: F.QuestionView, scored: Sequence[Scored], max_items: int, ratio: float = 0.5) -> list[Scored]:
    """Lead with the most probable evidence; add items nearly as probable that cover something new,
    and the best item of each document the question names."""
    if not scored:
        return []
    lead = scored[0]
    picked = [lead]
    covered = set(lead.covered)
    for s in scored[1:]:
        if len(picked) >= max_items or s.score < ratio * lead.score:
            break
        new = sum(q.weights.get(t, 0.0) for t in s.covered - covered) / q.total
        if new >= 0.08:
            picked.append(s)
            covered |= s.covered
    docs = {s.cand.unit.doc for s in picked}
    # A question naming two studies gets evidence from both: the named one's best item needs only a tenth of
    # the lead's probability, since the question's wording usually fits one study's phrasing (half the
    # ratio let "TOWER versus AALL1331" answer from TOWER alone).
    for doc in sorted(q.named - docs):
        best = next((s for s in scored if s.cand.unit.doc == doc and s.score >= 0.2 * ratio * lead.score), None)
        if best is not None and len(picked) <= max_items:
            picked.append(best)
    return picked

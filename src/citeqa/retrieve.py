"""Hybrid retrieval (dense + BM25, reciprocal-rank fusion) exposed as a LangChain retriever."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from citeqa.abbrev import abbreviations_used, expand
from citeqa.config import Settings
from citeqa.index import Index
from citeqa.textutil import index_terms, numbers
from citeqa.types import Passage

DocOf = Callable[[int], str]


class HybridRetriever(BaseRetriever):
    """Fuses FAISS inner-product ranks and BM25 ranks; returns units with exact offsets in metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    settings: Settings
    k: int = 8

    def embed_query(self, query: str) -> np.ndarray:
        return self.index.embedder.encode([query], 1)[0]

    def passages(self, query: str, k: int | None = None, qvec: np.ndarray | None = None,
                 extra_terms: str = "") -> list[Passage]:
        k = k or self.k
        s = self.settings
        qv = self.embed_query(query) if qvec is None else qvec
        expansion = expand(query, self.index.abbreviations(), synonyms=True)
        lex_query = " ".join(x for x in (query, extra_terms, expansion) if x)
        dense = self.index.search_dense(qv, s.candidate_k * 2)
        units = self.index.units
        doc_of = self.index.doc_of
        # Max-sim list: a chunk scores as its best sentence; single-sentence units keep their own score.
        maxsim: dict[int, float] = {}
        if s.sentence_weight > 0:  # off by default: skip the sentence search on the hot path
            maxsim = dict(self.index.search_sentences(qv, s.candidate_k))
            for uid, sc in dense:
                maxsim[uid] = max(maxsim.get(uid, -1.0), sc)
        lists = [
            (s.dense_weight, dense[: s.candidate_k]),
            (s.sentence_weight, sorted(maxsim.items(), key=lambda x: -x[1])[: s.candidate_k]),
            (s.bm25_weight, self.index.search_bm25(lex_query, s.candidate_k)),
        ]
        fused: dict[int, float] = {}
        for weight, hits in lists:
            for rank, (uid, _score) in enumerate(hits):
                fused[uid] = fused.get(uid, 0.0) + weight / (s.rrf_k + rank + 1)
        mentioned = self.index.mentioned_docs(query)
        candidates = sorted(fused, key=lambda u: -fused[u])[: s.candidate_k]
        if mentioned:  # a named document's best units join the pool even if fusion missed them
            for uid, _ in dense:
                if doc_of(uid) in mentioned and uid not in candidates:
                    candidates.append(uid)
        scored = self.rerank(query, qv, candidates, mentioned, lex_query)
        ranked = sorted(scored, key=lambda u: -scored[u])
        order = _diverse(ranked, doc_of, k, mentioned, _MULTI_DOC.search(query))
        order = _corroborate(order, ranked, scored, doc_of)
        fused = scored
        out = []
        for r, uid in enumerate(order):
            u = units[uid]
            out.append(Passage(u, self.index.meta(u.doc).title, self.index.quote(u.doc, u.start, u.end),
                               fused[uid], r + 1))
        return out

    def rerank(self, query: str, qv: np.ndarray, candidates: list[int], mentioned: set[str],
               lex_query: str) -> dict[int, float]:
        """Score candidates on meaning (best of unit/sentence similarity) and on covering the question's terms.

        Coverage is IDF-weighted over the unit's text, its section path and its document's catalog names,
        so "TOWER" or "chemotherapy group" count when the context says so.
        """
        idx = self.index
        # An expanded abbreviation is matched through its long form, not the letters themselves.
        abbr = {t for a in abbreviations_used(query, idx.abbreviations()) for t in index_terms_p(a)}
        terms = [t for t in dict.fromkeys(index_terms_p(lex_query)) if t not in abbr]
        quantity = [t for t in terms if t in _QUANTITY]
        # Quantity words signal the answer type, not the topic: they weigh little.
        weights = {t: (0.5 if t in _QUANTITY or t in _LIGHT else idx.idf(t)) for t in terms}
        total = sum(weights.values()) or 1.0
        term_id = {t: i for t in terms if (i := idx.snap.vocab.get(t)) is not None}
        qnums = set(numbers(query))
        out: dict[int, float] = {}
        alias_terms: dict[str, set[str]] = {}
        for uid in candidates:
            u = idx.units[uid]
            sim = float(idx.unit_vector(uid) @ qv)
            sv = idx.sentence_vectors(uid)
            if sv is not None:
                sim = max(sim, float((sv @ qv).max()))
            if u.doc not in alias_terms:
                alias_terms[u.doc] = set(index_terms_p(idx.alias_text(u.doc)))
            # The unit's indexed terms (text, section, abbreviation long forms), read from the BM25 rows.
            unit_ids = idx.unit_term_ids(uid)
            have = {t for t, i in term_id.items() if i in unit_ids} | alias_terms[u.doc]
            if quantity and any(c.isdigit() for c in u.text):
                have |= set(quantity)  # "what percentage" is answered by a number
            cov = sum(w for t, w in weights.items() if t in have) / total
            score = 0.6 * sim + 0.4 * cov
            if qnums:
                score += 0.1 * len(qnums & set(numbers(u.text))) / len(qnums)
            if u.doc in mentioned:
                score += 0.05
            if u.kind == "row" and u.cells:  # a question that names the row ("neutropenia") wants it
                label = set(index_terms_p(u.text.split(" — ")[-len(u.cells) - 1]))
                if label:
                    score += 0.1 * len(label & set(weights)) / len(label)
            if _BACK_MATTER.search(u.section):
                score -= 0.15
            out[uid] = score
        return out

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [to_document(p) for p in self.passages(query, kwargs.get("k"))]


def index_terms_p(text: str) -> list[str]:
    """Retrieval terms: hyphenated words also count by their parts."""
    return index_terms(text, parts=True)


_QUANTITY = frozenset(index_terms("percentage percent proportion fraction share rate rates number count"))
# Light verbs and generic nouns of questions: rare in a small corpus, yet they say little about the topic.
_LIGHT = frozenset(index_terms(
    "achieve achieved receive received get got occur occurred find found see take took include included "
    "experience experienced undergo underwent become became happen happened patients people participants "
    "study trial"
))
_BACK_MATTER = re.compile(r"^(REFERENCES|APPENDIX|ACKNOWLEDG|DISCLOSURE)|> Supported by", re.I)
_MULTI_DOC = re.compile(
    r"\b(studies|trials|sources|articles|documents|papers|reports|files|both|across|each (study|trial|source)|"
    r"all (three|four|five|the))\b", re.I)


def _diverse(ranked: list[int], doc_of: DocOf, k: int, mentioned: set[str], multi: object) -> list[int]:
    """Top-k with every mentioned document represented; a cross-document question spreads over documents."""
    cap = max(1, k - 2) if (multi or len(mentioned) > 1) else k
    picked: list[int] = []
    per_doc: dict[str, int] = {}
    for doc in sorted(mentioned):
        best = next((u for u in ranked if doc_of(u) == doc), None)
        if best is not None and len(mentioned) > 1:
            picked.append(best)
            per_doc[doc] = 1
    for uid in ranked:
        if len(picked) >= k:
            break
        d = doc_of(uid)
        if uid in picked or per_doc.get(d, 0) >= cap:
            continue
        picked.append(uid)
        per_doc[d] = per_doc.get(d, 0) + 1
    for uid in ranked:  # fill up if the cap left room unused
        if len(picked) >= k:
            break
        if uid not in picked:
            picked.append(uid)
    return sorted(picked, key=ranked.index)


def _corroborate(order: list[int], ranked: list[int], scored: dict[int, float], doc_of: DocOf) -> list[int]:
    """When one document fills the list, a close runner-up from another document takes the last place:
    readers want to see whether other sources agree."""
    if len(order) < 3 or len({doc_of(u) for u in order}) > 1:
        return order
    doc = doc_of(order[0])
    other = next((u for u in ranked if doc_of(u) != doc), None)
    if other is not None and scored[other] >= 0.9 * scored[order[-1]]:
        return [*order[:-1], other]
    return order


def to_document(p: Passage) -> Document:
    u = p.unit
    return Document(
        page_content=u.text,
        metadata={
            "id": u.id, "doc": u.doc, "title": p.title, "section": u.section, "kind": u.kind,
            "start": u.start, "end": u.end, "quote": p.quote, "score": p.score, "rank": p.rank,
        },
    )

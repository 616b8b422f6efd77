"""The persistent hybrid index: MiniLM vectors in FAISS plus BM25, incremental and atomic."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from citeqa import integrity, store
from citeqa.config import Settings
from citeqa.embed import Embedder, default_embedder
from citeqa.errors import CiteqaError, IndexDamaged, IndexMissing, IngestError
from citeqa.ingest import load_catalog, parse_document, parse_text
from citeqa.ingest.loaders import Loaded, load_document
from citeqa.pages import Box, PageMap
from citeqa.snapshot import (
    PAGES_DIR,
    DocRecord,
    Snapshot,
    Units,
    doc_abbreviations,
    empty_snapshot,
    faiss_index,
    load_snapshot,
    unit_counts,
    write_build,
)
from citeqa.sources import Sources, SourcesRefused, add_previous_sources, gather, refuse_if_nothing_read
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
    kept: list[str] = field(default_factory=list)  # already indexed, not among the paths given; kept
    errors: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.documents} documents, {self.sections} sections, {self.tables} tables, {self.units} chunks "
            f"({self.embedded} texts embedded; {len(self.added)} new, {len(self.reembedded)} changed, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed, {len(self.kept)} kept from earlier "
            f"runs; {len(self.errors)} errors) in {self.seconds:.1f} s"
        )


def _content_hash(raw: bytes, meta: DocMeta | None, loaded: Loaded | None = None) -> str:
    h = hashlib.sha256(raw)
    if loaded is not None and loaded.pdf is not None:
        from citeqa.ingest.pdf import EXTRACTOR

        h.update(EXTRACTOR.encode())  # PDFs indexed by an earlier extractor are read again
    if meta is not None:
        h.update(json.dumps(dataclasses.asdict(meta), sort_keys=True).encode())
    return h.hexdigest()


class Index:
    def __init__(self, settings: Settings, snap: Snapshot, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._snap = snap
        self._embedder = embedder
        self._lock = threading.Lock()
        self._pointer: tuple[int, int, int] | None = None  # CURRENT as last seen (see ``newer``)

    # --- construction -----------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings | None = None, progress: Progress | None = None,
             embedder: Embedder | None = None) -> Index:
        """Load the index for these settings, building it from ``settings.seeds_dir`` if missing."""
        settings = settings or Settings()
        if cls is Index and settings.uses_postgres():
            return _pg().open(settings, progress, embedder)
        try:
            return cls.load(settings, embedder=embedder)
        except IndexMissing:
            return cls.build([settings.seeds_dir], settings, progress=progress, embedder=embedder)

    @classmethod
    def load(cls, settings_or_dir: Settings | Path | None = None, embedder: Embedder | None = None,
             full_check: bool | None = None) -> Index:
        """Open the published build. Every file's size is checked against the manifest, and its hash too
        when ``full_check`` (default: when the build is under ``settings.verify_on_load_mb``)."""
        if isinstance(settings_or_dir, Path):
            root, settings = settings_or_dir, Settings(index_dir=settings_or_dir.parent)
        else:
            settings = settings_or_dir or Settings()
            if cls is Index and settings.uses_postgres():
                return _pg().load(settings, embedder=embedder, full_check=full_check)
            root = settings.index_path()
        pointer = _pointer(root)
        try:
            build = store.current_build(root)
        except IndexMissing as e:
            raise _missing_hint(settings, root) or e from None
        idx = cls(settings, _load_build(root, build, settings, full_check), embedder)
        idx._pointer = pointer
        return idx

    @classmethod
    def build(cls, paths: Iterable[Path], settings: Settings | None = None, progress: Progress | None = None,
              embedder: Embedder | None = None, rebuild: bool = False, prune: bool = False,
              on_wait: Callable[[str], None] | None = None) -> Index:
        """Index these files/directories into the published index, re-embedding only what changed.

        Documents already indexed but not among ``paths`` are kept unless ``prune`` (then the index holds
        exactly ``paths``). A path that is missing, an empty folder or one whose files all fail to read
        refuses the run (``SourcesRefused``) and leaves the index as it was; ``prune`` accepts the empty
        and unreadable ones. ``rebuild`` ignores the stored vectors and re-reads every document, the
        earlier ones from the source files they were indexed from.
        """
        settings = settings or Settings()
        if cls is Index and settings.uses_postgres():
            return _pg().build(paths, settings, progress, embedder, rebuild, prune, on_wait)
        idx = cls(settings, empty_snapshot(), embedder)
        idx.last_report = idx._rebuild(list(paths), progress=progress, prune=prune, rebuild=rebuild,
                                       strict=True, on_wait=on_wait)
        return idx

    # --- mutation (UI library, `citeqa remove`) -------------------------------------------------------
    def add_files(self, paths: Sequence[Path], progress: Progress | None = None) -> IndexReport:
        """Add or update these files in the published index (merged with whatever is published now)."""
        return self._rebuild(list(paths), progress=progress)

    def remove(self, *docs: str) -> IndexReport:
        return self._rebuild([], progress=None, drop=set(docs))

    def fork(self) -> Index:
        """Another Index over the same snapshot: a writer whose swaps do not disturb this one's readers."""
        return Index(self.settings, self._snap, self._embedder)

    def newer(self) -> Index | None:
        """An Index on the build published since this one was loaded (by any process), else None.

        Costs a ``stat`` of the CURRENT pointer when nothing changed. A damaged new build raises
        ``IndexDamaged`` once; it is not retried until the pointer changes again.
        """
        root = self.settings.index_path()
        pointer = _pointer(root)
        if pointer is None or pointer == self._pointer:
            return None
        self._pointer = pointer
        build = store.current_build(root)
        for _ in range(3):
            if self._snap.build_dir is not None and build.name == self._snap.build_dir.name:
                return None
            try:
                new = Index(self.settings, _load_build(root, build, self.settings), self._embedder)
            except IndexDamaged:
                again = store.current_build(root)
                if again == build:  # not a build deleted by a newer publish: really damaged
                    raise
                build = again
                continue
            new._pointer = pointer
            return new
        return None

    def damage(self) -> list[str]:
        """Every file of this build hashed against its manifest: the problems found (empty: intact)."""
        build = self._snap.build_dir
        if build is None:
            return []
        try:
            manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
            return integrity.verify(build, manifest, full=True)
        except (OSError, ValueError, AttributeError) as e:
            return [f"manifest.json: {e}"]

    # --- reading ----------------------------------------------------------------------------------
    @property
    def snap(self) -> Snapshot:
        return self._snap

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder(self.settings)
        return self._embedder

    @property
    def units(self) -> Units:
        """All units, in id order (decoded lazily from the build's files)."""
        return self._snap.units

    def doc_units(self, doc: str) -> list[Unit]:
        """A document's units in id order (reading order within each section)."""
        lo, hi = self._snap.doc_range(doc)
        return list(self.units[lo:hi])

    def doc_of(self, uid: int) -> str:
        """A unit's document name, without decoding the unit."""
        return self._snap.names[int(self._snap.unit_doc[uid])]

    @property
    def path(self) -> Path | None:
        return self._snap.build_dir

    @property
    def location(self) -> str:
        """Where this index lives, for messages (a build folder, or a database and generation)."""
        return str(self.path)

    def doc_text(self, doc: str) -> str:
        snap = self._snap
        if doc not in snap.docs or snap.texts is None:
            raise KeyError(doc)
        if "text" not in snap.derived:
            texts, pos = snap.texts, snap.positions
            snap.derived["text"] = lru_cache(maxsize=64)(lambda name: texts.text(pos[name]))
        text: str = snap.derived["text"](doc)
        return text

    # --- PDF pages (file backend: sidecars in the build's pdf/ folder) -------------------------------
    def pdf_file(self, doc: str) -> Path | None:
        """The indexed copy of a PDF document (None for other formats or an index built without it)."""
        snap = self._snap
        if doc not in snap.docs or snap.build_dir is None:
            return None
        f = snap.build_dir / PAGES_DIR / f"{snap.docs[doc].content_hash}.pdf"
        return f if f.is_file() else None

    def page_map(self, doc: str) -> PageMap | None:
        """Where each character of a PDF document's stored text sits on its pages (None: not a PDF)."""
        snap = self._snap
        if doc not in snap.docs or snap.build_dir is None:
            return None
        maps: dict[str, PageMap | None] = snap.derived.setdefault("page_maps", {})
        if doc not in maps:
            f = snap.build_dir / PAGES_DIR / f"{snap.docs[doc].content_hash}.npz"
            try:
                maps[doc] = PageMap.load(f) if f.is_file() else None
            except (OSError, ValueError) as e:
                raise IndexDamaged(str(snap.build_dir), f"{f.name}: {e}") from e
        return maps[doc]

    def citation_boxes(self, doc: str, start: int, end: int) -> list[Box]:
        """Boxes on the PDF pages covering ``doc_text(doc)[start:end]`` (empty for non-PDF documents)."""
        pm = self.page_map(doc)
        return pm.boxes(start, end) if pm is not None else []

    def meta(self, doc: str) -> DocMeta:
        return self._snap.docs[doc].meta

    def quote(self, doc: str, start: int, end: int) -> str:
        return self.doc_text(doc)[start:end]

    def documents(self) -> list[dict[str, Any]]:
        counts = unit_counts(self._snap)
        return [
            {**dataclasses.asdict(r.meta), "units": counts.get(name, 0), "tables": r.tables,
             "sections": len(r.sections), "chars": r.chars}
            for name, r in sorted(self._snap.docs.items())
        ]

    def search_dense(self, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        snap = self._snap
        if not snap.units:
            return []
        scores, ids = snap.faiss.search(qvec.reshape(1, -1).astype(np.float32), min(k, len(snap.units)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=False) if i >= 0]

    def term_ids(self, text: str) -> list[int]:
        """BM25 vocabulary ids of ``text``'s retrieval terms (terms no unit uses are dropped)."""
        vocab = self._snap.vocab
        return [i for t in index_terms(text, parts=True) if (i := vocab.get(t)) is not None]

    def search_bm25(self, query: str, k: int) -> list[tuple[int, float]]:
        bm = self._snap.bm25
        if bm is None:
            return []
        return bm.search(self.term_ids(query), min(k, bm.n_units))

    def unit_term_ids(self, uid: int) -> set[int]:
        """The BM25 terms of a unit (its text, section and abbreviation long forms), as vocabulary ids."""
        bm = self._snap.bm25
        return set(bm.unit_terms(uid).tolist()) if bm is not None else set()

    def unit_vector(self, uid: int) -> np.ndarray:
        return np.asarray(self._snap.vectors[uid], dtype=np.float32)

    def search_sentences(self, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Dense search over the sentences inside chunks, scored per containing unit (max-sim)."""
        snap = self._snap
        if len(snap.sent_vectors) == 0:
            return []
        with snap.lock:  # built on first use: the default retriever never asks for it
            if "sent_faiss" not in snap.derived:
                snap.derived["sent_faiss"] = faiss_index(snap.sent_vectors, self.settings)
        fi = snap.derived["sent_faiss"]
        scores, ids = fi.search(qvec.reshape(1, -1).astype(np.float32), min(k * 2, fi.ntotal))
        owners = np.searchsorted(snap.sent_ptr, ids[0], side="right") - 1
        best: dict[int, float] = {}
        for i, uid, sc in zip(ids[0], owners, scores[0], strict=False):
            if i >= 0:
                best[int(uid)] = max(best.get(int(uid), -1.0), float(sc))
        return sorted(best.items(), key=lambda x: -x[1])[:k]

    def idf(self, term: str) -> float:
        """Inverse document frequency over units (from the BM25 postings)."""
        snap = self._snap
        n = max(len(snap.units), 1)
        tid = snap.vocab.get(term)
        df = snap.bm25.df(tid) if tid is not None and snap.bm25 is not None else 0
        return math.log((n + 1) / (df + 0.5))

    def in_corpus(self, term: str) -> bool:
        tid = self._snap.vocab.get(term)
        return tid is not None and self._snap.bm25 is not None and self._snap.bm25.df(tid) > 0

    def alias_text(self, doc: str) -> str:
        m = self._snap.docs[doc].meta
        return f"{m.title} {m.aliases} {m.trial_id}"

    def abbreviations(self) -> dict[str, str]:
        """Abbreviations the indexed documents define (found at indexing time)."""
        abbrev: dict[str, str] = self._snap.derived.get("abbrev", {})
        return abbrev

    def alias_tokens(self, doc: str) -> set[str]:
        """Catalog tokens that name ``doc`` (found at indexing time)."""
        return self._snap.aliases.get(doc, set())

    def alias_index(self) -> dict[str, set[str]]:
        """Alias token -> documents it names; built once per index snapshot."""
        snap = self._snap
        if snap.derived.get("alias_index") is None:
            inverted: dict[str, set[str]] = {}
            for doc, toks in snap.aliases.items():
                for t in toks:
                    inverted.setdefault(t, set()).add(doc)
            snap.derived["trial_ids"] = {n: set(tokens(r.meta.trial_id)) for n, r in snap.docs.items()}
            snap.derived["alias_index"] = inverted
        table: dict[str, set[str]] = snap.derived["alias_index"]
        return table

    def mentioned_docs(self, query: str) -> set[str]:
        """Documents the question names through a distinctive catalog alias or trial id ("TOWER", "NCI")."""
        table = self.alias_index()
        trial_ids: dict[str, set[str]] = self._snap.derived["trial_ids"]
        out: set[str] = set()
        for t in set(tokens(query)):
            named = table.get(t, set())
            # A study's name points at its own report first; news pieces about it only when no
            # document carries it as its trial id.
            primary = {doc for doc in named if t in trial_ids.get(doc, set())}
            out |= primary or named
        return out

    def sentence_vectors(self, unit_id: int) -> np.ndarray | None:
        """Embeddings of the sentences of a multi-sentence chunk (None for single-sentence units)."""
        snap = self._snap
        lo, hi = int(snap.sent_ptr[unit_id]), int(snap.sent_ptr[unit_id + 1])
        return np.asarray(snap.sent_vectors[lo:hi], dtype=np.float32) if hi > lo else None

    # --- build internals --------------------------------------------------------------------------
    def _published(self, root: Path) -> Snapshot:
        """The build published now, every file hashed: it is about to be carried into the next build."""
        try:
            build = store.current_build(root)
        except IndexMissing:
            return empty_snapshot()
        if self._snap.build_dir is not None and self._snap.build_dir == build:
            _load_build(root, build, self.settings, full_check=True, snap=self._snap)
            return self._snap
        return _load_build(root, build, self.settings, full_check=True)

    def _rebuild(self, paths: list[Path], progress: Progress | None, prune: bool = False,
                 drop: set[str] | None = None, rebuild: bool = False, strict: bool = False,
                 on_wait: Callable[[str], None] | None = None) -> IndexReport:
        root = self.settings.index_path()
        if on_wait is None and progress is not None:
            on_wait = lambda msg: progress(0, 0, msg)  # noqa: E731
        with self._lock, self._writer_lock(root, on_wait):
            t0 = time.perf_counter()
            report = IndexReport()
            old = empty_snapshot() if rebuild else self._published(root)
            drop = drop or set()
            if unknown := sorted(drop - set(old.docs)):
                raise CiteqaError(f"No document named {unknown[0]!r} in the index; see `citeqa docs` for names.")
            src = gather(paths)
            if strict and src.unusable:
                raise SourcesRefused(src.unusable + src.empty, len(old.docs), prune_helps=False)
            report.errors += src.skipped
            if rebuild and not prune:
                self._previous_sources(root, src, report.errors)
            try:
                catalog = load_catalog(src.files, self.settings.catalog_file)
            except IngestError as e:
                report.errors.append((e.path, e.reason))
                catalog = {}
            wanted, unreadable = self._read(src, catalog, report, progress)
            if strict and not prune:
                refuse_if_nothing_read(src, set(wanted), report.errors, len(old.docs))
            # Without prune, nothing is removed but what ``drop`` names; an unreadable file keeps its
            # last good version.
            carried = set() if prune else set(old.docs) - drop
            names = set(wanted) | (unreadable & set(old.docs)) | carried
            docs: dict[str, DocRecord] = {}
            parsed: list[ParsedDoc] = []
            reuse: list[str] = []
            for i, name in enumerate(sorted(names)):
                prev = old.docs.get(name)
                if name in wanted:
                    f, loaded, h = wanted[name]
                    text, raw = loaded.text, loaded.raw
                    if prev is not None and prev.content_hash == h:
                        reuse.append(name)
                        docs[name] = prev
                        report.unchanged.append(name)
                        continue
                    if progress is not None:  # parsing a large file takes seconds: say which one
                        progress(i, len(names), f"parsing {name} ({len(text):,} characters)")
                    try:
                        pd = parse_text(name, text, raw, catalog.get(name), self.settings, pdf=loaded.pdf)
                    except IngestError as e:
                        report.errors.append((str(f), e.reason))
                        if prev is not None:  # keep the last good version rather than lose it
                            reuse.append(name)
                            docs[name] = prev
                        continue
                    pd = dataclasses.replace(pd, content_hash=h)
                    parsed.append(pd)
                    docs[name] = DocRecord(pd.meta, h, pd.sections, pd.tables, str(f.absolute()), len(pd.text),
                                           doc_abbreviations(pd.text))
                    (report.reembedded if prev is not None else report.added).append(name)
                elif prev is not None:
                    reuse.append(name)
                    docs[name] = prev
                    if name not in unreadable:
                        report.kept.append(name)
            report.removed = sorted(set(old.docs) - set(docs))
            assert prune or rebuild or set(report.removed) <= drop, report.removed
            report.embedded = self._publish(old, reuse, parsed, docs, progress)
            report.documents = len(docs)
            report.sections = sum(len(d.sections) for d in docs.values())
            report.tables = sum(d.tables for d in docs.values())
            report.units = len(self._snap.units)
            report.seconds = time.perf_counter() - t0
            return report

    # --- storage hooks (the PostgreSQL backend overrides these; citeqa.backends.postgres) -----------
    def _writer_lock(self, root: Path, on_wait: Callable[[str], None] | None) -> AbstractContextManager[None]:
        return integrity.writer_lock(root, on_wait)

    def _previous_sources(self, root: Path, src: Sources, errors: list[tuple[str, str]]) -> None:
        add_previous_sources(root, src, errors)

    def _publish(self, old: Snapshot, reuse: list[str], parsed: list[ParsedDoc], docs: dict[str, DocRecord],
                 progress: Progress | None) -> int:
        """Write and publish the next build, serve it; return how many texts were embedded."""
        root = self.settings.index_path()
        build, embedded = write_build(self.settings, lambda: self.embedder, old, reuse, parsed, docs, progress)
        self._snap = _load_build(root, build, self.settings, full_check=False)
        self._pointer = _pointer(root)
        return embedded

    @staticmethod
    def _read(src: Sources, catalog: dict[str, DocMeta], report: IndexReport, progress: Progress | None = None
              ) -> tuple[dict[str, tuple[Path, Loaded, str]], set[str]]:
        """Read every file: ``({name: (path, loaded, content hash)}, names of files that failed)``."""
        wanted: dict[str, tuple[Path, Loaded, str]] = {}
        unreadable: set[str] = set()
        for i, f in enumerate(src.files):
            if progress is not None and f.suffix.lower() == ".pdf":  # a PDF's layout takes a moment: say which
                progress(i, len(src.files), f"reading {f.name} ({i + 1} of {len(src.files)})")
            try:
                loaded = load_document(f)
            except IngestError as e:
                report.errors.append((e.path, e.reason))
                unreadable.add(f.name)
                continue
            if f.name in wanted:
                report.errors.append((str(f), f"duplicate document name {f.name!r}; skipped"))
                continue
            wanted[f.name] = (f, loaded, _content_hash(loaded.raw, catalog.get(f.name), loaded))
        return wanted, unreadable

    last_report: IndexReport | None = None


def _pg() -> Any:
    from citeqa.backends.postgres import PgIndex  # psycopg is imported only when a database is used

    return PgIndex


def _missing_hint(settings: Settings, root: Path) -> IndexMissing | None:
    """An index of these documents built by another encoder runtime: say which, and how to use it."""
    from citeqa.encoder import RUNTIMES

    for runtime in RUNTIMES:
        other = settings.model_copy(update={"embed_runtime": runtime})
        if runtime != settings.embed_runtime and (other.index_path() / "CURRENT").exists():
            return IndexMissing(str(root), f"An index built with embed_runtime={runtime} is at "
                                f"{other.index_path()}: set CITEQA_EMBED_RUNTIME={runtime} to use it.")
    return None


def _pointer(root: Path) -> tuple[int, int, int] | None:
    """Identity of the CURRENT pointer file (a publish replaces it, so its inode changes)."""
    try:
        st = os.stat(root / "CURRENT")
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _load_build(root: Path, build: Path, settings: Settings, full_check: bool | None = None,
                snap: Snapshot | None = None) -> Snapshot:
    """Load (or, given ``snap``, only check) a build; any damage is ``IndexDamaged`` naming ``root``."""
    try:
        manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
        if snap is not None:
            integrity.check(build, manifest, full=bool(full_check))
        else:
            snap = load_snapshot(build, settings, full_check)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        reason = str(e) if isinstance(e, integrity.Damage) else f"{type(e).__name__}: {e}"
        raise IndexDamaged(str(root), reason) from e
    if not isinstance(manifest, dict) or manifest.get("shape") != json.loads(json.dumps(settings.index_shape())):
        raise IndexDamaged(str(root), "built with different model or chunking settings")
    return snap


__all__ = ["DocRecord", "Index", "IndexReport", "SourcesRefused", "parse_document"]

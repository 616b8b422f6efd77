"""The PostgreSQL + pgvector backend: ``PgIndex`` is an ``Index`` whose storage is a database that several
app processes share (``CITEQA_STORE=postgresql://...``).

Everything above the store (parsing, incremental decisions, the retriever, the answerer) is the file
backend's code: ``PgIndex`` overrides only the storage hooks (``_writer_lock``, ``_published``,
``_publish``, ``_previous_sources``) and the reads that touch stored data. Builds take a PostgreSQL
advisory lock (held by the connection, so a killed build releases it), merge with the generation served
at that moment, embed only new or changed files, and write the new generation in one transaction.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from citeqa.config import Settings
from citeqa.embed import Embedder
from citeqa.errors import IndexDamaged, IndexMissing
from citeqa.index import Index, Progress
from citeqa.pages import PageMap
from citeqa.snapshot import DocRecord, Snapshot, embed_new, empty_snapshot
from citeqa.sources import Sources
from citeqa.types import ParsedDoc

from .pg_db import Pool, lock_key, masked, pool_for
from .pg_read import Generation, current_generation, load_generation
from .pg_write import collect_garbage, ensure_ann_index, write_generation


class PgIndex(Index):
    def __init__(self, settings: Settings, snap: Snapshot, embedder: Embedder | None = None) -> None:
        super().__init__(settings, snap, embedder)
        self.pool: Pool = pool_for(settings.store, settings.pg_pool_size)

    # --- construction -------------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings | None = None, progress: Progress | None = None,
             embedder: Embedder | None = None) -> Index:
        settings = settings or Settings()
        try:
            return cls.load(settings, embedder=embedder)
        except IndexMissing:
            return cls.build([settings.seeds_dir], settings, progress=progress, embedder=embedder)

    @classmethod
    def load(cls, settings_or_dir: Settings | Path | None = None, embedder: Embedder | None = None,
             full_check: bool | None = None) -> Index:
        settings = settings_or_dir if isinstance(settings_or_dir, Settings) else Settings()
        pool = pool_for(settings.store, settings.pg_pool_size)
        return cls(settings, load_generation(pool, settings), embedder)

    @classmethod
    def build(cls, paths: Iterable[Path], settings: Settings | None = None, progress: Progress | None = None,
              embedder: Embedder | None = None, rebuild: bool = False, prune: bool = False,
              on_wait: Callable[[str], None] | None = None) -> Index:
        idx = cls(settings or Settings(), empty_snapshot(), embedder)
        idx.last_report = idx._rebuild(list(paths), progress=progress, prune=prune, rebuild=rebuild,
                                       strict=True, on_wait=on_wait)
        return idx

    def fork(self) -> Index:
        return PgIndex(self.settings, self._snap, self._embedder)

    def newer(self) -> Index | None:
        """An Index on the generation made current since this one was loaded (by any process): one
        indexed single-row query per question."""
        gen_id = current_generation(self.pool, self.settings.fingerprint())
        if gen_id is None or gen_id == self.generation:
            return None
        return PgIndex(self.settings, load_generation(self.pool, self.settings, gen_id), self._embedder)

    @property
    def generation(self) -> int | None:
        gen = self._snap.derived.get("pg")
        return gen.id if isinstance(gen, Generation) else None

    @property
    def location(self) -> str:
        return f"{masked(self.settings.store)} (generation {self.generation})"

    def damage(self) -> list[str]:
        """Every document of the generation has its units and postings (the database checks its own pages)."""
        gen = self._snap.derived.get("pg")
        if not isinstance(gen, Generation):
            return []
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT d.name, d.n_units, (SELECT count(*) FROM cq_units u WHERE u.doc_id = d.id) "
                "FROM cq_generation_docs g JOIN cq_documents d ON d.id = g.doc_id WHERE g.gen_id = %s",
                (gen.id,)).fetchall()
        return [f"{name}: {have} of {n} units stored" for name, n, have in rows if int(have) != int(n)]

    # --- reading ------------------------------------------------------------------------------------
    @property
    def _gen(self) -> Generation:
        gen = self._snap.derived.get("pg")
        if not isinstance(gen, Generation):
            raise IndexMissing(masked(self.settings.store))
        return gen

    def doc_text(self, doc: str) -> str:
        ids: dict[str, int] = self._snap.derived.get("doc_ids", {})
        if doc not in ids:
            raise KeyError(doc)
        return self._gen.text(ids[doc])

    def _pages_row(self, doc: str, column: str) -> bytes | None:
        ids: dict[str, int] = self._snap.derived.get("doc_ids", {})
        if doc not in ids:
            return None
        with self.pool.connection() as conn:
            row = conn.execute(f"SELECT {column} FROM cq_pages WHERE doc_id = %s", (ids[doc],)).fetchone()
        return None if row is None else bytes(row[0])

    def pdf_file(self, doc: str) -> Path | None:
        """The indexed PDF, copied once from the database into a content-addressed file of this machine
        (the page renderer reads a file; any replica gets the same bytes)."""
        if doc not in self._snap.docs:
            return None
        f = Path(tempfile.gettempdir()) / "citeqa-pg-pdf" / f"{self._snap.docs[doc].content_hash}.pdf"
        if f.is_file():
            return f
        data = self._pages_row(doc, "pdf")
        if data is None:
            return None
        f.parent.mkdir(parents=True, exist_ok=True)
        part = f.with_name(f"{f.name}.{os.getpid()}.{threading.get_ident()}")
        part.write_bytes(data)
        os.replace(part, f)  # concurrent writers of the same content: the last rename wins, same bytes
        return f

    def page_map(self, doc: str) -> PageMap | None:
        """Where each character of a PDF document's stored text sits on its pages (None: not a PDF)."""
        maps: dict[str, PageMap | None] = self._snap.derived.setdefault("page_maps", {})
        if doc not in maps:
            data = self._pages_row(doc, "page_map")
            try:
                maps[doc] = None if data is None else PageMap.from_bytes(data)
            except (OSError, ValueError) as e:
                raise IndexDamaged(masked(self.settings.store), f"page map of {doc}: {e}") from e
        return maps[doc]

    def search_dense(self, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        if not len(self._snap.units):
            return []
        hits = self._gen.dense(qvec, min(k, len(self._snap.units)))
        self._gen.rows([u for u, _ in hits])  # the reranker reads these next: one query instead of k
        return hits

    def term_ids(self, text: str) -> list[int]:
        from citeqa.textutil import index_terms

        terms = index_terms(text, parts=True)
        ids = self._gen.terms.lookup(terms, self._gen.absent)
        return [ids[t] for t in terms if t in ids]

    def search_bm25(self, query: str, k: int) -> list[tuple[int, float]]:
        if not len(self._snap.units):
            return []
        hits = self._gen.bm25(self.term_ids(query), min(k, len(self._snap.units)))
        self._gen.rows([u for u, _ in hits])
        return hits

    def unit_vector(self, uid: int) -> np.ndarray:
        return self._gen.row(uid).vector

    def sentence_vectors(self, unit_id: int) -> np.ndarray | None:
        return self._gen.row(unit_id).sentences

    def search_sentences(self, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        vecs, owners = self._gen.sentences()
        if not len(vecs):
            return []
        scores = vecs @ qvec.astype(np.float32)
        best: dict[int, float] = {}
        for i in np.argsort(-scores, kind="stable")[: k * 2]:
            uid = int(owners[i])
            best[uid] = max(best.get(uid, -1.0), float(scores[i]))
        return sorted(best.items(), key=lambda x: -x[1])[:k]

    # --- storage hooks ------------------------------------------------------------------------------
    @contextmanager
    def _writer_lock(self, root: Path, on_wait: Callable[[str], None] | None) -> Iterator[None]:
        """One build at a time per settings shape, across processes and machines: an advisory lock held by
        a connection of its own (a killed build's connection closes and the lock goes with it)."""
        key = lock_key("build:" + self.settings.fingerprint())
        with self.pool.connection() as conn:
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                if on_wait is not None:
                    on_wait(f"waiting for another index build on {masked(self.settings.store)} to finish")
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def _published(self, root: Path) -> Snapshot:
        try:
            return load_generation(self.pool, self.settings)
        except IndexMissing:
            return empty_snapshot()

    def _previous_sources(self, root: Path, src: Sources, errors: list[tuple[str, str]]) -> None:
        old = self._published(root)
        given = {f.name for f in src.files}
        for name, rec in old.docs.items():
            path = Path(rec.source)
            if name in given:
                continue
            if rec.source and path.name == name and path.is_file():
                src.files.append(path)
                src.origin[path] = "(indexed earlier)"
            else:
                errors.append((name, f"its source file {rec.source or '(unknown)'} is gone, so the rebuilt "
                                     "index does not hold it; index the document again to restore it"))

    def _publish(self, old: Snapshot, reuse: list[str], parsed: list[ParsedDoc], docs: dict[str, DocRecord],
                 progress: Progress | None) -> int:
        unchanged = not parsed and sorted(reuse, key=old.positions.__getitem__) == list(old.docs)
        if unchanged and old.derived.get("pg") is not None:  # nothing to write: keep serving it
            self._snap = old
            return 0
        vecs, svecs, total, _dim = embed_new(self.settings, lambda: self.embedder, parsed, progress)
        gen_id = write_generation(self.pool, self.settings, old, reuse, parsed, docs, vecs, svecs)
        self._snap = load_generation(self.pool, self.settings, gen_id)
        collect_garbage(self.pool, self.settings)
        ensure_ann_index(self.pool, self.settings, len(self._snap.units))
        return total


__all__ = ["PgIndex"]

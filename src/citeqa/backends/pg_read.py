"""One served generation, read from PostgreSQL on demand: units, vectors, BM25 statistics, texts.

The app process keeps only the generation's document list (names, metadata, first unit id of each)
and bounded caches; units, vectors and postings stay in the database and a question reads what it
touches. Unit ids are the file backend's: documents in generation order, units contiguous per document.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import overload

import numpy as np

from citeqa import store
from citeqa.bm25 import BM25, K1, B, Vocab
from citeqa.config import Settings
from citeqa.errors import IndexDamaged, IndexMissing
from citeqa.snapshot import DocRecord, Snapshot, Units, merge_abbreviations
from citeqa.types import Unit

from .pg_db import DIM, Pool, masked, vec_literal

_ROW_CACHE = 8192  # decoded units with their vectors (~6 KB each)
# BM25 pruning, as the file backend's (citeqa.bm25): above this many postings the rare terms pick candidates
_FULL_SCORING_POSTINGS = 200_000
_CANDIDATE_POSTINGS = 20_000  # postings of the rare terms that pick them (at least the rarest term's)
_CANDIDATES = 2_000  # best units by the rare terms that get the common terms' weights


@dataclass(frozen=True)
class Row:
    unit: Unit
    vector: np.ndarray  # float32 of the stored float16 values
    sentences: np.ndarray | None  # float32, one row per sentence of a multi-sentence chunk
    terms: np.ndarray  # BM25 term ids


class TermIds:
    """term -> id in ``cq_terms``; ids never change, so hits are kept for the pool's lifetime."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.ids: dict[str, int] = {}
        self.lock = threading.Lock()

    def lookup(self, terms: Sequence[str], absent: set[str]) -> dict[str, int]:
        """Ids of ``terms``; terms found nowhere are added to ``absent`` (a generation's negative cache)."""
        missing = [t for t in dict.fromkeys(terms) if t not in self.ids and t not in absent]
        if missing:
            with self.pool.connection() as conn:
                rows = conn.execute("SELECT term, id FROM cq_terms WHERE term = ANY(%s)", (missing,)).fetchall()
            with self.lock:
                self.ids.update({t: int(i) for t, i in rows})
            absent.update(t for t in missing if t not in self.ids)
        return {t: self.ids[t] for t in terms if t in self.ids}


_term_ids: dict[int, TermIds] = {}


def term_ids_for(pool: Pool) -> TermIds:
    t = _term_ids.get(id(pool))
    if t is None:
        t = _term_ids[id(pool)] = TermIds(pool)
    return t


class Generation:
    """The served generation: its documents in order and caches over its rows."""

    def __init__(self, pool: Pool, settings: Settings, gen_id: int, doc_ids: list[int], bases: np.ndarray,
                 n_units: int, sum_dl: float) -> None:
        self.pool, self.settings, self.id = pool, settings, gen_id
        self.doc_ids = doc_ids
        self.doc_pos = {d: i for i, d in enumerate(doc_ids)}
        self.bases = bases  # int64, one per document plus the total
        self.n_units = n_units
        self.avgdl = sum_dl / n_units if n_units and sum_dl > 0 else 1.0
        self.terms = term_ids_for(pool)
        self.absent: set[str] = set()
        self._df: dict[int, int] = {}
        self._rows: OrderedDict[int, Row] = OrderedDict()
        self._texts: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()
        self.sent_index: tuple[np.ndarray, np.ndarray] | None = None

    def locate(self, uid: int) -> tuple[int, int]:
        if not 0 <= uid < self.n_units:
            raise IndexError(uid)
        pos = int(np.searchsorted(self.bases, uid, side="right") - 1)
        return self.doc_ids[pos], uid - int(self.bases[pos])

    def uid(self, doc_id: int, ord_: int) -> int | None:
        pos = self.doc_pos.get(doc_id)
        return None if pos is None else int(self.bases[pos]) + ord_

    # --- units --------------------------------------------------------------------------------------
    def rows(self, uids: Sequence[int]) -> list[Row]:
        """These units' rows, fetched in one query for those not cached."""
        with self._lock:
            missing = [u for u in dict.fromkeys(uids) if u not in self._rows]
        if missing:
            where = [self.locate(u) for u in missing]
            with self.pool.connection() as conn, conn.cursor(binary=True) as cur:
                cur.execute(
                    "SELECT u.doc_id, u.ord, u.record, u.embedding, u.sent_vecs, u.terms FROM cq_units u "
                    "JOIN unnest(%s::bigint[], %s::int[]) AS k(d, o) ON u.doc_id = k.d AND u.ord = k.o",
                    ([d for d, _ in where], [o for _, o in where]))
                fetched = cur.fetchall()
            with self._lock:
                for doc_id, ord_, rec, vec, sv, terms in fetched:
                    uid = int(self.bases[self.doc_pos[doc_id]]) + ord_
                    sents = np.frombuffer(bytes(sv), np.float16).reshape(-1, DIM).astype(np.float32) if sv else None
                    self._rows[uid] = Row(store.unit_from_json(rec, uid), vec, sents, np.asarray(terms, np.int64))
                while len(self._rows) > _ROW_CACHE:
                    self._rows.popitem(last=False)
        out = []
        for u in uids:
            with self._lock:
                r = self._rows.get(u)
            if r is None:  # evicted by other threads meanwhile
                r = self.rows([u])[0] if u not in missing else None
            if r is None:
                raise IndexDamaged(masked(self.pool.url), f"unit {u} of generation {self.id} is missing")
            out.append(r)
        return out

    def row(self, uid: int) -> Row:
        return self.rows([uid])[0]

    def text(self, doc_id: int) -> str:
        with self._lock:
            hit = self._texts.get(doc_id)
        if hit is None:
            with self.pool.connection() as conn:
                res = conn.execute("SELECT body FROM cq_documents WHERE id = %s", (doc_id,)).fetchone()
            if res is None:
                raise IndexDamaged(masked(self.pool.url), f"document row {doc_id} is missing")
            hit = str(res[0])
            with self._lock:
                self._texts[doc_id] = hit
                while len(self._texts) > 64:
                    self._texts.popitem(last=False)
        return hit

    # --- BM25 ---------------------------------------------------------------------------------------
    def df(self, tids: Sequence[int]) -> dict[int, int]:
        missing = [t for t in set(tids) if t not in self._df]
        if missing:
            with self.pool.connection() as conn:
                rows = conn.execute(
                    "SELECT term_id, sum(df) FROM cq_doc_terms WHERE term_id = ANY(%s) AND doc_id = ANY(%s) "
                    "GROUP BY term_id", (missing, self.doc_ids)).fetchall()
            got = {int(t): int(n) for t, n in rows}
            with self._lock:
                for t in missing:
                    self._df[t] = got.get(t, 0)
        return {t: self._df[t] for t in tids}

    def bm25(self, term_ids: Sequence[int], k: int) -> list[tuple[int, float]]:
        """Top-k units by BM25 (Lucene's formula, as the file backend; a repeated term counts again).

        Exact while the question's terms hold at most ``_FULL_SCORING_POSTINGS`` postings (every library
        of up to ~100k units); above that the rarest terms (``_CANDIDATE_POSTINGS`` postings, at least the
        rarest term's) pick the ``_CANDIDATES`` best units and only those get the common terms' weights,
        as the file backend's pruning does: scanning every posting of words most units hold took seconds
        at 250k units (benchmarks/pg_scale.py)."""
        dfs = self.df(list(term_ids))
        mult = Counter(t for t in term_ids if dfs.get(t, 0) > 0)
        if not mult or k <= 0:
            return []
        n = self.n_units
        by_rarity = sorted(mult, key=lambda t: (dfs[t], t))
        # idf in float32 exactly as the file backend computes it
        idf = {t: float(np.float32(np.log(1 + (n - dfs[t] + 0.5) / (dfs[t] + 0.5)))) for t in by_rarity}
        w = {t: idf[t] * mult[t] for t in by_rarity}
        rare: list[int] = []
        seen = 0
        if sum(dfs[t] for t in by_rarity) > _FULL_SCORING_POSTINGS:
            for t in by_rarity:
                if rare and seen + dfs[t] > _CANDIDATE_POSTINGS:
                    break
                rare.append(t)
                seen += dfs[t]
        common = by_rarity[len(rare):] if rare else []
        weight = "q.w * p.tf / (%(k1)s * (%(b1)s + %(b)s * p.dl / %(avgdl)s) + p.tf)"
        args: dict[str, object] = {"k1": K1, "b1": 1 - B, "b": B, "avgdl": self.avgdl, "gen": self.id, "lim": k + 16}
        if not common:  # every posting of every term
            args |= {"ids": by_rarity, "ws": [w[t] for t in by_rarity]}
            sql = ("SELECT p.doc_id, p.ord, sum(" + weight + ") AS score "
                   "FROM unnest(%(ids)s::int[], %(ws)s::float8[]) AS q(term_id, w) "
                   "JOIN cq_postings p ON p.term_id = q.term_id "
                   "JOIN cq_generation_docs g ON g.doc_id = p.doc_id AND g.gen_id = %(gen)s "
                   "GROUP BY p.doc_id, p.ord ORDER BY score DESC LIMIT %(lim)s")
        else:
            args |= {"rids": rare, "rws": [w[t] for t in rare], "cids": common, "cws": [w[t] for t in common],
                     "cands": max(_CANDIDATES, k + 16)}
            sql = ("WITH r AS (SELECT p.doc_id, p.ord, sum(" + weight + ") AS s "
                   "FROM unnest(%(rids)s::int[], %(rws)s::float8[]) AS q(term_id, w) "
                   "JOIN cq_postings p ON p.term_id = q.term_id "
                   "JOIN cq_generation_docs g ON g.doc_id = p.doc_id AND g.gen_id = %(gen)s "
                   "GROUP BY p.doc_id, p.ord ORDER BY s DESC LIMIT %(cands)s) "
                   "SELECT r.doc_id, r.ord, r.s + coalesce(sum(" + weight + "), 0) AS score "
                   "FROM r CROSS JOIN unnest(%(cids)s::int[], %(cws)s::float8[]) AS q(term_id, w) "
                   "LEFT JOIN cq_postings p ON p.term_id = q.term_id AND p.doc_id = r.doc_id AND p.ord = r.ord "
                   "GROUP BY r.doc_id, r.ord, r.s ORDER BY score DESC LIMIT %(lim)s")
        with self.pool.connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        hits = [(u, float(s)) for d, o, s in rows if (u := self.uid(d, o)) is not None and s > 0]
        hits.sort(key=lambda x: (-np.float32(x[1]), x[0]))  # ties by unit id, as the file backend
        return hits[:k]

    # --- dense --------------------------------------------------------------------------------------
    def dense(self, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Exact inner-product search up to ``ann_threshold`` units (as the file backend), pgvector's HNSW
        index above it (post-filtered to this generation)."""
        lit = vec_literal(qvec)
        with self.pool.connection() as conn, conn.transaction():
            if self.n_units <= self.settings.ann_threshold:
                conn.execute("SET LOCAL enable_indexscan = off")
                rows = conn.execute(
                    "SELECT doc_id, ord, (embedding <#> %s::vector) AS d FROM cq_units WHERE doc_id = ANY(%s) "
                    "ORDER BY d LIMIT %s", (lit, self.doc_ids, k + 16)).fetchall()
            else:
                conn.execute(f"SET LOCAL hnsw.ef_search = {min(1000, max(k, self.settings.hnsw_ef_search))}")
                rows = conn.execute(
                    "SELECT doc_id, ord, (embedding <#> %s::vector) AS d FROM cq_units "
                    "ORDER BY embedding <#> %s::vector LIMIT %s", (lit, lit, 2 * k + 16)).fetchall()
        hits = [(u, -float(d)) for doc, o, d in rows if (u := self.uid(doc, o)) is not None]
        hits.sort(key=lambda x: (-x[1], x[0]))
        return hits[:k]

    def sentences(self) -> tuple[np.ndarray, np.ndarray]:
        """All sentence vectors of the generation with their unit ids (loaded once; the sentence list is
        off by default and meant for small libraries)."""
        if self.sent_index is None:
            with self.pool.connection() as conn, conn.cursor(binary=True) as cur:
                cur.execute("SELECT doc_id, ord, sent_vecs FROM cq_units WHERE doc_id = ANY(%s) "
                            "AND length(sent_vecs) > 0", (self.doc_ids,))
                parts, owners = [], []
                for doc_id, ord_, sv in cur:
                    m = np.frombuffer(bytes(sv), np.float16).reshape(-1, DIM)
                    parts.append(m)
                    owners.append(np.full(len(m), int(self.bases[self.doc_pos[doc_id]]) + ord_, np.int64))
            self.sent_index = (np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, DIM), np.float32),
                               np.concatenate(owners) if owners else np.zeros(0, np.int64))
        return self.sent_index


class PgUnits(Units):
    """``index.units`` over the database: ``units[i]`` and slices fetch rows in one query."""

    def __init__(self, gen: Generation) -> None:
        self._records = None
        self._gen = gen
        self._get = lru_cache(maxsize=1024)(self._decode)  # rows are cached by the generation too

    def _decode(self, i: int) -> Unit:
        return self._gen.row(i).unit

    def __len__(self) -> int:
        return self._gen.n_units

    @overload
    def __getitem__(self, i: int) -> Unit: ...
    @overload
    def __getitem__(self, i: slice) -> list[Unit]: ...
    def __getitem__(self, i: int | slice) -> Unit | list[Unit]:
        if isinstance(i, slice):
            return [r.unit for r in self._gen.rows(range(*i.indices(len(self))))]
        return super().__getitem__(i)

    def __iter__(self) -> Iterator[Unit]:
        for a in range(0, len(self), 512):
            yield from (r.unit for r in self._gen.rows(range(a, min(a + 512, len(self)))))


class PgVocab(Vocab):
    def __init__(self, gen: Generation) -> None:
        self._gen = gen
        self.terms, self.ids = [], {}

    def get(self, term: str) -> int | None:
        return self._gen.terms.lookup([term], self._gen.absent).get(term)

    def __len__(self) -> int:
        return 0


class PgBM25(BM25):
    """The BM25 reads the answerer and retriever make (``df``, ``unit_terms``, ``search``), in SQL."""

    def __init__(self, gen: Generation) -> None:
        self._gen = gen
        self.n_vocab = 2**31 - 1
        self._champion_cache = {}

    @property
    def n_units(self) -> int:
        return self._gen.n_units

    def df(self, tid: int) -> int:
        return self._gen.df([tid])[tid]

    def unit_terms(self, uid: int) -> np.ndarray:
        return self._gen.row(uid).terms

    def search(self, term_ids: Sequence[int], k: int) -> list[tuple[int, float]]:
        return self._gen.bm25(term_ids, k)


def current_generation(pool: Pool, shape: str) -> int | None:
    with pool.connection() as conn:
        row = conn.execute("SELECT gen_id FROM cq_current WHERE shape = %s", (shape,)).fetchone()
    return None if row is None else int(row[0])


def load_generation(pool: Pool, settings: Settings, gen_id: int | None = None) -> Snapshot:
    """The generation served now (or ``gen_id``) as a ``Snapshot`` whose parts read the database."""
    shape = settings.fingerprint()
    gen_id = gen_id if gen_id is not None else current_generation(pool, shape)
    if gen_id is None:
        raise IndexMissing(f"{masked(pool.url)} (settings {shape})")
    with pool.connection() as conn:
        head = conn.execute("SELECT n_units, sum_dl, aliases, manifest FROM cq_generations WHERE id = %s",
                            (gen_id,)).fetchone()
        rows = conn.execute(
            "SELECT g.doc_id, g.base, d.meta, d.record, d.content_hash, d.n_units FROM cq_generation_docs g "
            "JOIN cq_documents d ON d.id = g.doc_id WHERE g.gen_id = %s ORDER BY g.pos", (gen_id,)).fetchall()
    if head is None:
        raise IndexMissing(f"{masked(pool.url)} (generation {gen_id})")
    n_units, sum_dl, aliases, manifest = head
    if manifest.get("shape") != settings.index_shape():
        raise IndexDamaged(masked(pool.url), "built with different model or chunking settings")
    docs: dict[str, DocRecord] = {}
    counts = []
    for _doc_id, _base, meta, rec, h, n in rows:
        m = store.meta_from_json(meta)
        docs[m.doc] = DocRecord(m, h, tuple(rec["sections"]), int(rec["tables"]), rec.get("source", ""),
                                int(rec.get("chars", 0)), tuple((a, b) for a, b in rec.get("abbreviations", [])))
        counts.append(int(n))
    bases = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(counts, out=bases[1:])
    if int(bases[-1]) != int(n_units) or any(int(r[1]) != int(b) for r, b in zip(rows, bases, strict=False)):
        raise IndexDamaged(masked(pool.url), f"generation {gen_id}: document unit counts disagree")
    gen = Generation(pool, settings, gen_id, [int(r[0]) for r in rows], bases, int(n_units), float(sum_dl))
    unit_doc = np.repeat(np.arange(len(rows), dtype=np.int32), counts)
    empty = np.zeros((0, DIM), np.float16)
    return Snapshot(docs, PgUnits(gen), unit_doc, None, empty, empty, np.zeros(1, np.int64), None, PgBM25(gen),
                    PgVocab(gen), {k: set(v) for k, v in aliases.items()}, None,
                    derived={"abbrev": merge_abbreviations(list(docs.values())), "pg": gen,
                             "doc_ids": {name: gen.doc_ids[i] for i, name in enumerate(docs)},
                             "manifest": manifest})


def idf_of(n: int, df: int) -> float:
    return math.log((n + 1) / (df + 0.5))


__all__ = ["Generation", "PgBM25", "PgUnits", "PgVocab", "Row", "current_generation", "load_generation"]

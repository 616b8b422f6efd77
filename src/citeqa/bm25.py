"""BM25 over retrieval units: postings read from disk, incremental tokenisation, exact top-k with pruning.

Scores follow Lucene's BM25 (k1=1.5, b=0.75), the variant bm25s uses. Two layouts are kept:

* rows (unit → term ids and counts): copied as-is for unchanged documents, so a change re-tokenises only
  the new documents; the reranker also reads a unit's terms from it instead of re-tokenising its text;
* postings (term → units and precomputed weights), rebuilt from the rows with NumPy on every change.

Terms are scored rarest first; when the rare terms' postings already give k units whose scores beat
anything the common terms alone could reach (their summed maximum weights), the common terms' long
posting lists are only read for those candidates and the result is still exact (MaxScore pruning,
Turtle & Flood 1995). Queries made only of words most units use (a million-unit library about one drug)
would need their whole postings read; above ``_EXACT_POSTINGS`` the candidates then come from the rarer
terms alone, a bounded approximation like Lucene's minimum-should-match.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from citeqa import store

K1, B = 1.5, 0.75
# Below this many postings a query is scored in full; above it the rare terms pick the candidates.
_FULL_SCORING_POSTINGS = 200_000
# Postings of the rare terms that pick candidates (at least the rarest term's, however many).
_CANDIDATE_POSTINGS = 20_000
# Up to this many postings, a query the pruning cannot prove exact is scored in full (about 10 ms per
# million postings); above it, the pruned result stands. Reached only by big corpora of one topic.
_EXACT_POSTINGS = 1_000_000
# Highest-weighted units of each common term that always join the candidates.
_CHAMPIONS = 1000


class Vocab:
    """Term ↔ id. Append-only between full rebuilds so stored rows stay valid."""

    def __init__(self, terms: Sequence[str] = ()) -> None:
        self.terms: list[str] = list(terms)
        self.ids: dict[str, int] = {t: i for i, t in enumerate(self.terms)}

    def __len__(self) -> int:
        return len(self.terms)

    def get(self, term: str) -> int | None:
        return self.ids.get(term)

    def add(self, term: str) -> int:
        i = self.ids.get(term)
        if i is None:
            i = self.ids[term] = len(self.terms)
            self.terms.append(term)
        return i


@dataclass(frozen=True)
class Rows:
    """Per-unit term ids and counts in CSR form (``indptr`` has one entry per unit plus one)."""

    indptr: np.ndarray  # int64
    terms: np.ndarray  # int32
    tf: np.ndarray  # uint16

    @staticmethod
    def from_token_lists(token_lists: Iterable[list[str]], vocab: Vocab) -> Rows:
        indptr = [0]
        terms: list[int] = []
        tf: list[int] = []
        for toks in token_lists:
            for t, c in Counter(toks).items():
                terms.append(vocab.add(t))
                tf.append(min(c, 65535))
            indptr.append(len(terms))
        return Rows(np.asarray(indptr, np.int64), np.asarray(terms, np.int32), np.asarray(tf, np.uint16))

    @staticmethod
    def concat(parts: Sequence[Rows]) -> Rows:
        if not parts:
            return Rows(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.uint16))
        ptrs = [np.zeros(1, np.int64)]
        offset = 0
        for p in parts:
            ptrs.append(np.asarray(p.indptr[1:], np.int64) - int(p.indptr[0]) + offset)
            offset += int(p.indptr[-1] - p.indptr[0])
        return Rows(np.concatenate(ptrs), np.concatenate([np.asarray(p.terms) for p in parts]).astype(np.int32),
                    np.concatenate([np.asarray(p.tf) for p in parts]).astype(np.uint16))

    def slice(self, lo: int, hi: int) -> Rows:
        a, b = int(self.indptr[lo]), int(self.indptr[hi])
        return Rows(np.asarray(self.indptr[lo : hi + 1]) - a, self.terms[a:b], self.tf[a:b])

    @property
    def n(self) -> int:
        return len(self.indptr) - 1


class BM25:
    def __init__(self, rows: Rows, n_vocab: int, post_ptr: np.ndarray, post_units: np.ndarray,
                 post_w: np.ndarray, max_w: np.ndarray) -> None:
        self.rows = rows
        self.n_vocab = n_vocab
        self.post_ptr = post_ptr
        self.post_units = post_units
        self.post_w = post_w
        self.max_w = max_w  # largest weight in each term's postings: the MaxScore bound
        self._champion_cache: dict[int, np.ndarray] = {}

    @property
    def n_units(self) -> int:
        return self.rows.n

    @classmethod
    def build(cls, rows: Rows, n_vocab: int) -> BM25:
        n = rows.n
        counts = np.diff(rows.indptr)
        unit_of = np.repeat(np.arange(n, dtype=np.int32), counts)
        tf = rows.tf.astype(np.float32)
        dl = np.add.reduceat(tf, rows.indptr[:-1]) if len(tf) else np.zeros(n, np.float32)
        dl[counts == 0] = 0  # reduceat repeats the next value for empty rows
        avgdl = float(dl.mean()) if n and dl.mean() > 0 else 1.0
        df = np.bincount(rows.terms, minlength=n_vocab).astype(np.float64)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        w = idf[rows.terms] * tf / (K1 * ((1 - B) + B * dl[unit_of] / avgdl) + tf)
        order = np.argsort(rows.terms, kind="stable")  # stable: units ascend within each term
        post_units = unit_of[order]
        post_w = w[order].astype(np.float32)
        post_ptr = np.zeros(n_vocab + 1, np.int64)
        np.cumsum(df.astype(np.int64), out=post_ptr[1:])
        max_w = np.zeros(n_vocab, np.float32)
        nz = np.flatnonzero(df)
        if len(post_w):
            max_w[nz] = np.maximum.reduceat(post_w, post_ptr[nz])
        return cls(rows, n_vocab, post_ptr, post_units, post_w, max_w)

    # --- persistence --------------------------------------------------------------------------------
    _FILES = ("rows_indptr", "rows_terms", "rows_tf", "post_ptr", "post_units", "post_w", "max_w")

    def save(self, d: Path) -> None:
        d.mkdir(parents=True, exist_ok=True)
        arrays = (self.rows.indptr, self.rows.terms, self.rows.tf, self.post_ptr, self.post_units, self.post_w,
                  self.max_w)
        for name, arr in zip(self._FILES, arrays, strict=True):
            np.save(d / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
        (d / "meta.json").write_text(json.dumps({"n_vocab": self.n_vocab, "n_units": self.n_units}))

    @classmethod
    def load(cls, d: Path) -> BM25:
        def f(name: str) -> Path:
            return d / f"{name}.npy"

        a: dict[str, Any] = {
            # Per-unit rows stay on disk, read with pread: a question reads ~100 of them.
            **{n: store.ArrayFile(f(n)) for n in ("rows_terms", "rows_tf")},
            # Postings are read in long runs: mapped, so nothing is copied.
            **{n: np.load(f(n), mmap_mode="r", allow_pickle=False) for n in ("post_units", "post_w")},
            # One entry per unit or term: kept in memory.
            **{n: store.load_array(f(n)) for n in ("rows_indptr", "post_ptr", "max_w")},
        }
        meta = json.loads((d / "meta.json").read_text())
        bm = cls(Rows(a["rows_indptr"], a["rows_terms"], a["rows_tf"]), int(meta["n_vocab"]), a["post_ptr"],
                 a["post_units"], a["post_w"], a["max_w"])
        if bm.n_units != int(meta["n_units"]) or len(bm.post_ptr) != bm.n_vocab + 1:
            raise ValueError("BM25 files disagree with their metadata")
        return bm

    # --- reading ------------------------------------------------------------------------------------
    def df(self, tid: int) -> int:
        if tid >= self.n_vocab:
            return 0
        return int(self.post_ptr[tid + 1] - self.post_ptr[tid])

    def unit_terms(self, uid: int) -> np.ndarray:
        return np.asarray(self.rows.terms[self.rows.indptr[uid] : self.rows.indptr[uid + 1]])

    def search(self, term_ids: Sequence[int], k: int) -> list[tuple[int, float]]:
        """Top-k units for a query given as term ids (a repeated term counts again, as in bm25s).

        Exact when the query's postings are few (every small corpus) or when pruning proves it; past
        ``_EXACT_POSTINGS`` a unit must contain one of the rarer terms to be found (see ``_pruned``).
        """
        mult = Counter(t for t in term_ids if 0 <= t < self.n_vocab and self.df(t) > 0)
        if not mult or k <= 0:
            return []
        by_rarity = sorted(mult, key=self.df)
        total = sum(self.df(t) for t in by_rarity)
        if total > _FULL_SCORING_POSTINGS:
            hits, exact = self._pruned(by_rarity, mult, k)
            if exact or total > _EXACT_POSTINGS:
                return hits
        scores = np.zeros(self.n_units, np.float32)
        for t in by_rarity:
            a, b = self.post_ptr[t], self.post_ptr[t + 1]
            scores[self.post_units[a:b]] += self.post_w[a:b] * mult[t]  # units are unique within a term
        nz = np.flatnonzero(scores)
        return _top(nz, scores[nz], k)

    def _pruned(self, by_rarity: list[int], mult: Counter[int], k: int) -> tuple[list[tuple[int, float]], bool]:
        """Score the units of the rarest terms, adding the common terms' weights for those units only.

        Exact (second value True) when the k-th score beats anything the common terms alone could sum to
        (MaxScore); otherwise units holding only common words are missed. Reading a common term's
        postings costs as much as scoring them, so the units are looked up by binary search when they
        are few.
        """
        rare: list[int] = []
        seen = 0
        for t in by_rarity:
            if rare and seen + self.df(t) > _CANDIDATE_POSTINGS:
                break
            rare.append(t)
            seen += self.df(t)
        common = by_rarity[len(rare):]
        bound = float(sum(self.max_w[t] * mult[t] for t in common))
        spans = [(self.post_ptr[t], self.post_ptr[t + 1]) for t in rare]
        units = np.concatenate([self.post_units[a:b] for a, b in spans])
        weights = np.concatenate([self.post_w[a:b] * mult[t] for t, (a, b) in zip(rare, spans, strict=True)])
        # A common term's best units join too, so a unit rich in common words is not lost.
        cands = np.unique(np.concatenate([units, *(self._champions(t) for t in common)]))
        cand_scores = np.bincount(np.searchsorted(cands, units), weights=weights,
                                  minlength=len(cands)).astype(np.float32)
        slot: np.ndarray | None = None
        for t in common:
            a, b = int(self.post_ptr[t]), int(self.post_ptr[t + 1])
            post = self.post_units[a:b]
            if len(cands) * 24 < b - a:  # few candidates: binary search the (ascending) postings
                pos = np.minimum(np.searchsorted(post, cands), b - a - 1)
                hit = post[pos] == cands
                cand_scores[hit] += self.post_w[a:b][pos[hit]] * mult[t]
                continue
            if slot is None:
                slot = np.full(self.n_units, -1, np.int32)  # unit -> candidate position
                slot[cands] = np.arange(len(cands), dtype=np.int32)
            where = slot[post]  # postings ascend, so this gather reads memory in order
            hit = where >= 0
            cand_scores[where[hit]] += self.post_w[a:b][hit] * mult[t]
        if len(cands) < k:
            return _top(cands, cand_scores, k), False
        kth = np.partition(cand_scores, len(cands) - k)[len(cands) - k]
        # Below the bound, a unit with only common terms might still beat the k-th candidate.
        return _top(cands, cand_scores, k), bool(kth >= bound)


    def _champions(self, tid: int) -> np.ndarray:
        """The ``_CHAMPIONS`` units where term ``tid`` weighs most ("champion lists", Manning et al. 2008,
        7.1.3), computed on first use and kept: a few KB per common term."""
        hit = self._champion_cache.get(tid)
        if hit is None:
            a, b = int(self.post_ptr[tid]), int(self.post_ptr[tid + 1])
            w = np.asarray(self.post_w[a:b])
            top = np.argpartition(-w, _CHAMPIONS - 1)[:_CHAMPIONS] if b - a > _CHAMPIONS else np.arange(b - a)
            hit = self._champion_cache[tid] = np.sort(np.asarray(self.post_units[a:b])[top])
        return hit


def _top(ids: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    if len(ids) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        ids, scores = ids[part], scores[part]
    order = np.lexsort((ids, -scores))  # ties broken by unit id, so results are stable
    return [(int(ids[i]), float(scores[i])) for i in order if scores[i] > 0]

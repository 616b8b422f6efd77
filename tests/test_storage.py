"""Scale-oriented storage: own BM25 (equal to bm25s, exact pruning), lazy units, FAISS growth and HNSW."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import bm25s
import numpy as np
import pytest

from citeqa import bm25 as bm25_module
from citeqa.config import Settings
from citeqa.index import Index
from citeqa.snapshot import bm25_tokens
from citeqa.textutil import index_terms
from conftest import SEEDS_DIR, HashEmbedder

QUERIES = [
    "grade 3 neutropenia", "median overall survival blinatumomab chemotherapy", "cytokine release syndrome",
    "minimal residual disease remission rate", "hematopoietic stem-cell transplantation after remission",
    "TOWER trial randomized 2:1", "event-free survival hazard ratio", "neurologic events of any grade",
]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index.build([SEEDS_DIR], Settings(index_dir=tmp_path_factory.mktemp("st") / "index"),
                       embedder=HashEmbedder())


def test_bm25_scores_equal_bm25s_on_the_seeds(seeds: Index) -> None:
    """Same Lucene BM25 as the bm25s library, on the same tokens."""
    abbr = seeds.abbreviations()
    ref = bm25s.BM25()
    ref.index([bm25_tokens(u, abbr) or ["∅"] for u in seeds.units], show_progress=False)
    for q in QUERIES:
        toks = [t for t in index_terms(q, parts=True) if t in ref.vocab_dict]
        ids, scores = ref.retrieve([toks], k=10, show_progress=False, n_threads=1)
        want = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
        got = seeds.search_bm25(q, 10)
        assert [round(s, 4) for _, s in got] == [round(s, 4) for _, s in want], q
        assert {i for i, _ in got} == {i for i, _ in want} or len(got) == 10


def test_bm25_pruning_is_exact(seeds: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    full = {q: seeds.search_bm25(q, 10) for q in QUERIES}
    monkeypatch.setattr(bm25_module, "_FULL_SCORING_POSTINGS", 3)  # every query takes the pruned path
    for q in QUERIES:
        got = seeds.search_bm25(q, 10)
        assert [i for i, _ in got] == [i for i, _ in full[q]], q
        assert [s for _, s in got] == pytest.approx([s for _, s in full[q]], abs=1e-5)


def _zipf_corpus(seed: int, terms: int, units: int, exponent: float, lengths: tuple[int, int]
                 ) -> tuple[np.random.Generator, np.ndarray, bm25_module.Vocab, bm25_module.BM25]:
    """A BM25 index over units of Zipf-distributed terms: a few very common words, a long rare tail."""
    rng = np.random.default_rng(seed)
    p = 1 / np.arange(1, terms + 1) ** exponent
    p /= p.sum()
    docs = [[f"t{x}" for x in rng.choice(terms, size=int(rng.integers(*lengths)), p=p)] for _ in range(units)]
    vocab = bm25_module.Vocab()
    return rng, p, vocab, bm25_module.BM25.build(bm25_module.Rows.from_token_lists(docs, vocab), len(vocab))


def test_pruned_search_equals_full_scoring_on_a_skewed_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    rng, p, vocab, bm = _zipf_corpus(seed=7, terms=800, units=5000, exponent=1.1, lengths=(3, 30))
    queries = [[vocab.ids[f"t{x}"] for x in rng.choice(800, size=int(rng.integers(1, 7)), p=p)
                if f"t{x}" in vocab.ids] for _ in range(200)]
    full = [bm.search(q, 20) for q in queries]
    monkeypatch.setattr(bm25_module, "_FULL_SCORING_POSTINGS", 500)
    for q, want in zip(queries, full, strict=True):
        got = bm.search(q, 20)
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
        # Summation order differs, so near-ties (within float32 rounding) may swap places.
        if got:
            floor = got[-1][1] + 1e-4
            assert {i for i, s in got if s > floor} == {i for i, s in want if s > floor}


def test_past_the_exact_budget_candidates_come_from_the_rarer_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    rng, p, vocab, bm = _zipf_corpus(seed=3, terms=400, units=4000, exponent=0.8, lengths=(5, 30))
    monkeypatch.setattr(bm25_module, "_FULL_SCORING_POSTINGS", 100)
    monkeypatch.setattr(bm25_module, "_CANDIDATE_POSTINGS", 100)
    monkeypatch.setattr(bm25_module, "_EXACT_POSTINGS", 100)
    exact_seen = approx_seen = 0
    for _ in range(100):
        q = sorted({vocab.ids[f"t{x}"] for x in rng.choice(400, size=4, p=p) if f"t{x}" in vocab.ids}, key=bm.df)
        got = bm.search(q, 10)
        _, proven = bm._pruned(q, Counter(q), 10)
        monkeypatch.setattr(bm25_module, "_FULL_SCORING_POSTINGS", 10**9)
        full = bm.search(q, 10)
        monkeypatch.setattr(bm25_module, "_FULL_SCORING_POSTINGS", 100)
        if proven:
            exact_seen += 1
            assert [s for _, s in got] == pytest.approx([s for _, s in full], abs=1e-5)
        else:
            approx_seen += 1
            # Every unit found holds the rarest term or is among a common term's best-weighted units,
            # and carries its true BM25 score.
            rare, seen = [q[0]], bm.df(q[0])
            for t in q[1:]:
                if seen + bm.df(t) > 100:
                    break
                rare.append(t)
                seen += bm.df(t)
            champions = set().union(*(bm._champions(t).tolist() for t in q[len(rare):]))
            truth = np.zeros(bm.n_units)
            for t in q:
                a, b = bm.post_ptr[t], bm.post_ptr[t + 1]
                truth[bm.post_units[a:b]] += bm.post_w[a:b]
            for uid, score in got:
                assert set(rare) & set(bm.unit_terms(uid).tolist()) or uid in champions
                assert score == pytest.approx(truth[uid], abs=1e-4)
    assert exact_seen and approx_seen


def test_unit_terms_come_from_the_stored_rows(seeds: Index) -> None:
    abbr = seeds.abbreviations()
    vocab = seeds.snap.vocab
    for u in list(seeds.units)[::17]:
        assert {vocab.terms[i] for i in seeds.unit_term_ids(u.id)} == set(bm25_tokens(u, abbr))


def test_units_decode_lazily_and_match_their_documents(seeds: Index) -> None:
    units = seeds.units
    assert units[-1] == units[len(units) - 1] and units[3:6] == [units[3], units[4], units[5]]
    for u in units[::23]:
        assert seeds.doc_of(u.id) == u.doc
        assert seeds.quote(u.doc, u.start, u.end) == seeds.doc_text(u.doc)[u.start : u.end]
    with pytest.raises(IndexError):
        units[len(units)]


def test_adding_a_file_extends_the_vector_index(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS_DIR, docs)
    extra = docs / "zz_new.txt"
    extra.unlink(missing_ok=True)
    settings = Settings(index_dir=tmp_path / "index")
    idx = Index.build([docs], settings, embedder=HashEmbedder())
    n_before = len(idx.units)
    extra.write_text("Zanzibarite consolidation was given to 12 patients. All of them remained in remission.\n",
                     encoding="utf-8")
    report = idx.add_files([extra])
    assert report.added == ["zz_new.txt"] and len(idx.units) > n_before
    assert idx.snap.faiss.ntotal == len(idx.units)
    # Same results as an index built from scratch over the same files.
    fresh = Index.build([docs], Settings(index_dir=tmp_path / "fresh"), embedder=HashEmbedder())
    q = HashEmbedder().encode(["zanzibarite consolidation remission"])[0]
    assert idx.search_dense(q, 10) == fresh.search_dense(q, 10)
    assert idx.search_bm25("zanzibarite consolidation", 5) == fresh.search_bm25("zanzibarite consolidation", 5)
    assert idx.units[idx.search_bm25("zanzibarite", 1)[0][0]].doc == "zz_new.txt"


def test_above_the_threshold_the_index_is_hnsw_with_8_bit_vectors(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index", ann_threshold=50, hnsw_ef_search=128)
    idx = Index.build([SEEDS_DIR], settings, embedder=HashEmbedder())
    fi = idx.snap.faiss
    assert type(fi).__name__ == "IndexHNSWSQ" and fi.hnsw.efSearch == 128
    loaded = Index.load(settings.model_copy(update={"hnsw_ef_search": 200}), embedder=HashEmbedder())
    assert loaded.snap.faiss.hnsw.efSearch == 200  # a runtime setting, applied at load
    vecs = np.asarray(idx.snap.vectors, np.float32)
    hits = 0
    for i in range(0, len(vecs), 10):
        exact = set(np.argsort(-(vecs @ vecs[i]))[:5].tolist())
        hits += len(exact & {u for u, _ in loaded.search_dense(vecs[i], 5)})
    assert hits / (5 * len(range(0, len(vecs), 10))) > 0.9


def test_sentence_search_is_built_on_first_use(seeds: Index) -> None:
    q = HashEmbedder().encode(["blinatumomab overall survival"])[0]
    assert "sent_faiss" not in seeds.snap.derived or seeds.snap.derived["sent_faiss"] is not None
    hits = seeds.search_sentences(q, 5)
    assert hits and all(seeds.sentence_vectors(u) is not None for u, _ in hits)
    assert seeds.snap.derived["sent_faiss"].ntotal == len(seeds.snap.sent_vectors)

"""Scale: FAISS + BM25 build time, disk, RAM and query latency on synthetic corpora of 10k / 100k / 1M units.

Corpus (synthetic, derived from the seeds):
  * unit texts recombine sentences of the seed index (1-4 seed sentences per prose chunk, or a seed table
    row) with every number replaced by a random number of the same shape, grouped into documents of
    ``--units-per-doc`` units; real ``Unit`` / ``DocRecord`` objects are built, as the index holds them;
  * vectors: embedding 1M texts with MiniLM on 2 cores would take hours, so only ``--real`` texts
    (the "base" units) are embedded for real (cached in ``--cache-dir``). Every other unit is a number
    variant of a base unit ``a`` and gets the vector ``normalise(v_a + b * v_c + sigma * g)``: ``v_c`` a
    random other base vector, ``b ~ U(0, 0.5)``, ``g`` Gaussian; ``sigma`` is calibrated so that the noise
    moves a vector as much as re-drawing the numbers of its text moves the real embedding. The output says
    so; recall figures on perturbed vectors are indicative, not a property of real corpora.

Per size, built exactly as the index builds them:
  * FAISS via ``citeqa.index._faiss_index(vectors, settings)`` (exact IndexFlatIP up to
    ``settings.ann_threshold`` units, HNSW above it) and BM25 via ``citeqa.index._bm25_index(units, abbrevs)``
    (``index_terms`` tokens of ``embed_text`` + abbreviation long forms); build seconds for each;
  * disk: ``faiss.write_index`` + ``bm25.save`` into a temp dir (du), plus vectors.npy (same bytes as the
    index writes) and units.jsonl (estimated from a sample);
  * RAM: VmRSS increase over the build (after freeing temporaries) and the peak during it, per structure;
    the vectors array and the unit objects are reported separately (the index keeps both in memory);
  * query latency p50/p95 over ~200 queries (the eval questions + seed-sentence queries, embedded for real),
    through ``Index.search_dense`` (k=80, as the retriever asks), ``Index.search_bm25`` (k=40) and the full
    ``HybridRetriever.passages`` (fusion + rerank + diversity; query embedding excluded and timed apart);
  * for HNSW, recall@10 against exact inner-product search on the same vectors, over an efSearch sweep.

Not included: the index's second FAISS index over the sentences of multi-sentence chunks (about as many
vectors again; the synthetic index has none, so the hybrid figure lacks one dense search).

    .venv/bin/python benchmarks/scale.py                            # 10k and 100k units
    .venv/bin/python benchmarks/scale.py --sizes 10000,100000,1000000 --json runs/scale.json
    .venv/bin/python benchmarks/scale.py --sizes 1000000 --hnsw-m 32 --ef-sweep 32,64,128,256
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from citeqa import store  # noqa: E402
from citeqa.abbrev import expand  # noqa: E402
from citeqa.config import Settings  # noqa: E402
from citeqa.errors import CiteqaError  # noqa: E402
from citeqa.index import DocRecord, Index, _bm25_index, _faiss_index, _Snapshot  # noqa: E402
from citeqa.retrieve import HybridRetriever  # noqa: E402
from citeqa.textutil import index_terms  # noqa: E402
from citeqa.types import DocMeta, Sentence, Unit  # noqa: E402

QUESTIONS = ROOT / "evals" / "seeds_questions.jsonl"
_NUM = re.compile(r"\d+(?:\.\d+)?")


# --- memory helpers -----------------------------------------------------------------------------------
def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # MiB
    return float("nan")


def rss() -> float:
    return _status("VmRSS")


def peak() -> float:
    return _status("VmHWM")


def reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back, so RSS deltas mean retained memory


@contextlib.contextmanager
def thread_limit(threads: str) -> Iterator[None]:
    """Run with ``threads`` FAISS/torch threads ("default": leave them as the product does)."""
    if threads == "default":
        yield
        return
    import faiss
    import torch

    old_f, old_t = faiss.omp_get_max_threads(), torch.get_num_threads()
    faiss.omp_set_num_threads(int(threads))
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(old_f)
        torch.set_num_threads(old_t)


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def loadavg() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 1024:,.0f} KB"


# --- synthetic corpus -----------------------------------------------------------------------------------
def vary(text: str, rng: random.Random) -> str:
    """Replace every number by a random one of the same shape (digit count, decimals)."""

    def sub(m: re.Match[str]) -> str:
        s = m.group(0)
        whole, _, frac = s.partition(".")
        lo = 10 ** (len(whole) - 1) if len(whole) > 1 else 0
        w = str(rng.randint(lo, 10 ** len(whole) - 1))
        return f"{w}.{''.join(rng.choice('0123456789') for _ in frac)}" if frac else w

    return _NUM.sub(sub, text)


class Corpus:
    """Templates taken from the seed index: prose sentences (with sections) and table rows."""

    def __init__(self, seed: Index) -> None:
        self.sentences: list[tuple[str, str]] = []  # (section, sentence text)
        self.rows: list[Unit] = []
        for u in seed.units:
            if u.kind == "row":
                self.rows.append(u)
            else:
                self.sentences.extend((u.section, s.text) for s in u.sentences)

    def make(self, rng: random.Random, base: Unit | None = None) -> tuple[str, str, str, list[str]]:
        """(kind, section, table, sentence texts) of a new unit; a variant of ``base`` when given."""
        if base is not None:
            return base.kind, base.section, base.table, [vary(s.text, rng) for s in base.sentences]
        if self.rows and rng.random() < 0.25:
            r = rng.choice(self.rows)
            return "row", r.section, r.table, [vary(r.text, rng)]
        n = rng.choice((1, 2, 2, 3, 3, 4))
        picks = [rng.choice(self.sentences) for _ in range(n)]
        return "chunk", picks[0][0], "", [vary(t, rng) for _, t in picks]


def variant_text(u: Unit, rng: random.Random) -> str:
    """The text the encoder would see for a number variant of ``u`` (section prefix kept)."""
    body = " ".join(vary(s.text, rng) for s in u.sentences)
    return f"{u.section}: {body}" if u.kind == "chunk" and u.section else body


def build_units(corpus: Corpus, n: int, n_base: int, per_doc: int, rng: random.Random,
                ) -> tuple[list[Unit], dict[str, DocRecord], list[int]]:
    """``n`` units; unit ``i >= n_base`` is a number variant of base unit ``parent[i]``."""
    units: list[Unit] = []
    parent: list[int] = []
    docs: dict[str, DocRecord] = {}
    parts: list[str] = []
    doc = ""
    for i in range(n):
        if i % per_doc == 0:
            if parts:
                docs[doc] = _doc_record(doc, parts)
            doc, parts, off = f"synth-{i // per_doc:06d}.txt", [], 0
        if i < n_base:
            kind, section, table, sents = corpus.make(rng)
            parent.append(i)
        else:
            p = rng.randrange(n_base)
            kind, section, table, sents = corpus.make(rng, units[p])
            parent.append(p)
        start = off
        sent_objs = []
        for s in sents:
            sent_objs.append(Sentence(off, off + len(s), s))
            off += len(s) + 1
        text = " ".join(sents)
        parts.append(text)
        units.append(Unit(i, doc, section, kind, start, start + len(text), text, tuple(sent_objs),
                          table=table))
    if parts:
        docs[doc] = _doc_record(doc, parts)
    return units, docs, parent


def _doc_record(doc: str, parts: list[str]) -> DocRecord:
    num = int(doc[6:12])
    meta = DocMeta(doc=doc, title=f"Synthetic report {num}", kind="trial article",
                   trial_id=f"NCT{10_000_000 + num}", aliases=f"SYN{num}")
    return DocRecord(meta, " ".join(parts), "", (), 0, doc)


def real_vectors(model_encode: Any, texts: list[str], cache: Path, key: str) -> np.ndarray:
    f = cache / f"vectors-{key}.npy"
    if f.is_file():
        v = np.load(f)
        if len(v) == len(texts):
            return v
    v = model_encode(texts)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(f, v)
    return v


def synth_vectors(base: np.ndarray, parent: list[int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    n, d = len(parent), base.shape[1]
    n_base = len(base)
    out = np.empty((n, d), np.float32)
    out[:n_base] = base
    step = 200_000
    par = np.asarray(parent)
    for a in range(n_base, n, step):
        b = min(n, a + step)
        other = base[rng.integers(0, n_base, b - a)]
        mix = rng.uniform(0, 0.5, (b - a, 1)).astype(np.float32)
        v = base[par[a:b]] + mix * other + rng.normal(0, sigma, (b - a, d)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[a:b] = v
    return out


# --- measurement ----------------------------------------------------------------------------------------
def timed(fn: Any, items: list[Any]) -> list[float]:
    out = []
    for it in items:
        t = time.perf_counter()
        fn(it)
        out.append((time.perf_counter() - t) * 1000)
    return out

def hnsw_alt(X: np.ndarray, settings: Settings, storage: str, ef_construction: int) -> Any:
    """An HNSW variant to compare with what the index builds: scalar-quantised storage and/or another
    efConstruction (index._faiss_index fixes IndexHNSWFlat with efConstruction 80)."""
    import faiss

    d, m, ip = X.shape[1], settings.hnsw_m, faiss.METRIC_INNER_PRODUCT
    if storage == "flat":
        index = faiss.IndexHNSWFlat(d, m, ip)
    else:
        qtype = faiss.ScalarQuantizer.QT_8bit if storage == "sq8" else faiss.ScalarQuantizer.QT_fp16
        index = faiss.IndexHNSWSQ(d, qtype, m, ip)
        index.train(X[:: max(1, len(X) // 100_000)])
    index.hnsw.efConstruction = ef_construction
    index.hnsw.efSearch = settings.hnsw_ef_search
    index.add(X)
    return index


def hnsw_recall(fi: Any, X: np.ndarray, Q: np.ndarray, ef_sweep: list[int], settings: Settings,
                res: dict[str, Any], tag: str) -> None:
    """recall@10 of the HNSW index against exact inner-product search, per efSearch."""
    import faiss

    if not isinstance(fi, faiss.IndexHNSW):
        return
    if "exact_D" not in res:
        t = time.perf_counter()
        D, gt = faiss.knn(Q, X, 10, faiss.METRIC_INNER_PRODUCT)
        res["exact_batch_s"] = time.perf_counter() - t
        res["exact_D"], res["exact_I"] = D, gt
        spread = D[:, 0] - D[:, 9]
        res["exact_spread_median"] = float(np.median(spread))
        print(f"    exact top-10 similarity spread (sim@1 - sim@10): median {np.median(spread):.3f}; "
              f"sim@10 median {np.median(D[:, 9]):.3f}")
    D, gt = res["exact_D"], res["exact_I"]
    sweep = []
    for ef in ef_sweep:
        fi.hnsw.efSearch = ef
        ids: list[np.ndarray] = []
        lat = timed(lambda i, ids=ids: ids.append(fi.search(Q[i : i + 1], 10)[1][0]), list(range(len(Q))))
        rec = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(ids, gt, strict=True)]))
        # near-ties: returned units whose exact similarity is within 0.01 of the exact 10th best
        near = float(np.mean([np.mean((X[a[a >= 0]] @ Q[i]) >= D[i, 9] - 0.01) if (a >= 0).any() else 0.0
                              for i, a in enumerate(ids)]))
        sweep.append({"ef": ef, "recall10": rec, "near10": near, "p50": pct(lat, 50), "p95": pct(lat, 95)})
        print(f"    HNSW efSearch {ef:>4}: recall@10 {rec:.3f} (within 0.01 of the 10th best: {near:.3f}), "
              f"k=10 search p50 {pct(lat, 50):.2f} ms p95 {pct(lat, 95):.2f} ms")
    fi.hnsw.efSearch = settings.hnsw_ef_search
    res[f"{tag}hnsw_sweep"] = sweep


def measure_size(n: int, *, settings: Settings, vectors: np.ndarray, units: list[Unit],
                 docs: dict[str, DocRecord], abbrevs: dict[str, str], emb: Any, qs: list[str], Q: np.ndarray,
                 tmp: Path, unit_mb: float, n_max: int, ef_sweep: list[int], query_threads: list[str],
                 storage: str, ef_construction: int, dense_only: bool) -> dict[str, Any]:
    import faiss

    print(f"=== {n:,} units ===", flush=True)
    res: dict[str, Any] = {"units": n}
    X = vectors[:n]
    sub_units = units[:n]
    sub_docs = {d: docs[d] for d in dict.fromkeys(u.doc for u in sub_units)}
    # FAISS, exactly as the index builds it
    trim()
    r0 = rss()
    reset_peak()
    t = time.perf_counter()
    as_index = (storage == "flat" and ef_construction == 80) or n <= settings.ann_threshold
    fi = _faiss_index(X, settings) if as_index else hnsw_alt(X, settings, storage, ef_construction)
    res["faiss_s"] = time.perf_counter() - t
    res["faiss_type"] = type(fi).__name__
    res["faiss_peak_mb"] = peak() - r0
    trim()
    res["faiss_rss_mb"] = rss() - r0
    print(f"  FAISS {res['faiss_type']}: built in {res['faiss_s']:.1f} s; RSS +{res['faiss_rss_mb']:,.0f} MB "
          f"(peak +{res['faiss_peak_mb']:,.0f} MB)", flush=True)
    if dense_only:
        hnsw_recall(fi, X, Q, ef_sweep, settings, res, "")
        return res
    # BM25: tokenisation cost estimated on a sample, then the real build
    sample = sub_units[: min(n, 20_000)]
    t = time.perf_counter()
    for u in sample:
        index_terms(f"{u.embed_text} {expand(u.text, abbrevs)}")
    res["tokenize_s_est"] = (time.perf_counter() - t) * n / len(sample)
    trim()
    r0 = rss()
    reset_peak()
    t = time.perf_counter()
    bm = _bm25_index(sub_units, abbrevs)
    res["bm25_s"] = time.perf_counter() - t
    res["bm25_peak_mb"] = peak() - r0
    trim()
    res["bm25_rss_mb"] = rss() - r0
    print(f"  BM25: built in {res['bm25_s']:.1f} s (tokenising ~{res['tokenize_s_est']:.1f} s of it); "
          f"RSS +{res['bm25_rss_mb']:,.0f} MB (peak +{res['bm25_peak_mb']:,.0f} MB)", flush=True)
    # disk
    d = tmp / f"disk-{n}"
    d.mkdir()
    faiss.write_index(fi, str(d / "faiss.index"))
    bm.save(str(d / "bm25"))
    res["disk_faiss"] = (d / "faiss.index").stat().st_size
    res["disk_bm25"] = du(d / "bm25")
    res["disk_vectors"] = X.nbytes + 128
    js = [json.dumps(store.unit_to_json(u), ensure_ascii=False) for u in sub_units[:2000]]
    res["disk_units_est"] = int(sum(len(s.encode()) + 1 for s in js) / len(js) * n)
    shutil.rmtree(d)
    print(f"  disk: faiss.index {mb(res['disk_faiss'])}, bm25/ {mb(res['disk_bm25'])}, "
          f"vectors.npy {mb(res['disk_vectors'])}, units.jsonl ~{mb(res['disk_units_est'])}")
    # queries through the product's own code
    snap = _Snapshot(sub_docs, sub_units, X, np.zeros((0, X.shape[1]), np.float32),
                     np.zeros((0, 2), np.int64), fi, bm, None)
    idx = Index(settings, snap, emb)
    retr = HybridRetriever(index=idx, settings=settings, k=settings.top_k)
    t = time.perf_counter()
    retr.passages(qs[0], settings.top_k, qvec=Q[0])
    res["first_query_s"] = time.perf_counter() - t
    lex = [" ".join(x for x in (q, expand(q, idx.abbreviations(), synonyms=True)) if x) for q in qs]
    every = list(range(len(qs)))
    print(f"  first query (builds the abbreviation + alias caches): {res['first_query_s']:.1f} s")
    for threads in query_threads:
        tag = "" if threads == "default" else f"t{threads}_"
        with thread_limit(threads):
            dense = timed(lambda i: idx.search_dense(Q[i], settings.candidate_k * 2), every)
            bm25 = timed(lambda i: idx.search_bm25(lex[i], settings.candidate_k), every)
            hyb = timed(lambda i: retr.passages(qs[i], settings.top_k, qvec=Q[i]), every)
            for name, xs in (("dense", dense), ("bm25", bm25), ("hybrid", hyb)):
                res[f"{tag}{name}_p50"], res[f"{tag}{name}_p95"] = pct(xs, 50), pct(xs, 95)
            print(f"  query ms p50/p95 ({threads} threads): dense {res[tag + 'dense_p50']:.1f}/"
                  f"{res[tag + 'dense_p95']:.1f}, bm25 {res[tag + 'bm25_p50']:.1f}/{res[tag + 'bm25_p95']:.1f}, "
                  f"hybrid retrieval {res[tag + 'hybrid_p50']:.1f}/{res[tag + 'hybrid_p95']:.1f}", flush=True)
            hnsw_recall(fi, X, Q, ef_sweep, settings, res, tag)
    res["vectors_mb"] = X.nbytes / 2**20
    res["units_mb_est"] = unit_mb * n / n_max
    res["ram_total_mb"] = res["vectors_mb"] + res["faiss_rss_mb"] + res["bm25_rss_mb"] + res["units_mb_est"]
    print(f"  RAM for this index beyond the model: vectors {res['vectors_mb']:,.0f} + FAISS "
          f"{res['faiss_rss_mb']:,.0f} + BM25 {res['bm25_rss_mb']:,.0f} + units/docs "
          f"~{res['units_mb_est']:,.0f} "
          f"= {res['ram_total_mb']:,.0f} MB; load avg {loadavg()}\n", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated unit counts")
    ap.add_argument("--real", type=int, default=2000, help="texts embedded for real (base units)")
    ap.add_argument("--units-per-doc", type=int, default=100)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ann-threshold", type=int, default=None, help="override Settings.ann_threshold")
    ap.add_argument("--hnsw-m", type=int, default=None, help="override Settings.hnsw_m")
    ap.add_argument("--ef-search", type=int, default=None, help="override Settings.hnsw_ef_search")
    ap.add_argument("--ef-sweep", default="32,64,128,256", help="efSearch values for the HNSW recall sweep")
    ap.add_argument("--query-threads", default="default",
                    help="thread settings to time queries with, e.g. 'default,1' (faiss + torch threads)")
    ap.add_argument("--storage", choices=("flat", "sq8", "fp16"), default="flat",
                    help="HNSW vector storage: flat = as index._faiss_index (IndexHNSWFlat); sq8/fp16 = "
                         "IndexHNSWSQ, an alternative to compare (same M, efConstruction 80)")
    ap.add_argument("--ef-construction", type=int, default=80,
                    help="HNSW efConstruction; other than 80 builds the variant itself (index fixes 80)")
    ap.add_argument("--dense-only", action="store_true", help="FAISS only: skip BM25 and the retriever")
    ap.add_argument("--seed-index-dir", type=Path, default=None,
                    help="index root holding the seed index (default: the project's, else a temp build)")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "citeqa-scale-cache")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    n_max = max(sizes)
    n_base = min(args.real, n_max)

    import faiss

    upd = {k: v for k, v in (("ann_threshold", args.ann_threshold), ("hnsw_m", args.hnsw_m),
                             ("hnsw_ef_search", args.ef_search)) if v is not None}
    settings = Settings().model_copy(update=upd)
    print(f"machine: {os.cpu_count()} cores, faiss omp threads {faiss.omp_get_max_threads()}, "
          f"load avg {loadavg()}")
    print(f"settings: ann_threshold={settings.ann_threshold} hnsw_m={settings.hnsw_m} "
          f"hnsw_ef_search={settings.hnsw_ef_search} (efConstruction 80, fixed in index._faiss_index)")
    if args.storage != "flat" or args.ef_construction != 80:
        print(f"VARIANT, not what the index builds: HNSW storage {args.storage}, "
              f"efConstruction {args.ef_construction}")

    tmp = Path(tempfile.mkdtemp(prefix="citeqa-bench-scale-"))
    results: list[dict[str, Any]] = []
    try:
        # --- seed index and model ------------------------------------------------------------------
        seed_settings = Settings(index_dir=args.seed_index_dir) if args.seed_index_dir else Settings()
        try:
            seed = Index.load(seed_settings)
        except CiteqaError:
            seed_settings = Settings(index_dir=tmp / "seed-index")
            seed = Index.build([seed_settings.seeds_dir], seed_settings)
        emb = seed.embedder
        emb.encode(["warm up"] * 8, 8)
        abbrevs = seed.abbreviations()
        rss_model = rss()
        print(f"seed index: {len(seed.units)} units; RSS with model loaded {rss_model:,.0f} MB")

        # --- synthetic corpus ------------------------------------------------------------------------
        rng = random.Random(args.seed)
        corpus = Corpus(seed)
        t = time.perf_counter()
        r0 = rss()
        units, docs, parent = build_units(corpus, n_max, n_base, args.units_per_doc, rng)
        trim()
        unit_mb = rss() - r0
        print(f"generated {n_max:,} units in {len(docs):,} documents in {time.perf_counter() - t:.1f} s; "
              f"unit + document objects take {unit_mb:,.0f} MB RSS "
              f"({unit_mb * 2**20 / n_max:,.0f} B/unit)")
        key = hashlib.sha256(json.dumps([args.seed, n_base, args.units_per_doc,
                                         [u.embed_text for u in units[:50]]]).encode()).hexdigest()[:12]
        t = time.perf_counter()
        base = real_vectors(lambda txt: emb.encode(txt, settings.embed_batch_size),
                            [u.embed_text for u in units[:n_base]], args.cache_dir, key)
        print(f"real embeddings of {n_base:,} base units: {time.perf_counter() - t:.1f} s "
              f"(cache {args.cache_dir})")
        # sigma: how far re-drawing the numbers moves a real embedding
        crng = random.Random(args.seed + 1)
        calib = list(range(0, n_base, max(1, n_base // 100)))[:100]
        var_texts = [variant_text(units[i], crng) for i in calib]
        cv = emb.encode(var_texts, settings.embed_batch_size)
        cos = float(np.mean(np.sum(cv * base[calib], axis=1)))
        sigma = float(np.sqrt(max(1 / cos**2 - 1, 1e-6) / base.shape[1]))
        t = time.perf_counter()
        vectors = synth_vectors(base, parent, sigma, np.random.default_rng(args.seed))
        nn = np.sort(base[:1000] @ base[:1000].T, axis=1)[:, -2]
        print(f"synthetic vectors: {n_max - n_base:,} of {n_max:,} are perturbations of real ones "
              f"(number-variant cos {cos:.3f} -> sigma {sigma:.4f}/dim, "
              f"plus U(0,0.5) x another real vector); "
              f"{time.perf_counter() - t:.1f} s; vectors array {mb(vectors.nbytes)}")
        print(f"  (real base vectors: mean nearest-neighbour cos {nn.mean():.3f})")

        # --- queries -------------------------------------------------------------------------------
        qs = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines()
              if line.strip()]
        qrng = random.Random(args.seed + 2)
        while len(qs) < args.queries:
            words = qrng.choice(corpus.sentences)[1].split()
            qs.append(" ".join(words[:12]))
        qs = qs[: args.queries]
        t = time.perf_counter()
        qemb = [emb.encode([q], 1)[0] for q in qs]
        qemb_ms = timed(lambda q: emb.encode([q], 1), qs[:50])
        print(f"{len(qs)} queries embedded in {time.perf_counter() - t:.1f} s; "
              f"query embedding p50 {pct(qemb_ms, 50):.1f} ms p95 {pct(qemb_ms, 95):.1f} ms")
        Q = np.vstack(qemb).astype(np.float32)
        print(f"RSS before index structures: {rss():,.0f} MB; load avg {loadavg()}\n")

        ctx = {"settings": settings, "vectors": vectors, "units": units, "docs": docs, "abbrevs": abbrevs,
               "emb": emb, "qs": qs, "Q": Q, "tmp": tmp, "unit_mb": unit_mb, "n_max": n_max,
               "ef_sweep": [int(e) for e in args.ef_sweep.split(",")],
               "query_threads": args.query_threads.split(","), "storage": args.storage,
               "dense_only": args.dense_only, "ef_construction": args.ef_construction}
        for n in sizes:
            r = measure_size(n, **ctx)
            r.pop("exact_D", None)
            r.pop("exact_I", None)
            results.append(r)
            trim()

        # --- summary -------------------------------------------------------------------------------
        print("summary (ms are per query; RAM in MB beyond the model; disk excludes docs.jsonl)")
        print(f"{'units':>10} {'faiss':>14} {'build s':>8} {'bm25 s':>7} {'disk MB':>8} {'RAM MB':>7} "
              f"{'threads':>8} {'dense p50/p95':>14} {'bm25 p50/p95':>14} {'hybrid p50/p95':>15} "
              f"{'recall@10':>9}")
        for r in results:
            if "bm25_s" not in r:  # --dense-only
                print(f"{r['units']:>10,} {r['faiss_type']:>14} {r['faiss_s']:>8.1f}   FAISS RSS "
                      f"+{r['faiss_rss_mb']:,.0f} MB; see the efSearch sweep above")
                continue
            disk = (r["disk_faiss"] + r["disk_bm25"] + r["disk_vectors"] + r["disk_units_est"]) / 2**20
            sweep = next((v for k, v in r.items() if k.endswith("hnsw_sweep")), [])
            rec = next((s["recall10"] for s in sweep if s["ef"] == settings.hnsw_ef_search),
                       1.0 if r["faiss_type"] == "IndexFlatIP" else float("nan"))
            for threads in args.query_threads.split(","):
                g = "" if threads == "default" else f"t{threads}_"
                print(f"{r['units']:>10,} {r['faiss_type']:>14} {r['faiss_s']:>8.1f} {r['bm25_s']:>7.1f} "
                      f"{disk:>8,.0f} {r['ram_total_mb']:>7,.0f} {threads:>8} "
                      f"{r[g + 'dense_p50']:>6.1f}/{r[g + 'dense_p95']:<7.1f} "
                      f"{r[g + 'bm25_p50']:>6.1f}/{r[g + 'bm25_p95']:<7.1f} "
                      f"{r[g + 'hybrid_p50']:>7.1f}/{r[g + 'hybrid_p95']:<7.1f} {rec:>9.3f}")
        print(f"load avg at end: {loadavg()}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"settings": upd, "real": n_base, "sigma": sigma,
                                             "results": results, "loadavg": os.getloadavg()}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

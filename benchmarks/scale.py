"""Scale: build, disk, memory and query latency of the real index on synthetic corpora (10k-1M units).

Everything measured goes through the product's own code: the build is ``citeqa.snapshot.write_build``
(the function ``Index.build`` calls after parsing), the serving figures come from a fresh process that
runs ``Index.load`` and ``HybridRetriever`` / ``Assistant.ask`` exactly as the CLI and UI do.

Corpus (synthetic, derived from the seeds):
  * each unit recombines 1-4 sentences of the seed index (or is a seed table row) with every number
    replaced by a random number of the same shape; ``--units-per-doc`` units per document, whose text is
    the units' texts joined, so every offset is real;
  * vectors: embedding 1M texts with MiniLM on 2 cores would take hours, so only ``--real`` texts (the
    "base" units) are embedded for real (cached in ``--cache-dir``). Every other unit is a number variant
    of a base unit ``a`` and gets ``normalise(v_a + b * v_c + sigma * g)``: ``v_c`` another real base
    vector, ``b ~ U(0, 0.5)``, ``g`` Gaussian, ``sigma`` calibrated so the noise moves a vector as much as
    re-drawing its text's numbers moves the real embedding. Sentence vectors of multi-sentence chunks are
    the unit's vector plus the same noise. The build replays these vectors instead of calling the model
    (parsing is skipped too: the units are generated already split). Recall figures on such uniform
    vectors are pessimistic, not a property of real libraries.

Per size:
  * build seconds (BM25 tokenising + postings, FAISS, writing), peak RSS during the build, disk per file;
  * incremental: one new document added to the built index (what a UI upload costs at that size);
  * serving, in a fresh process: RSS with only the model loaded, then after ``Index.load`` and after all
    queries (split into anonymous memory and file-backed pages of the memory-mapped index files, which
    the kernel can drop and re-read); load seconds; latency p50/p95 of dense search (k=80), BM25 (k=40),
    the full hybrid retrieval with a precomputed query vector, and ``Assistant.ask`` end to end (query
    embedding, retrieval, evidence scoring, answer);
  * for HNSW, recall@10 against exact inner-product search over the same stored vectors, per efSearch.

    .venv/bin/python benchmarks/scale.py                                  # 10k and 100k units, ~3 min
    .venv/bin/python benchmarks/scale.py --sizes 10000,100000,1000000 --json runs/scale.json   # ~25 min
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from citeqa.config import Settings  # noqa: E402
from citeqa.errors import CiteqaError  # noqa: E402
from citeqa.index import Index  # noqa: E402
from citeqa.snapshot import DocRecord, empty_snapshot, load_snapshot, write_build  # noqa: E402
from citeqa.store import current_build  # noqa: E402
from citeqa.types import DocMeta, ParsedDoc, Sentence, Unit  # noqa: E402

QUESTIONS = ROOT / "evals" / "seeds_questions.jsonl"
_NUM = re.compile(r"\d+(?:\.\d+)?")


# --- measuring helpers ----------------------------------------------------------------------------------
def mem() -> dict[str, float]:
    """VmRSS, RssAnon, RssFile and VmHWM of this process, in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(val.split()[0]) / 1024
    return out


def mapped_rss(under: Path) -> dict[str, float]:
    """MiB of this process's memory that are pages of each file under ``under`` (the mapped index files)."""
    out: dict[str, float] = {}
    path = ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split(maxsplit=1)[0]
        if "-" in first and not first.endswith(":"):  # a mapping's header line
            last = line.rstrip().split()[-1]
            path = last if last.startswith(str(under)) else ""
        elif path and first == "Rss:":
            name = "/".join(Path(path).parts[-2:]) if "bm25" in path else Path(path).name
            out[name] = out.get(name, 0.0) + int(line.split()[1]) / 1024
    return out


def reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def trim() -> None:
    import ctypes

    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if len(xs) else float("nan")


def timed(fn: Callable[[int], Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


# --- synthetic corpus -----------------------------------------------------------------------------------
def vary(text: str, rng: random.Random) -> str:
    """Replace every number by a random one of the same shape (digit count, decimals)."""

    def sub(m: re.Match[str]) -> str:
        whole, _, frac = m.group(0).partition(".")
        lo = 10 ** (len(whole) - 1) if len(whole) > 1 else 0
        w = str(rng.randint(lo, 10 ** len(whole) - 1))
        return f"{w}.{''.join(rng.choice('0123456789') for _ in frac)}" if frac else w

    return _NUM.sub(sub, text)


class Corpus:
    """Templates from the seed index: prose sentences (with their sections) and table rows."""

    def __init__(self, seed: Index) -> None:
        self.sentences: list[tuple[str, str]] = []
        self.rows: list[Unit] = []
        for u in seed.units:
            if u.kind == "row":
                self.rows.append(u)
            else:
                self.sentences.extend((u.section, s.text) for s in u.sentences)

    def make(self, rng: random.Random, base: tuple[str, str, str, list[str]] | None = None
             ) -> tuple[str, str, str, list[str]]:
        """(kind, section, table, sentence texts) of a new unit; a number variant of ``base`` when given."""
        if base is not None:
            return base[0], base[1], base[2], [vary(t, rng) for t in base[3]]
        if self.rows and rng.random() < 0.25:
            r = rng.choice(self.rows)
            return "row", r.section, r.table, [vary(r.text, rng)]
        picks = [rng.choice(self.sentences) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))]
        return "chunk", picks[0][0], "", [vary(t, rng) for _, t in picks]


def make_doc(num: int, specs: list[tuple[str, str, str, list[str]]]) -> tuple[ParsedDoc, DocRecord]:
    doc = f"synth-{num:06d}.txt"
    units, parts, off = [], [], 0
    for kind, section, table, sents in specs:
        start = off
        sent_objs = []
        for t in sents:
            sent_objs.append(Sentence(off, off + len(t), t))
            off += len(t) + 1
        text = " ".join(sents)
        parts.append(text)
        units.append(Unit(0, doc, section, kind, start, start + len(text), text, tuple(sent_objs),  # type: ignore[arg-type]
                          table=table))
    body = " ".join(parts)
    meta = DocMeta(doc=doc, title=f"Synthetic report {num}", kind="trial article",
                   trial_id=f"NCT{10_000_000 + num}", aliases=f"SYN{num}")
    h = hashlib.sha256(body.encode()).hexdigest()
    pd = ParsedDoc(meta, body, h, tuple(units), tuple(dict.fromkeys(u.section for u in units)), 0)
    return pd, DocRecord(meta, h, pd.sections, 0, doc, len(body), ())


def build_corpus(corpus: Corpus, n: int, n_base: int, per_doc: int, rng: random.Random
                 ) -> tuple[list[ParsedDoc], dict[str, DocRecord], np.ndarray]:
    """``n`` units in documents of ``per_doc``; unit ``i >= n_base`` varies base unit ``parent[i]``."""
    specs: list[tuple[str, str, str, list[str]]] = []
    parent = np.empty(n, np.int64)
    for i in range(n):
        if i < n_base:
            specs.append(corpus.make(rng))
            parent[i] = i
        else:
            p = rng.randrange(n_base)
            specs.append(corpus.make(rng, specs[p]))
            parent[i] = p
    parsed, records = [], {}
    for d, a in enumerate(range(0, n, per_doc)):
        pd, rec = make_doc(d, specs[a : a + per_doc])
        parsed.append(pd)
        records[pd.meta.doc] = rec
    return parsed, records, parent


def embed_text(kind: str, section: str, sents: list[str]) -> str:
    body = " ".join(sents)
    return f"{section}: {body}" if kind == "chunk" and section else body


def real_vectors(encode: Callable[[list[str]], np.ndarray], texts: list[str], cache: Path, key: str) -> np.ndarray:
    f = cache / f"vectors-{key}.npy"
    if f.is_file():
        v = np.load(f)
        if len(v) == len(texts):
            return v
    v = encode(texts)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(f, v)
    return v


def perturb(rows: np.ndarray, base: np.ndarray, sigma: float, rng: np.random.Generator, mix: bool) -> np.ndarray:
    other = base[rng.integers(0, len(base), len(rows))]
    b = rng.uniform(0, 0.5, (len(rows), 1)).astype(np.float32) if mix else 0.0
    v = rows + b * other + rng.normal(0, sigma, rows.shape).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)


class Replay:
    """Stands in for the embedder during the build: returns the prepared vectors for each call in turn."""

    name, version, dim = "replay", "0", 384

    def __init__(self, *arrays: np.ndarray) -> None:
        self.arrays = list(arrays)

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Any = None) -> np.ndarray:
        arr = self.arrays.pop(0)
        assert len(arr) == len(texts), (len(arr), len(texts))
        return arr


def synth_vectors(parsed: list[ParsedDoc], base: np.ndarray, parent: np.ndarray, sigma: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (base ones real) and sentence vectors for the multi-sentence chunks, in build order."""
    rng = np.random.default_rng(seed)
    n_base = len(base)
    units = np.empty((len(parent), base.shape[1]), np.float16)
    units[:n_base] = base
    for a in range(n_base, len(parent), 200_000):
        b = min(len(parent), a + 200_000)
        units[a:b] = perturb(base[parent[a:b]], base, sigma, rng, mix=True)
    owners = np.asarray([i for i, u in enumerate(u for pd in parsed for u in pd.units)
                         if u.kind == "chunk" for _ in range(len(u.sentences)) if len(u.sentences) > 1], np.int64)
    sents = np.empty((len(owners), base.shape[1]), np.float16)
    for a in range(0, len(owners), 200_000):
        b = min(len(owners), a + 200_000)
        sents[a:b] = perturb(units[owners[a:b]].astype(np.float32), base, 2 * sigma, rng, mix=False)
    return units, sents


# --- serving measurements (fresh process) ---------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    """Load the built index next to the real model and time questions; prints one JSON object."""
    from citeqa.assistant import Assistant
    from citeqa.embed import default_embedder
    from citeqa.retrieve import HybridRetriever

    settings = Settings(index_dir=args.child, **json.loads(args.overrides))
    qs = json.loads((args.queries_dir / "queries.json").read_text())
    Q = np.load(args.queries_dir / "queries.npy")
    emb = default_embedder()
    emb.encode(["warm up"], 1)
    trim()
    res: dict[str, Any] = {"mem_model": mem()}
    t = time.perf_counter()
    idx = Index.load(settings, embedder=emb)
    res["load_s"] = time.perf_counter() - t
    trim()
    res["mem_loaded"] = mem()
    retr = HybridRetriever(index=idx, settings=settings, k=settings.top_k)
    t = time.perf_counter()
    retr.passages(qs[0], qvec=Q[0])
    res["first_query_s"] = time.perf_counter() - t
    lex = qs  # the retriever adds expansions itself; BM25 alone is timed on the question text
    n = len(qs)
    for _ in range(2):  # the first pass reads the touched pages of the mapped files; report the second
        res["dense"] = timed(lambda i: idx.search_dense(Q[i], settings.candidate_k * 2), n)
        res["bm25"] = timed(lambda i: idx.search_bm25(lex[i], settings.candidate_k), n)
        res["hybrid"] = timed(lambda i: retr.passages(qs[i], qvec=Q[i]), n)
    assistant = Assistant(idx, settings)
    res["ask"] = timed(lambda i: assistant.ask(qs[i]), n)
    trim()
    res["mem_queried"] = mem()
    res["index_pages"] = mapped_rss(settings.index_dir)
    res["index_pages_mb"] = sum(res["index_pages"].values())
    fi = idx.snap.faiss
    if hasattr(fi, "hnsw"):  # recall@10 against exact search over the same stored vectors
        vec = idx.snap.vectors
        best = np.full((n, 10), -np.inf, np.float32)
        best_i = np.zeros((n, 10), np.int64)
        for a in range(0, len(vec), 100_000):
            s = Q @ np.asarray(vec[a : a + 100_000], np.float32).T
            cat = np.concatenate([best, s], axis=1)
            ids = np.concatenate([best_i, np.arange(a, a + s.shape[1])[None, :].repeat(n, 0)], axis=1)
            top = np.argsort(-cat, axis=1)[:, :10]
            best, best_i = np.take_along_axis(cat, top, 1), np.take_along_axis(ids, top, 1)
        sweep = []
        for ef in args.ef_sweep:
            fi.hnsw.efSearch = ef
            got = [fi.search(Q[i : i + 1], 10)[1][0] for i in range(n)]
            lat = timed(lambda i: fi.search(Q[i : i + 1], 10), n)
            rec = float(np.mean([len(set(g.tolist()) & set(b.tolist())) / 10
                                 for g, b in zip(got, best_i, strict=True)]))
            sweep.append({"ef": ef, "recall10": rec, "p95_ms": pct(lat, 95)})
        res["hnsw"] = sweep
    for key in ("dense", "bm25", "hybrid", "ask"):
        xs = res.pop(key)
        res[key] = {"p50": pct(xs, 50), "p95": pct(xs, 95), "max": max(xs)}
    res["loadavg"] = loadavg()
    print("RESULT " + json.dumps(res))


# --- driver ---------------------------------------------------------------------------------------------
def measure(n: int, parsed: list[ParsedDoc], records: dict[str, DocRecord], vecs: np.ndarray, svecs: np.ndarray,
            extra: tuple[ParsedDoc, DocRecord, np.ndarray, np.ndarray], settings: Settings,
            args: argparse.Namespace, qdir: Path) -> dict[str, Any]:
    print(f"=== {n:,} units, {len(parsed):,} documents ===", flush=True)
    res: dict[str, Any] = {"units": n, "docs": len(parsed)}
    if args.keep and (settings.index_path() / "CURRENT").is_file():
        print("  (kept index reused: serving figures only)")
        return serve_figures(settings, args, qdir, res)
    trim()
    before = mem()["VmRSS"]
    reset_peak()
    t = time.perf_counter()
    build, _ = write_build(settings, lambda: Replay(vecs, svecs), empty_snapshot(), [], parsed,
                           {pd.meta.doc: records[pd.meta.doc] for pd in parsed}, None)  # type: ignore[arg-type, return-value]
    res["build_s"] = time.perf_counter() - t
    res["build_peak_mb"] = mem()["VmHWM"] - before
    res["disk"] = {p.name: du(p) if p.is_dir() else p.stat().st_size for p in build.iterdir()}
    res["disk_total"] = du(build)
    print(f"  build {res['build_s']:.1f} s (no parsing or embedding; peak +{res['build_peak_mb']:,.0f} MB); "
          f"disk {res['disk_total'] / 2**20:,.0f} MB: " + ", ".join(
              f"{k} {v / 2**20:,.0f}" for k, v in sorted(res["disk"].items(), key=lambda x: -x[1])[:6]), flush=True)
    # One more document, as a UI upload adds it: unchanged documents are copied, FAISS extended.
    pd, rec, v, sv = extra
    old = load_snapshot(current_build(settings.index_path()), settings)
    t = time.perf_counter()
    write_build(settings, lambda: Replay(v, sv), old, list(old.docs), [pd],  # type: ignore[arg-type, return-value]
                {**{k: old.docs[k] for k in old.docs}, pd.meta.doc: rec}, None)
    res["add_doc_s"] = time.perf_counter() - t
    del old
    print(f"  adding one {len(pd.units)}-unit document: {res['add_doc_s']:.1f} s", flush=True)
    trim()
    serve_figures(settings, args, qdir, res)
    if not args.keep:
        shutil.rmtree(settings.index_dir, ignore_errors=True)
    return res


def serve_figures(settings: Settings, args: argparse.Namespace, qdir: Path, res: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(settings.index_dir), "--queries-dir", str(qdir),
         "--overrides", args.overrides_json, "--ef-sweep", ",".join(map(str, args.ef_sweep))],
        capture_output=True, text=True, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"serving process failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    serve = json.loads(line[7:])
    res.update(serve)
    m0, m1, m2 = serve["mem_model"], serve["mem_loaded"], serve["mem_queried"]
    res["ram_beyond_model_mb"] = m2["VmRSS"] - m0["VmRSS"]
    res["anon_beyond_model_mb"] = m2["RssAnon"] - m0["RssAnon"]
    # What the index costs: heap growth plus its own mapped file pages (other file-backed growth is
    # shared-library code, e.g. torch kernels first used by longer questions).
    res["index_ram_mb"] = res["anon_beyond_model_mb"] + serve["index_pages_mb"]
    print(f"  serving (fresh process, load avg {serve['loadavg']}): load {serve['load_s']:.2f} s, first question "
          f"{serve['first_query_s'] * 1000:.0f} ms")
    print(f"  RSS beyond the model: after load +{m1['VmRSS'] - m0['VmRSS']:,.0f} MB, after queries "
          f"+{res['ram_beyond_model_mb']:,.0f} MB (anonymous +{res['anon_beyond_model_mb']:,.0f}, "
          f"file-backed +{m2['RssFile'] - m0['RssFile']:,.0f}, of which index files {serve['index_pages_mb']:,.0f}); "
          f"index total {res['index_ram_mb']:,.0f} MB; model process {m0['VmRSS']:,.0f} MB")
    print("  resident index file pages, MB: " + ", ".join(
        f"{k} {v:,.0f}" for k, v in sorted(serve["index_pages"].items(), key=lambda x: -x[1]) if v >= 1))
    print("  ms p50/p95: " + ", ".join(f"{k} {serve[k]['p50']:.1f}/{serve[k]['p95']:.1f}"
                                        for k in ("dense", "bm25", "hybrid", "ask")))
    for s in serve.get("hnsw", []):
        print(f"  HNSW efSearch {s['ef']:>4}: recall@10 {s['recall10']:.3f}, k=10 search p95 {s['p95_ms']:.2f} ms")
    print(flush=True)
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
    ap.add_argument("--ef-construction", type=int, default=None, help="override Settings.hnsw_ef_construction")
    ap.add_argument("--ef-sweep", default="64,128,256,512", help="efSearch values for the HNSW recall sweep")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "citeqa-scale-cache")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--keep", type=Path, default=None,
                    help="build the indexes under this directory and keep them; an index already there is "
                         "reused (serving figures only)")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--queries-dir", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.ef_sweep = [int(e) for e in args.ef_sweep.split(",")]
    if args.child:
        child(args)
        return
    upd = {k: v for k, v in (("ann_threshold", args.ann_threshold), ("hnsw_m", args.hnsw_m),
                             ("hnsw_ef_search", args.ef_search),
                             ("hnsw_ef_construction", args.ef_construction)) if v is not None}
    args.overrides_json = json.dumps(upd)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    n_max, n_base = max(sizes), min(args.real, max(sizes))
    base_settings = Settings(**upd)
    print(f"machine: {os.cpu_count()} cores, load avg {loadavg()}; settings: ann_threshold "
          f"{base_settings.ann_threshold}, HNSW M {base_settings.hnsw_m}, efConstruction "
          f"{base_settings.hnsw_ef_construction}, efSearch {base_settings.hnsw_ef_search}")
    tmp = Path(tempfile.mkdtemp(prefix="citeqa-bench-scale-"))
    results = []
    try:
        try:
            seed = Index.load(Settings())
        except CiteqaError:
            seed = Index.build([Settings().seeds_dir], Settings(index_dir=tmp / "seed-index"))
        emb = seed.embedder
        rng = random.Random(args.seed)
        corpus = Corpus(seed)
        t = time.perf_counter()
        parsed, records, parent = build_corpus(corpus, n_max, n_base, args.units_per_doc, rng)
        extra_pd, extra_rec = make_doc(999_999, [corpus.make(rng) for _ in range(args.units_per_doc)])
        all_units = [u for pd in parsed for u in pd.units]
        print(f"generated {n_max:,} units in {len(parsed):,} documents in {time.perf_counter() - t:.1f} s")
        base_texts = [u.embed_text for u in all_units[:n_base]]
        key = hashlib.sha256(json.dumps([args.seed, n_base, args.units_per_doc, base_texts[:50]]).encode()
                             ).hexdigest()[:12]
        base = real_vectors(lambda x: emb.encode(x, 64), base_texts, args.cache_dir, key)
        crng = random.Random(args.seed + 1)
        calib = list(range(0, n_base, max(1, n_base // 100)))[:100]
        var = emb.encode([embed_text(all_units[i].kind, all_units[i].section,
                                     [vary(s.text, crng) for s in all_units[i].sentences]) for i in calib], 64)
        cos = float(np.mean(np.sum(var * base[calib], axis=1)))
        sigma = float(np.sqrt(max(1 / cos**2 - 1, 1e-6) / base.shape[1]))
        vecs, svecs = synth_vectors(parsed, base, parent, sigma, args.seed)
        ev = emb.encode([u.embed_text for u in extra_pd.units], 64).astype(np.float16)
        esv = emb.encode([s.text for u in extra_pd.units if u.kind == "chunk" and len(u.sentences) > 1
                          for s in u.sentences], 64).astype(np.float16)
        print(f"vectors: {n_base:,} real, the rest perturbed (number-variant cos {cos:.3f} -> sigma "
              f"{sigma:.4f}/dim); {len(svecs):,} sentence vectors")
        qs = [json.loads(x)["question"] for x in QUESTIONS.read_text(encoding="utf-8").splitlines() if x.strip()]
        qrng = random.Random(args.seed + 2)
        while len(qs) < args.queries:
            qs.append(" ".join(qrng.choice(corpus.sentences)[1].split()[:12]))
        qs = qs[: args.queries]
        (tmp / "queries.json").write_text(json.dumps(qs))
        np.save(tmp / "queries.npy", np.vstack([emb.encode([q], 1)[0] for q in qs]).astype(np.float32))
        del seed, all_units
        for n in sizes:
            n_docs = -(-n // args.units_per_doc)
            sub = parsed[:n_docs]
            n_units = sum(len(pd.units) for pd in sub)
            n_sent = sum(len(u.sentences) for pd in sub for u in pd.units if u.kind == "chunk" and len(u.sentences) > 1)
            settings = base_settings.model_copy(update={"index_dir": (args.keep or tmp) / f"index-{n}"})
            results.append(measure(n_units, sub, records, vecs[:n_units], svecs[:n_sent],
                                   (extra_pd, extra_rec, ev, esv), settings, args, tmp))
        print("summary: RAM = RSS of a serving process beyond the same process with only the model loaded; "
              "index = its heap growth + resident pages of its mapped files")
        print(f"{'units':>10} {'build s':>8} {'+1 doc s':>8} {'disk MB':>8} {'RAM MB':>7} {'index':>7} "
              f"{'dense p95':>9} {'bm25 p95':>9} {'hybrid p50/p95':>15} {'ask p50/p95':>13} {'recall@10':>9}")
        for r in results:
            rec = next((s["recall10"] for s in r.get("hnsw", []) if s["ef"] == base_settings.hnsw_ef_search),
                       1.0 if "hnsw" not in r else float("nan"))
            nan = float("nan")
            print(f"{r['units']:>10,} {r.get('build_s', nan):>8.1f} {r.get('add_doc_s', nan):>8.1f} "
                  f"{r.get('disk_total', nan) / 2**20:>8,.0f} "
                  f"{r['ram_beyond_model_mb']:>7,.0f} {r['index_ram_mb']:>7,.0f} "
                  f"{r['dense']['p95']:>9.1f} {r['bm25']['p95']:>9.1f} "
                  f"{r['hybrid']['p50']:>7.1f}/{r['hybrid']['p95']:<7.1f} "
                  f"{r['ask']['p50']:>6.1f}/{r['ask']['p95']:<6.1f} "
                  f"{rec:>9.3f}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"settings": upd, "real": n_base, "sigma": sigma,
                                             "results": results}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

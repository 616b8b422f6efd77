"""Scale on PostgreSQL + pgvector beside the file backend: the same synthetic corpus, queries and process
layout as ``benchmarks/scale.py``, both backends built and served in one run.

Corpus, vectors and queries are scale.py's (synthetic units recombined from the seeds with redrawn
numbers, 2,000 real MiniLM vectors and calibrated perturbations for the rest, 200 questions embedded for
real); see its docstring. Per size:

  * files: ``scale.measure`` (``write_build``, one more document, a fresh serving process);
  * postgres, in a fresh database on the same server:
      - build = ``write_generation`` (what ``PgIndex._publish`` runs after embedding: documents, units with
        vectors, BM25 postings and the generation, one transaction) + ``ensure_ann_index`` (pgvector HNSW,
        built when the generation passes ``ann_threshold``), timed apart; peak RSS of the writing process
        and peak memory of the database server meanwhile;
      - disk: ``pg_total_relation_size`` of every table (indexes and TOAST included), the HNSW index
        apart, and the database (WAL not included);
      - one more document, as a UI upload adds it: a new generation referencing every unchanged document;
      - serving in a fresh process through ``Index.load`` / ``HybridRetriever`` / ``Assistant.ask`` as the
        CLI and UI do: RSS beyond the same process with only the model loaded, load seconds, p50/p95 of
        dense search (k=80), BM25 (k=40), hybrid retrieval and ``ask``; the database server's memory
        (proportional set size of the postmaster and all its children, which counts shared buffers once);
      - HNSW recall@10 of the served dense search against exact inner product over the same vectors.

The database server is a local pgserver (PostgreSQL 16 + pgvector, default settings except
``maintenance_work_mem`` = ``--maintenance-mb`` for the HNSW build) unless ``--store`` names one.

    .venv/bin/python benchmarks/pg_scale.py --sizes 10000                          # a few minutes
    .venv/bin/python benchmarks/pg_scale.py --sizes 250000,1000000 --json runs/pg_scale.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale as S  # noqa: E402
from citeqa.config import Settings  # noqa: E402
from citeqa.errors import CiteqaError  # noqa: E402
from citeqa.index import Index  # noqa: E402
from citeqa.snapshot import empty_snapshot  # noqa: E402
from citeqa.types import ParsedDoc  # noqa: E402


# --- the database server's memory -----------------------------------------------------------------------
def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def server_pids(conn: Any) -> list[int]:
    """The postmaster and all its children (backends, checkpointer, walwriter, parallel workers)."""
    (backend,) = conn.execute("SELECT pg_backend_pid()").fetchone()
    pm = _ppid(int(backend))
    out = [pm]
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if _ppid(int(p.name)) == pm:
                    out.append(int(p.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def server_memory(pids: list[int] | None = None, conn: Any = None) -> dict[str, float] | None:
    """Sum of PSS (shared memory counted once) and of RSS over the server's processes, MiB; None when the
    server is not on this machine."""
    try:
        pids = pids if pids is not None else server_pids(conn)
    except (OSError, ValueError):
        return None
    pss = rss = 0
    n = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, _, val = line.partition(":")
                if key == "Pss":
                    pss += int(val.split()[0])
                elif key == "Rss":
                    rss += int(val.split()[0])
            n += 1
        except OSError:
            continue
    return {"pss_mb": pss / 1024, "rss_mb": rss / 1024, "processes": n}


class Sampler:
    """The server's peak PSS while a block runs (sampled every second)."""

    def __init__(self, url: str) -> None:
        import psycopg

        with psycopg.connect(url) as c:
            self.pm = server_pids(c)[0]
        self.peak = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            pids = [self.pm] + [int(p.name) for p in Path("/proc").iterdir()
                                if p.name.isdigit() and _safe_ppid(p) == self.pm]
            m = server_memory(pids)
            if m:
                self.peak = max(self.peak, m["pss_mb"])

    def __enter__(self) -> Sampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def _safe_ppid(p: Path) -> int:
    try:
        return _ppid(int(p.name))
    except (OSError, ValueError, IndexError):
        return -1


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


# --- serving (fresh process) ----------------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    from citeqa.assistant import Assistant
    from citeqa.embed import default_embedder
    from citeqa.retrieve import HybridRetriever

    settings = Settings(**json.loads(args.overrides))
    qs = json.loads((args.queries_dir / "queries.json").read_text())
    Q = np.load(args.queries_dir / "queries.npy")
    emb = default_embedder()
    emb.encode(["warm up"], 1)
    S.trim()
    res: dict[str, Any] = {"mem_model": S.mem()}
    t = time.perf_counter()
    idx = Index.load(settings, embedder=emb)
    res["load_s"] = time.perf_counter() - t
    S.trim()
    res["mem_loaded"] = S.mem()
    retr = HybridRetriever(index=idx, settings=settings, k=settings.top_k)
    t = time.perf_counter()
    retr.passages(qs[0], qvec=Q[0])
    res["first_query_s"] = time.perf_counter() - t
    n = len(qs)
    for _ in range(2):  # the first pass fills the server's and the app's caches; report the second
        res["dense"] = S.timed(lambda i: idx.search_dense(Q[i], settings.candidate_k * 2), n)
        res["bm25"] = S.timed(lambda i: idx.search_bm25(qs[i], settings.candidate_k), n)
        res["hybrid"] = S.timed(lambda i: retr.passages(qs[i], qvec=Q[i]), n)
    assistant = Assistant(idx, settings)
    res["ask"] = S.timed(lambda i: assistant.ask(qs[i]), n)
    S.trim()
    res["mem_queried"] = S.mem()
    pg = idx.pool  # type: ignore[attr-defined]
    with pg.connection() as conn:
        res["db_memory"] = server_memory(conn=conn)
        res["shared_buffers"] = conn.execute("SHOW shared_buffers").fetchone()[0]
        res["db_connections"] = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                             "current_database()").fetchone()[0]
    gen = idx.snap.derived["pg"]
    if len(idx.units) > settings.ann_threshold:  # the served dense search at each efSearch: top-10 ids
        sweep = []
        for ef in args.ef_sweep:
            gen.settings = settings.model_copy(update={"hnsw_ef_search": ef})
            got: list[list[int]] = []
            lat = S.timed(lambda i, got=got: got.append([u for u, _ in gen.dense(Q[i], 10)]), n)
            sweep.append({"ef": ef, "ids": got, "p95_ms": S.pct(lat, 95)})
        gen.settings = settings
        res["hnsw_ids"] = sweep
    for key in ("dense", "bm25", "hybrid", "ask"):
        xs = res.pop(key)
        res[key] = {"p50": S.pct(xs, 50), "p95": S.pct(xs, 95), "max": max(xs)}
    res["loadavg"] = S.loadavg()
    print("RESULT " + json.dumps(res))


def exact_top10(Q: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    n = len(Q)
    best = np.full((n, 10), -np.inf, np.float32)
    best_i = np.zeros((n, 10), np.int64)
    for a in range(0, len(vecs), 100_000):
        s = Q @ np.asarray(vecs[a : a + 100_000], np.float32).T
        cat = np.concatenate([best, s], axis=1)
        ids = np.concatenate([best_i, np.arange(a, a + s.shape[1])[None, :].repeat(n, 0)], axis=1)
        top = np.argsort(-cat, axis=1, kind="stable")[:, :10]
        best, best_i = np.take_along_axis(cat, top, 1), np.take_along_axis(ids, top, 1)
    return best_i


# --- postgres build and measurement ---------------------------------------------------------------------
def pg_measure(n: int, parsed: list[ParsedDoc], records: dict[str, Any], vecs: np.ndarray, svecs: np.ndarray,
               extra: tuple[ParsedDoc, Any, np.ndarray, np.ndarray], settings: Settings, args: argparse.Namespace,
               qdir: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    from citeqa.backends.pg_db import pool_for
    from citeqa.backends.pg_read import load_generation
    from citeqa.backends.pg_write import collect_garbage, ensure_ann_index, write_generation

    print(f"=== postgres: {n:,} units, {len(parsed):,} documents ===", flush=True)
    res: dict[str, Any] = {"units": n, "docs": len(parsed)}
    pool = pool_for(settings.store, settings.pg_pool_size)
    S.trim()
    before = S.mem()["VmRSS"]
    S.reset_peak()
    with Sampler(settings.store) as samp:
        t = time.perf_counter()
        write_generation(pool, settings, empty_snapshot(), [], parsed, records, vecs, svecs)
        res["write_s"] = time.perf_counter() - t
        print(f"  generation written in {res['write_s']:.1f} s (load avg {S.loadavg()})", flush=True)
        t = time.perf_counter()
        res["hnsw_built"] = ensure_ann_index(pool, settings, n)
        res["hnsw_s"] = time.perf_counter() - t
    res["build_s"] = res["write_s"] + res["hnsw_s"]
    res["build_peak_mb"] = S.mem()["VmHWM"] - before
    res["db_build_peak_pss_mb"] = samp.peak
    with pool.connection() as conn:
        conn.execute("VACUUM ANALYZE")
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace s ON s.oid = "
            "c.relnamespace WHERE s.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'cq_%'").fetchall()
        hnsw = conn.execute("SELECT coalesce((SELECT pg_relation_size('cq_units_hnsw'::regclass) "
                            "WHERE to_regclass('cq_units_hnsw') IS NOT NULL), 0)").fetchone()[0]
        (db_size,) = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    res["disk"] = {str(k): int(v) for k, v in rows}
    res["disk"]["cq_units (without hnsw)"] = res["disk"].pop("cq_units", 0) - int(hnsw)
    res["disk"]["cq_units_hnsw"] = int(hnsw)
    res["disk_total"] = int(db_size)
    print(f"  build {res['build_s']:.1f} s (write {res['write_s']:.1f}, HNSW {res['hnsw_s']:.1f}; writer peak "
          f"+{res['build_peak_mb']:,.0f} MB, server peak PSS {samp.peak:,.0f} MB); database "
          f"{db_size / 2**20:,.0f} MB: " + ", ".join(
              f"{k} {v / 2**20:,.0f}" for k, v in sorted(res["disk"].items(), key=lambda x: -x[1])[:6]), flush=True)
    pd, rec, v, sv = extra
    old = load_generation(pool, settings)
    t = time.perf_counter()
    write_generation(pool, settings, old, list(old.docs), [pd], {**old.docs, pd.meta.doc: rec}, v, sv)
    collect_garbage(pool, settings)
    ensure_ann_index(pool, settings, n + len(pd.units))
    res["add_doc_s"] = time.perf_counter() - t
    del old
    print(f"  adding one {len(pd.units)}-unit document: {res['add_doc_s']:.1f} s", flush=True)
    S.trim()
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--queries-dir", str(qdir), "--overrides", json.dumps(overrides),
         "--ef-sweep", ",".join(map(str, args.ef_sweep))], capture_output=True, text=True, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"serving process failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    serve = json.loads(line[7:])
    if "hnsw_ids" in serve:
        Q = np.load(qdir / "queries.npy")
        exact = exact_top10(Q, np.vstack([vecs, v]))
        res["hnsw"] = [{"ef": s["ef"], "p95_ms": s["p95_ms"],
                        "recall10": float(np.mean([len(set(g) & set(e.tolist())) / 10
                                                   for g, e in zip(s["ids"], exact, strict=True)]))}
                       for s in serve.pop("hnsw_ids")]
    res.update(serve)
    m0, m2 = serve["mem_model"], serve["mem_queried"]
    res["ram_beyond_model_mb"] = m2["VmRSS"] - m0["VmRSS"]
    res["anon_beyond_model_mb"] = m2["RssAnon"] - m0["RssAnon"]
    res["index_ram_mb"] = res["anon_beyond_model_mb"]
    db = serve.get("db_memory") or {}
    print(f"  serving (fresh process, load avg {serve['loadavg']}): load {serve['load_s']:.2f} s, first question "
          f"{serve['first_query_s'] * 1000:.0f} ms; app RSS beyond the model +{res['ram_beyond_model_mb']:,.0f} MB "
          f"(anonymous +{res['anon_beyond_model_mb']:,.0f}); database server PSS {db.get('pss_mb', 0):,.0f} MB "
          f"over {db.get('processes')} processes (shared_buffers {serve['shared_buffers']})")
    print("  ms p50/p95: " + ", ".join(f"{k} {serve[k]['p50']:.1f}/{serve[k]['p95']:.1f}"
                                        for k in ("dense", "bm25", "hybrid", "ask")))
    for s in res.get("hnsw", []):
        print(f"  HNSW efSearch {s['ef']:>4}: recall@10 {s['recall10']:.3f}, k=10 search p95 {s['p95_ms']:.2f} ms")
    print(flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000", help="comma-separated unit counts")
    ap.add_argument("--backends", default="file,postgres", help="which backends to measure, in this order")
    ap.add_argument("--store", default="", help="postgresql:// URL of a server (default: a throwaway pgserver); "
                    "one database per size is created on it")
    ap.add_argument("--maintenance-mb", type=int, default=4096, help="CITEQA_PG_MAINTENANCE_MB for the HNSW build "
                    "(the graph of 1M 384-d vectors needs about 3 GB to be built in memory)")
    ap.add_argument("--ann-threshold", type=int, default=None, help="override Settings.ann_threshold (both backends)")
    ap.add_argument("--real", type=int, default=2000, help="texts embedded for real (base units)")
    ap.add_argument("--units-per-doc", type=int, default=100)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ef-sweep", default="64,128,256,512", help="efSearch values for the HNSW recall sweep")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "citeqa-scale-cache")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--keep", action="store_true", help="keep each size's database")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here (after each size)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--queries-dir", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.ef_sweep = [int(e) for e in args.ef_sweep.split(",")]
    if args.child:
        child(args)
        return
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    sizes = sorted(int(s) for s in args.sizes.split(","))
    n_max, n_base = max(sizes), min(args.real, max(sizes))
    common = {} if args.ann_threshold is None else {"ann_threshold": args.ann_threshold}
    base_settings = Settings(**common)
    tmp = Path(tempfile.mkdtemp(prefix="citeqa-bench-pgscale-"))
    srv = None
    url = args.store
    if "postgres" in backends and not url:
        from citeqa.backends.pg_db import start_local

        srv, url = start_local(tmp / "pg")
    print(f"machine: {os.cpu_count()} cores, load avg {S.loadavg()}; ann_threshold {base_settings.ann_threshold}, "
          f"HNSW M {base_settings.hnsw_m}, efConstruction {base_settings.hnsw_ef_construction}, efSearch "
          f"{base_settings.hnsw_ef_search}; postgres {'local pgserver' if srv else 'given'}", flush=True)
    results: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    try:
        try:
            seed = Index.load(Settings())
        except CiteqaError:
            seed = Index.build([Settings().seeds_dir], Settings(index_dir=tmp / "seed-index"))
        emb = seed.embedder
        rng = random.Random(args.seed)
        corpus = S.Corpus(seed)
        t = time.perf_counter()
        parsed, records, parent = S.build_corpus(corpus, n_max, n_base, args.units_per_doc, rng)
        extra_pd, extra_rec = S.make_doc(999_999, [corpus.make(rng) for _ in range(args.units_per_doc)])
        all_units = [u for pd in parsed for u in pd.units]
        print(f"generated {n_max:,} units in {len(parsed):,} documents in {time.perf_counter() - t:.1f} s", flush=True)
        base_texts = [u.embed_text for u in all_units[:n_base]]
        key = hashlib.sha256(json.dumps([args.seed, n_base, args.units_per_doc, base_texts[:50]]).encode()
                             ).hexdigest()[:12]
        base = S.real_vectors(lambda x: emb.encode(x, 64), base_texts, args.cache_dir, key)
        crng = random.Random(args.seed + 1)
        calib = list(range(0, n_base, max(1, n_base // 100)))[:100]
        var = emb.encode([S.embed_text(all_units[i].kind, all_units[i].section,
                                       [S.vary(s.text, crng) for s in all_units[i].sentences]) for i in calib], 64)
        cos = float(np.mean(np.sum(var * base[calib], axis=1)))
        sigma = float(np.sqrt(max(1 / cos**2 - 1, 1e-6) / base.shape[1]))
        vecs, svecs = S.synth_vectors(parsed, base, parent, sigma, args.seed)
        ev = emb.encode([u.embed_text for u in extra_pd.units], 64).astype(np.float16)
        esv = emb.encode([s.text for u in extra_pd.units if u.kind == "chunk" and len(u.sentences) > 1
                          for s in u.sentences], 64).astype(np.float16)
        print(f"vectors: {n_base:,} real, the rest perturbed (cos {cos:.3f} -> sigma {sigma:.4f}/dim); "
              f"{len(svecs):,} sentence vectors", flush=True)
        qs = [json.loads(x)["question"] for x in S.QUESTIONS.read_text(encoding="utf-8").splitlines() if x.strip()]
        qrng = random.Random(args.seed + 2)
        while len(qs) < args.queries:
            qs.append(" ".join(qrng.choice(corpus.sentences)[1].split()[:12]))
        qs = qs[: args.queries]
        (tmp / "queries.json").write_text(json.dumps(qs))
        np.save(tmp / "queries.npy", np.vstack([emb.encode([q], 1)[0] for q in qs]).astype(np.float32))
        del seed, all_units
        args.keep_dir = None
        for n in sizes:
            n_docs = -(-n // args.units_per_doc)
            sub = parsed[:n_docs]
            n_units = sum(len(pd.units) for pd in sub)
            n_sent = sum(len(u.sentences) for pd in sub for u in pd.units if u.kind == "chunk" and len(u.sentences) > 1)
            for b in backends:
                if b == "file":
                    fargs = argparse.Namespace(keep=None, overrides_json=json.dumps(common), ef_sweep=args.ef_sweep)
                    fs = base_settings.model_copy(update={"index_dir": tmp / f"index-{n}"})
                    results[b].append(S.measure(n_units, sub, records, vecs[:n_units], svecs[:n_sent],
                                                (extra_pd, extra_rec, ev, esv), fs, fargs, tmp))
                else:
                    import psycopg

                    name = f"citeqa_scale_{n}"
                    with psycopg.connect(url, autocommit=True) as c:
                        c.execute(f"DROP DATABASE IF EXISTS {name}")
                        c.execute(f"CREATE DATABASE {name}")
                    overrides = {**common, "store": with_db(url, name), "pg_maintenance_mb": args.maintenance_mb}
                    ps = base_settings.model_copy(update=overrides)
                    results[b].append(pg_measure(n_units, sub, records, vecs[:n_units], svecs[:n_sent],
                                                 (extra_pd, extra_rec, ev, esv), ps, args, tmp, overrides))
                    if not args.keep:
                        from citeqa.backends.pg_db import pool_for

                        pool_for(ps.store, ps.pg_pool_size).close()
                        with psycopg.connect(url, autocommit=True) as c:
                            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                if args.json:
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    args.json.write_text(json.dumps({"sigma": sigma, "real": n_base, "results": results}, indent=2))
        summary(results)
    finally:
        if srv is not None:
            srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def summary(results: dict[str, list[dict[str, Any]]]) -> None:
    print("summary: app RAM = RSS of a serving process beyond the same process with only the model loaded; "
          "db RAM = PSS of the database server's processes after the queries")
    print(f"{'backend':>9} {'units':>10} {'build s':>8} {'+1 doc s':>8} {'disk MB':>8} {'app RAM':>8} "
          f"{'db RAM':>7} {'dense p95':>9} {'bm25 p95':>9} {'hybrid p50/p95':>15} {'ask p50/p95':>13} "
          f"{'recall@10':>9}")
    nan = float("nan")
    for b, rs in results.items():
        for r in rs:
            ef = Settings().hnsw_ef_search  # the default the product serves with
            rec = next((s["recall10"] for s in r.get("hnsw", []) if s["ef"] == ef), 1.0 if "hnsw" not in r else nan)
            db = (r.get("db_memory") or {}).get("pss_mb", nan) if b == "postgres" else nan
            print(f"{b:>9} {r['units']:>10,} {r.get('build_s', nan):>8.1f} {r.get('add_doc_s', nan):>8.1f} "
                  f"{r.get('disk_total', nan) / 2**20:>8,.0f} {r['ram_beyond_model_mb']:>8,.0f} {db:>7,.0f} "
                  f"{r['dense']['p95']:>9.1f} {r['bm25']['p95']:>9.1f} "
                  f"{r['hybrid']['p50']:>7.1f}/{r['hybrid']['p95']:<7.1f} "
                  f"{r['ask']['p50']:>6.1f}/{r['ask']['p95']:<6.1f} "
                  f"{rec:>9.3f}", flush=True)


if __name__ == "__main__":
    main()

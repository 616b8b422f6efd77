"""Warm answer latency with and without the cross-encoder re-scorer, measured in one run.

Every question of ``evals/seeds_questions.jsonl`` is asked by two assistants over the same index, one
with ``rescore=False`` and one with ``rescore=True``, alternating question by question (so both see the
same machine load); ``--passes`` times after a warm-up. Prints p50 / p95 of the whole answer and of the
``score`` stage (where the re-scorer runs), and how many answers' first citation changed.

    CITEQA_INDEX_DIR=/path/to/seeds-index .venv/bin/python benchmarks/rescore_latency.py [--k 5] [--passes 2]

Without ``CITEQA_INDEX_DIR`` the seeds are indexed into a temporary directory first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from citeqa.assistant import Assistant  # noqa: E402
from citeqa.config import Settings  # noqa: E402
from citeqa.errors import CiteqaError  # noqa: E402
from citeqa.index import Index  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=5, help="candidates re-scored")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--questions", type=Path, default=ROOT / "evals" / "seeds_questions.jsonl")
    args = ap.parse_args()
    rows = [json.loads(x) for x in args.questions.read_text(encoding="utf-8").split("\n") if x.strip()]
    tmp = None
    base = Settings()
    if not os.environ.get("CITEQA_INDEX_DIR"):
        tmp = Path(tempfile.mkdtemp(prefix="citeqa-bench-rescore-"))
        base = Settings(index_dir=tmp / "index", seeds_dir=ROOT / "seeds")
    try:
        try:
            idx = Index.load(base)
        except CiteqaError:
            Index.build([base.seeds_dir], base)
            idx = Index.load(base)
        off = Assistant(idx, base.model_copy(update={"rescore": False}))
        on = Assistant(idx, base.model_copy(update={"rescore": True, "rescore_k": args.k}))
        for r in rows[:3]:
            off.ask(r["question"])
            on.ask(r["question"])
        got: dict[str, dict[str, list[float]]] = {"off": {"total": [], "score": []}, "on": {"total": [], "score": []}}
        changed = 0
        print(f"machine: {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.2f}; k={args.k}")
        for _ in range(args.passes):
            for r in rows:
                hist = [tuple(h) for h in r.get("history") or []]
                firsts = []
                for name, a in (("off", off), ("on", on)):
                    t = time.perf_counter()
                    ans = a.ask(r["question"], hist)
                    got[name]["total"].append((time.perf_counter() - t) * 1000)
                    got[name]["score"].append(float(ans.timings_ms.get("score", 0.0)))
                    firsts.append((ans.citations[0].doc, ans.citations[0].start) if ans.citations else None)
                changed += int(firsts[0] != firsts[1])
        print(f"{len(rows)} questions x {args.passes} passes, load avg at end {os.getloadavg()[0]:.2f}")
        print(f"  {'':<12}{'total p50':>10}{'total p95':>10}{'score p50':>10}{'score p95':>10}")
        for name in ("off", "on"):
            g = got[name]
            print(f"  rescore {name:<4}{np.percentile(g['total'], 50):10.1f}{np.percentile(g['total'], 95):10.1f}"
                  f"{np.percentile(g['score'], 50):10.1f}{np.percentile(g['score'], 95):10.1f}")
        print(f"  first citation changed: {changed} of {len(rows) * args.passes} answers")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

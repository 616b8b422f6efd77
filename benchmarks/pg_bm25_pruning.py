"""BM25 on PostgreSQL, exact against pruned, on a built database (e.g. one kept by ``pg_scale.py --keep``):
latency of ``Generation.bm25`` (k=40) both ways per question, the share of questions past the posting
budget, top-40 overlap and the pruned result's BM25 score mass relative to the exact top-40.

    .venv/bin/python benchmarks/pg_bm25_pruning.py postgresql://.../citeqa_scale_250000 queries.json --n 40

``queries.json``: a JSON list of question strings (pg_scale.py writes one into its temporary directory).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from citeqa.backends import pg_read  # noqa: E402
from citeqa.config import Settings  # noqa: E402
from citeqa.index import Index  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store")
    ap.add_argument("queries", type=Path)
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    qs = json.loads(args.queries.read_text())[: args.n]
    idx = Index.load(Settings(store=args.store))
    gen = idx.snap.derived["pg"]
    lat: dict[str, list[float]] = {"exact": [], "pruned": []}
    over, mass = [], []
    pruned_q = 0
    for q in qs:
        tids = idx.term_ids(q)
        dfs = gen.df(tids)
        pruned_q += sum(dfs[t] for t in set(tids) if dfs.get(t)) > pg_read._FULL_SCORING_POSTINGS
        t = time.perf_counter()
        p = gen.bm25(tids, 40)
        lat["pruned"].append(time.perf_counter() - t)
        keep = pg_read._FULL_SCORING_POSTINGS
        pg_read._FULL_SCORING_POSTINGS = 10**12  # type: ignore[misc]
        t = time.perf_counter()
        e = gen.bm25(tids, 40)
        lat["exact"].append(time.perf_counter() - t)
        pg_read._FULL_SCORING_POSTINGS = keep  # type: ignore[misc]
        if e:
            over.append(len({u for u, _ in p} & {u for u, _ in e}) / len(e))
            mass.append(sum(x for _, x in p) / sum(x for _, x in e))
    out = {"units": len(idx.units), "questions": len(qs), "questions_pruned": pruned_q,
           **{f"{k}_ms_p50_p95": [round(float(np.percentile(v, 50)) * 1000, 1),
                                  round(float(np.percentile(v, 95)) * 1000, 1)] for k, v in lat.items()},
           "top40_overlap_mean": round(float(np.mean(over)), 3), "top40_overlap_min": round(float(np.min(over)), 3),
           "score_mass_mean": round(float(np.mean(mass)), 4), "score_mass_min": round(float(np.min(mass)), 4)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

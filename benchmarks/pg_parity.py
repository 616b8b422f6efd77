"""Parity of the two storage backends: the seeds indexed into files and into PostgreSQL + pgvector, every
question of the dev and own sets asked of both; answers, refusals, citations and passages compared.

A flip is a question whose answer text, refusal, cited spans or passage list differs. Each is printed with
both sides. Latency of ``Assistant.ask`` per backend is measured in the same run (interleaved).

    .venv/bin/python benchmarks/pg_parity.py                  # starts a throwaway pgserver database
    .venv/bin/python benchmarks/pg_parity.py --store postgresql://...  --json runs/pg_parity.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from citeqa import Assistant, Index, Settings  # noqa: E402
from citeqa.embed import default_embedder  # noqa: E402


class MemoEmbedder:
    """The real model, each text embedded once for both builds (the vectors are the same either way)."""

    def __init__(self) -> None:
        self.inner = default_embedder()
        self.dim = self.inner.dim
        self.memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Any = None) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            for t, v in zip(todo, self.inner.encode(todo, batch_size, progress), strict=True):
                self.memo[t] = v
        return np.stack([self.memo[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def questions() -> list[tuple[str, dict[str, Any]]]:
    sets = [("dev", ROOT.parent / "shared" / "eval" / "dev.jsonl"), ("own", ROOT / "evals" / "seeds_questions.jsonl")]
    out = []
    for name, path in sets:
        if not path.is_file():
            print(f"note: {path} missing; set {name} skipped", file=sys.stderr)
            continue
        out += [(name, json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def view(a: Any) -> dict[str, Any]:
    return {"text": a.text, "refused": a.refused,
            "citations": [(c.doc, c.start, c.end) for c in a.citations],
            "passages": [(p["doc"], p["start"], p["end"]) for p in a.to_dict()["passages"]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="", help="postgresql:// URL (default: a throwaway local pgserver)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="citeqa-parity-"))
    srv = None
    url = args.store
    if not url:
        from citeqa.backends.pg_db import start_local

        srv, url = start_local(tmp / "pg")
    try:
        emb = MemoEmbedder()
        file_s = Settings(index_dir=tmp / "index")
        pg_s = Settings(index_dir=tmp / "index-unused", store=url)
        builds = {}
        for name, s in (("file", file_s), ("postgres", pg_s)):
            t = time.perf_counter()
            idx = Index.build([ROOT / "seeds"], s, embedder=emb)  # type: ignore[arg-type]
            builds[name] = {"seconds": round(time.perf_counter() - t, 1), "units": len(idx.units)}
            print(f"{name}: built {builds[name]}", flush=True)
        # Fresh processes' view: load what was published, as `citeqa ask` / the UI do.
        assistants = {n: Assistant(Index.load(s, embedder=emb), s)  # type: ignore[arg-type]
                      for n, s in (("file", file_s), ("postgres", pg_s))}
        for a in assistants.values():
            a.ask("warm up")
        qs = questions()
        lat: dict[str, list[float]] = {"file": [], "postgres": []}
        flips = []
        for set_name, q in qs:
            history = [tuple(h) for h in q.get("history", [])]
            got = {}
            order = list(assistants.items())
            for n, a in order if len(lat["file"]) % 2 else order[::-1]:  # alternate who goes first
                t = time.perf_counter()
                got[n] = view(a.ask(q["question"], history))
                lat[n].append((time.perf_counter() - t) * 1000)
            diff = [k for k in got["file"] if got["file"][k] != got["postgres"][k]]
            if diff:
                flips.append({"set": set_name, "id": q.get("id"), "question": q["question"], "differs": diff,
                              "file": got["file"], "postgres": got["postgres"]})
        res = {"questions": len(qs), "flips": len(flips), "builds": builds,
               "answer_flips": sum("text" in f["differs"] or "refused" in f["differs"] for f in flips),
               "latency_ms": {n: {"p50": round(float(np.percentile(v, 50)), 1),
                                  "p95": round(float(np.percentile(v, 95)), 1)} for n, v in lat.items()},
               "details": flips}
        for f in flips:
            print(f"FLIP {f['set']}/{f['id']}: {f['question']!r} differs in {f['differs']}")
            for side in ("file", "postgres"):
                print(f"  {side}: {f[side]['text'][:160]!r} cites {f[side]['citations']}")
        print(json.dumps({k: v for k, v in res.items() if k != "details"}, indent=1))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(res, indent=1), encoding="utf-8")
    finally:
        if srv is not None:
            srv.cleanup()


if __name__ == "__main__":
    main()

"""Parity of the two storage backends: each corpus indexed into files and into PostgreSQL + pgvector (a
database of its own), every question of its sets asked of both; answers, refusals, citations and
passages compared.

Corpora and question sets are ``citeqa.training.dataset.corpora()``: the seeds (dev and own sets), the
covidqa pack (82 articles) and the pubmedqa pack (abstracts); a pack missing under ../shared is skipped.
A flip is a question whose answer text, refusal, cited spans or passage list differs. Each is printed with
both sides. Latency of ``Assistant.ask`` per backend is measured in the same run (interleaved).

    .venv/bin/python benchmarks/pg_parity.py                  # starts a throwaway pgserver; every corpus
    .venv/bin/python benchmarks/pg_parity.py --corpora seeds --store postgresql://...  --json runs/pg_parity.json
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
from urllib.parse import urlsplit, urlunsplit

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


def questions(files: Sequence[tuple[str, Path]]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, path in files:
        if not path.is_file():
            print(f"note: {path} missing; set {name} skipped", file=sys.stderr)
            continue
        out += [(name, json.loads(line)) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    return out


def view(a: Any) -> dict[str, Any]:
    return {"text": a.text, "refused": a.refused,
            "citations": [(c.doc, c.start, c.end) for c in a.citations],
            "passages": [(p["doc"], p["start"], p["end"]) for p in a.to_dict()["passages"]]}


def with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def compare(corpus: Any, url: str, tmp: Path, emb: MemoEmbedder) -> dict[str, Any]:
    """Build ``corpus`` on both backends and ask every question of its sets of both."""
    import psycopg

    db = f"citeqa_parity_{corpus.name}"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {db}")
    file_s = Settings(index_dir=tmp / f"index-{corpus.name}", seeds_dir=corpus.docs_dir)
    pg_s = Settings(index_dir=tmp / f"unused-{corpus.name}", store=with_db(url, db), seeds_dir=corpus.docs_dir)
    builds = {}
    for name, s in (("file", file_s), ("postgres", pg_s)):
        t = time.perf_counter()
        idx = Index.build([corpus.docs_dir], s, embedder=emb)  # type: ignore[arg-type]
        builds[name] = {"seconds": round(time.perf_counter() - t, 1), "units": len(idx.units),
                        "documents": len(idx.snap.docs)}
        print(f"{corpus.name} {name}: built {builds[name]}", flush=True)
    # Fresh processes' view: load what was published, as `citeqa ask` / the UI do.
    assistants = {n: Assistant(Index.load(s, embedder=emb), s)  # type: ignore[arg-type]
                  for n, s in (("file", file_s), ("postgres", pg_s))}
    for a in assistants.values():
        a.ask("warm up")
    qs = questions(corpus.question_files)
    lat: dict[str, list[float]] = {"file": [], "postgres": []}
    flips = []
    per_set: dict[str, int] = {}
    for set_name, q in qs:
        per_set[set_name] = per_set.get(set_name, 0) + 1
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
    for f in flips:
        print(f"FLIP {f['set']}/{f['id']}: {f['question']!r} differs in {f['differs']}")
        for side in ("file", "postgres"):
            print(f"  {side}: {f[side]['text'][:160]!r} cites {f[side]['citations']}")
    from citeqa.backends.pg_db import pool_for

    pool_for(pg_s.store, pg_s.pg_pool_size).close()
    return {"corpus": corpus.name, "questions": per_set, "flips": len(flips), "builds": builds,
            "answer_flips": sum("text" in f["differs"] or "refused" in f["differs"] for f in flips),
            "latency_ms": {n: {"p50": round(float(np.percentile(v, 50)), 1),
                               "p95": round(float(np.percentile(v, 95)), 1)} for n, v in lat.items()},
            "details": flips}


def main() -> None:
    from citeqa.training.dataset import corpora

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="", help="postgresql:// URL of a server on which one database per corpus "
                    "is created (default: a throwaway local pgserver)")
    ap.add_argument("--corpora", default="", help="comma-separated corpus names (default: every one present)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    wanted = [c for c in args.corpora.split(",") if c]
    chosen = [c for c in corpora() if (not wanted or c.name in wanted) and c.docs_dir.is_dir()]
    tmp = Path(tempfile.mkdtemp(prefix="citeqa-parity-"))
    srv = None
    url = args.store
    if not url:
        from citeqa.backends.pg_db import start_local

        srv, url = start_local(tmp / "pg")
    try:
        emb = MemoEmbedder()
        runs = []
        for corpus in chosen:
            runs.append(compare(corpus, url, tmp, emb))
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "details"}, indent=1), flush=True)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(runs, indent=1), encoding="utf-8")
        total = sum(sum(r["questions"].values()) for r in runs)
        print(f"total: {total} questions over {len(runs)} corpora, {sum(r['flips'] for r in runs)} flips "
              f"({sum(r['answer_flips'] for r in runs)} in answer text or refusal)")
    finally:
        if srv is not None:
            srv.cleanup()


if __name__ == "__main__":
    main()

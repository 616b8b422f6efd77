"""Two `citeqa ui` replicas over one PostgreSQL database: an upload through one is answered by the other,
and N concurrent users split over both get their own, correct answers.

1. starts a throwaway pgserver database (or uses ``--store``) and two UI processes on two free ports with
   ``CITEQA_STORE`` set; the first builds the seeds into the database, the second waits on the build lock
   and serves the same generation;
2. uploads a new document through replica A (``/add_documents``) and asks replica B about it through the
   stateless ``/answer`` until B cites it: the seconds from the upload's completion to B's cited answer;
3. N users at once (half on each replica, one session each) ask different questions through ``/ask``;
   each answer must equal the single-user answer to the same question from the other replica.

    .venv/bin/python benchmarks/pg_replicas.py --users 20 --out runs/pg_replicas.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_concurrency import QUESTIONS, ask, client, fingerprint, free_port, load_questions, pct, start_app, wait_http

ROOT = Path(__file__).resolve().parents[1]
NEW_DOC = """Omega registry of drug Q in adults with relapsed myeloma.
The 3-year overall survival was 58.3% among 412 patients treated with drug Q.
Grade 3 thrombocytopenia occurred in 21 patients.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--store", default="", help="postgresql:// URL (default: a throwaway local pgserver)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="citeqa-replicas-"))
    srv = None
    url = args.store
    if not url:
        sys.path.insert(0, str(ROOT / "src"))
        from citeqa.backends.pg_db import start_local

        srv, url = start_local(tmp / "pg")
    procs = []
    try:
        urls = []
        for name in ("a", "b"):
            port = free_port()
            env = {"CITEQA_STORE": url, "CITEQA_UPLOAD_DIR": str(tmp / f"uploads-{name}"),
                   "CITEQA_INDEX_DIR": str(tmp / f"unused-{name}"), "CITEQA_ANSWER_MODE": "extractive"}
            procs.append((start_app(port, env, tmp / f"{name}.log"), tmp / f"{name}.log"))
            urls.append(f"http://127.0.0.1:{port}/")
        t0 = time.monotonic()
        for u, (p, log) in zip(urls, procs, strict=True):
            wait_http(u, p, 180, log)
            ask(client(u), "warm-up: what is blinatumomab?")
        print(f"both replicas ready in {time.monotonic() - t0:.1f} s", flush=True)

        # 2. upload through A, answered by B
        from gradio_client import handle_file

        doc = tmp / "omega_registry.txt"
        doc.write_text(NEW_DOC, encoding="utf-8")
        ca, cb = client(urls[0]), client(urls[1])
        t_up = time.perf_counter()
        ca.predict([handle_file(str(doc))], api_name="/add_documents")
        upload_s = time.perf_counter() - t_up
        t_done = time.perf_counter()
        seen_after = None
        for _ in range(100):
            ans = cb.predict("What was the 3-year overall survival with drug Q?", api_name="/answer")
            if any(c["doc"] == doc.name for c in ans["citations"]) and "58.3%" in ans["answer"]:
                seen_after = time.perf_counter() - t_done
                break
            time.sleep(0.05)
        print(f"upload through A took {upload_s:.2f} s; B answered from it {seen_after} s after", flush=True)

        # 3. N users over both replicas
        items = load_questions(QUESTIONS, args.users)
        base = {}
        for i, it in enumerate(items):  # single-user answers, each from the replica the user will NOT use
            a, _, _ = ask(client(urls[(i + 1) % 2]), it["question"])
            base[it["question"]] = fingerprint(a)
        clients = [client(urls[i % 2]) for i in range(len(items))]
        barrier = threading.Barrier(len(items))
        results: list[dict[str, Any] | None] = [None] * len(items)

        def user(i: int) -> None:
            barrier.wait(timeout=60)
            try:
                a, _conv, dt = ask(clients[i], items[i]["question"])
                results[i] = {"answer": a, "latency": dt, "end": time.perf_counter()}
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = {"error": f"{type(e).__name__}: {e}", "end": time.perf_counter()}

        threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(len(items))]
        t_start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=400)
        wall = max(r["end"] for r in results if r) - t_start
        failures, lat = [], []
        for it, r in zip(items, results, strict=True):
            if r is None or "error" in r:
                failures.append(f"{it['id']}: {r and r.get('error')}")
                continue
            lat.append(r["latency"])
            if fingerprint(r["answer"]) != base[it["question"]]:
                failures.append(f"{it['id']}: answer differs from the other replica's single-user answer")
        report = {
            "replicas": 2, "users": len(items), "upload_s": round(upload_s, 2),
            "other_replica_answers_new_doc_after_s": None if seen_after is None else round(seen_after, 3),
            "concurrent_wall_s": round(wall, 2), "throughput_qps": round(len(lat) / wall, 2) if wall else None,
            "latency_p50_s": round(pct(lat, 50), 3) if lat else None,
            "latency_p95_s": round(pct(lat, 95), 3) if lat else None,
            "errors_or_mismatches": failures, "cpu_count": os.cpu_count(),
        }
        print(json.dumps(report, indent=2))
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return 0 if not failures and seen_after is not None else 1
    finally:
        for p, _log in procs:
            p.terminate()
            try:
                p.wait(timeout=15)
            except Exception:  # noqa: BLE001
                p.kill()
        if srv is not None:
            srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())

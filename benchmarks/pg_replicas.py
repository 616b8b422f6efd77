"""Two `citeqa ui` replicas over one PostgreSQL database: an upload through one is answered by the other,
N concurrent users split over both get their own, correct answers, and a build killed with SIGKILL
leaves the replicas answering from the previous generation.

1. starts a throwaway pgserver database (or uses ``--store``) and two ``citeqa ui --port N`` processes
   with ``CITEQA_STORE`` set; the first builds the seeds into the database, the second waits on the build
   lock and serves the same generation;
2. uploads a new document through replica A (``/add_documents``) and asks replica B about it through the
   stateless ``/answer`` until B cites it: the seconds from the upload's completion to B's cited answer;
3. N users at once (half on each replica, one session each) ask different questions through ``/ask``;
   each answer must equal the single-user answer to the same question from the other replica;
4. ``citeqa index --store URL big.txt`` (a ~1,500-sentence document) is killed with SIGKILL while its
   generation's transaction is open (seen in ``pg_stat_activity``); meanwhile and afterwards replica B
   answers every question from the previous generation (a seed question answered, the new document
   never cited); then the same command is rerun, completes, and B answers from the new document.

    .venv/bin/python benchmarks/pg_replicas.py --users 20 --out runs/pg_replicas.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_concurrency import QUESTIONS, ask, client, fingerprint, free_port, load_questions, pct, wait_http

ROOT = Path(__file__).resolve().parents[1]
SEED_Q = "What was the median overall survival with blinatumomab in TOWER?"
BIG_Q = "What was the median event-free survival with drug K in the Sigma trial?"
NEW_DOC = """Omega registry of drug Q in adults with relapsed myeloma.
The 3-year overall survival was 58.3% among 412 patients treated with drug Q.
Grade 3 thrombocytopenia occurred in 21 patients.
"""


def env_for(store: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    env.update(CITEQA_STORE=store, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    # this checkout's code, also when the venv's editable install points at another one
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def start_ui(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``citeqa ui --port PORT``, exactly as a user starts a replica."""
    return subprocess.Popen([sys.executable, "-m", "citeqa.cli", "ui", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def big_document(path: Path) -> None:
    """About 1,500 sentences (embedding takes tens of seconds, the write about a second) holding one fact."""
    lines = ["Sigma trial of drug K in adults with relapsed lymphoma.",
             "The median event-free survival was 27.9 months with drug K and 8.4 months with standard care."]
    for i in range(1500):
        lines.append(f"In site {i} of the Sigma trial, {10 + i % 80} patients enrolled and {i % 13} withdrew "
                     f"before week {4 + i % 40}.")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def kill_during_build(url: str, env: dict[str, str], cb: Any, tmp: Path) -> dict[str, Any]:
    """Phase 4: SIGKILL a CLI build inside its transaction while replica B answers; rerun it."""
    import psycopg

    big = tmp / "sigma_trial.txt"
    big_document(big)
    cmd = [sys.executable, "-m", "citeqa.cli", "index", "--store", url, str(big)]
    answers: list[tuple[str, bool, bool, str]] = []  # (question, seed answered, new doc cited, error)
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            q = SEED_Q if len(answers) % 2 else BIG_Q
            try:
                a = cb.predict(q, api_name="/answer")
                cites_big = any(c["doc"] == big.name for c in a["citations"])
                answers.append((q, "months" in a["answer"] and not a.get("refused"), cites_big, ""))
            except Exception as e:  # noqa: BLE001 - counted as a failure
                answers.append((q, False, False, f"{type(e).__name__}: {e}"))

    asker = threading.Thread(target=keep_asking, daemon=True)
    asker.start()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_in_tx, t_kill = False, None
    with psycopg.connect(url, autocommit=True) as c:
        while proc.poll() is None and time.perf_counter() - t0 < 600:
            # the build's connection has written rows (it holds a transaction id) but not committed
            row = c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                            "backend_xid IS NOT NULL AND pid <> pg_backend_pid()").fetchone()
            if row and row[0]:
                os.kill(proc.pid, signal.SIGKILL)
                t_kill, killed_in_tx = time.perf_counter(), True
                break
            time.sleep(0.01)
        proc.wait(30)
        time.sleep(3)  # replica B keeps answering after the kill
        stored = c.execute("SELECT count(*) FROM cq_documents WHERE name = %s", (big.name,)).fetchone()
    stop.set()
    asker.join(120)
    during = list(answers)
    rerun_t = time.perf_counter()
    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    rerun_s = time.perf_counter() - rerun_t
    after = cb.predict(BIG_Q, api_name="/answer")
    return {
        "killed_inside_transaction": killed_in_tx, "returncode_killed": proc.returncode,
        "seconds_build_ran_before_kill": None if t_kill is None else round(t_kill - t0, 1),
        "new_doc_rows_after_kill": int(stored[0]) if stored else None,
        "replica_b_answers_while_building_and_after_kill": len(during),
        "replica_b_errors": [a[3] for a in during if a[3]],
        "replica_b_seed_questions": sum(a[0] == SEED_Q for a in during),
        "replica_b_seed_answers_ok": sum(a[1] for a in during if a[0] == SEED_Q),
        "replica_b_cited_unfinished_doc": sum(a[2] for a in during),
        "rerun_returncode": rerun.returncode, "rerun_s": round(rerun_s, 1),
        "rerun_output": rerun.stdout.strip().splitlines()[-1:] if rerun.stdout else rerun.stderr[-300:],
        "after_rerun_b_cites_new_doc": any(c["doc"] == big.name for c in after["citations"]),
        "after_rerun_answer": after["answer"][:160],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--store", default="", help="postgresql:// URL (default: a throwaway local pgserver)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--skip-kill", action="store_true", help="skip phase 4 (the killed build)")
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
            env = env_for(url, {"CITEQA_UPLOAD_DIR": str(tmp / f"uploads-{name}"),
                                "CITEQA_INDEX_DIR": str(tmp / f"unused-{name}"), "CITEQA_ANSWER_MODE": "extractive"})
            procs.append((start_ui(port, env, tmp / f"{name}.log"), tmp / f"{name}.log"))
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
        import psycopg

        with psycopg.connect(url) as c:  # the upload went into the database, not only A's upload folder
            in_db = c.execute("SELECT count(*) FROM cq_documents WHERE name = %s AND body LIKE %s",
                              (doc.name, "%58.3%")).fetchone()[0]

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
        kill = None if args.skip_kill else kill_during_build(url, env_for(url), cb, tmp)
        if kill is not None:
            print("kill -9 during a build: " + json.dumps(kill), flush=True)
            if not (kill["killed_inside_transaction"] and kill["new_doc_rows_after_kill"] == 0
                    and not kill["replica_b_errors"] and not kill["replica_b_cited_unfinished_doc"]
                    and kill["rerun_returncode"] == 0 and kill["after_rerun_b_cites_new_doc"]):
                failures.append("kill -9 phase: see its figures")
        report = {
            "replicas": 2, "users": len(items), "upload_s": round(upload_s, 2), "uploaded_doc_rows_in_db": in_db,
            "other_replica_answers_new_doc_after_s": None if seen_after is None else round(seen_after, 3),
            "concurrent_wall_s": round(wall, 2), "throughput_qps": round(len(lat) / wall, 2) if wall else None,
            "latency_p50_s": round(pct(lat, 50), 3) if lat else None,
            "latency_p95_s": round(pct(lat, 95), 3) if lat else None,
            "errors_or_mismatches": failures, "cpu_count": os.cpu_count(),
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()), "kill_during_build": kill,
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

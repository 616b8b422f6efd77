"""Concurrency benchmark for the web UI: N simultaneous users through the Gradio HTTP API.

Starts ``python -m ui.app`` on a free 127.0.0.1 port, then

1. asks every question once, one at a time (baseline answers and single-user latency);
2. starts N users at once (one ``gradio_client.Client`` = one browser session each, in threads), each
   asking a different question through the chat event ``/ask``;
3. checks that every user got *its own* answer: the answer's question is the one sent, the answer text
   and citations equal the single-user baseline for that question, and the user's conversation holds
   exactly its own question and one answer (no state mixed between sessions);
4. reports throughput and latency percentiles, and writes them as JSON.

Traffic goes to 127.0.0.1 only; every request has a timeout and the run stops by itself.

    python benchmarks/ui_concurrency.py                 # 20 users, reuses the default index
    python benchmarks/ui_concurrency.py --users 20 --fresh-index --out runs/ui_concurrency.json
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "evals" / "seeds_questions.jsonl"
REQUEST_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_questions(path: Path, n: int) -> list[dict[str, Any]]:
    """``n`` distinct stand-alone, answerable questions (no follow-ups)."""
    items = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            item = json.loads(line)
            if item.get("history") or not item.get("must_contain") or item["question"] in seen:
                continue
            seen.add(item["question"])
            items.append(item)
            if len(items) == n:
                break
    if len(items) < n:
        raise SystemExit(f"{path} has only {len(items)} usable questions; need {n}")
    return items


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


def start_app(port: int, env_extra: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(env_extra)
    env.update(CITEQA_HOST="127.0.0.1", CITEQA_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(ROOT)) if p)
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "ui.app"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
    )


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"app not reachable after {timeout:.0f} s")


def client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": REQUEST_TIMEOUT_S})


def fingerprint(ans: dict[str, Any]) -> tuple[Any, ...]:
    return (
        ans.get("answer"),
        ans.get("refused"),
        tuple((c["doc"], c["start"], c["end"]) for c in ans.get("citations", [])),
    )


def ask(c: Any, question: str) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """One chat turn through ``/ask``: (answer dict, conversation, seconds)."""
    t0 = time.perf_counter()
    job = c.submit(question, api_name="/ask")
    result = job.result(timeout=REQUEST_TIMEOUT_S)
    dt = time.perf_counter() - t0
    _, conversation, answer, *_ = result
    return answer, conversation, dt


def _text(msg: dict[str, Any]) -> str:
    """Plain text of a chat message (the UI sends escaped HTML)."""
    content = msg.get("content")
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return html.unescape(re.sub(r"<[^>]+>", "", str(content))).strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--fresh-index", action="store_true", help="build a new index in a temp dir first")
    ap.add_argument("--url", help="use a UI that is already running on 127.0.0.1 instead of starting one")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)

    items = load_questions(args.questions, args.users)
    tmp = Path(tempfile.mkdtemp(prefix="citeqa-bench-"))
    log = tmp / "app.log"
    proc = None
    if args.url:
        if not args.url.startswith(("http://127.0.0.1", "http://localhost")):
            raise SystemExit("--url must point at this machine (127.0.0.1)")
        url = args.url
    else:
        env = {"CITEQA_UPLOAD_DIR": str(tmp / "uploads"), "CITEQA_ANSWER_MODE": "extractive"}
        if args.fresh_index:
            env["CITEQA_INDEX_DIR"] = str(tmp / "index")
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        t0 = time.monotonic()
        proc = start_app(port, env, log)
    try:
        if proc is not None:
            wait_http(url, proc, 120, log)
        # Warm-up: waits for the index to open (or be built) and loads the models.
        t0 = time.monotonic()
        ask(client(url), "warm-up: what is blinatumomab?")
        ready_s = time.monotonic() - t0
        print(f"app ready (index open + first answer) in {ready_s:.1f} s", flush=True)

        # 1. single-user baseline
        base: dict[str, tuple[Any, ...]] = {}
        seq_lat: list[float] = []
        for it in items:
            # A fresh session per question: one session would carry the earlier questions as history, and a
            # question that reads as a follow-up ("...than those in...") would be answered in that context.
            ans, _, dt = ask(client(url), it["question"])
            base[it["question"]] = fingerprint(ans)
            seq_lat.append(dt)
        print(
            f"sequential: {len(items)} questions, mean {statistics.mean(seq_lat):.2f} s, "
            f"p95 {pct(seq_lat, 95):.2f} s",
            flush=True,
        )

        # 2. N simultaneous users, one session each
        clients = [client(url) for _ in items]
        barrier = threading.Barrier(len(items))
        results: list[dict[str, Any] | None] = [None] * len(items)

        def user(i: int) -> None:
            it = items[i]
            barrier.wait(timeout=60)
            try:
                ans, conv, dt = ask(clients[i], it["question"])
                results[i] = {"answer": ans, "conversation": conv, "latency": dt, "end": time.perf_counter()}
            except Exception as e:  # noqa: BLE001 - reported as a failure below
                results[i] = {"error": f"{type(e).__name__}: {e}", "end": time.perf_counter()}

        threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(len(items))]
        t_start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=REQUEST_TIMEOUT_S + 60)
        wall = max(r["end"] for r in results if r) - t_start

        failures: list[str] = []
        lat: list[float] = []
        contains_ok = 0
        for it, r in zip(items, results, strict=True):
            q = it["question"]
            if r is None or "error" in r:
                failures.append(f"{it['id']}: {r and r.get('error') or 'no result'}")
                continue
            lat.append(r["latency"])
            ans = r["answer"]
            if ans.get("question") != q:
                failures.append(f"{it['id']}: got the answer to another question: {ans.get('question')!r}")
            elif fingerprint(ans) != base[q]:
                failures.append(
                    f"{it['id']}: answer differs from the single-user answer to the same question: "
                    f"{fingerprint(ans)!r} vs {base[q]!r}"
                )
            conv = r["conversation"]
            user_msgs = [_text(m) for m in conv if m.get("role") == "user"]
            if len(conv) != 2 or user_msgs != [q]:
                failures.append(
                    f"{it['id']}: the session's conversation holds other turns ({len(conv)} messages)"
                )
            if all(s.lower() in str(ans.get("answer", "")).lower() for s in it["must_contain"]):
                contains_ok += 1

        report = {
            "users": len(items),
            "concurrent_wall_s": round(wall, 3),
            "throughput_qps": round(len(lat) / wall, 3) if wall else None,
            "latency_p50_s": round(pct(lat, 50), 3) if lat else None,
            "latency_p95_s": round(pct(lat, 95), 3) if lat else None,
            "latency_max_s": round(max(lat), 3) if lat else None,
            "sequential_mean_s": round(statistics.mean(seq_lat), 3),
            "sequential_p95_s": round(pct(seq_lat, 95), 3),
            "sequential_qps": round(len(seq_lat) / sum(seq_lat), 3),
            "startup_s": round(ready_s, 1),
            "mixups_or_errors": failures,
            "answers_containing_expected": f"{contains_ok}/{len(items)}",
            "cpu_count": os.cpu_count(),
        }
        print(json.dumps(report, indent=2))
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        ok = not failures
        print(f"{len(items) - len(failures)} passed, {len(failures)} failed")
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())

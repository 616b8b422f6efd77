"""Command line: ``citeqa index | ask | eval | docs | ui``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from citeqa.config import PROJECT_ROOT, Settings
from citeqa.errors import CiteqaError


def _tqdm_progress(desc: str):
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def cb(done: int, total: int, message: str) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=desc, unit="text", file=sys.stderr, leave=False)
        b = bar["bar"]
        b.total = total
        b.n = done
        b.set_postfix_str(message, refresh=False)
        b.refresh()

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    cb.close = close  # type: ignore[attr-defined]
    return cb


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from citeqa.index import Index

    if args.verify:
        return _verify(settings)
    paths = [Path(p) for p in args.paths] or [settings.seeds_dir]
    progress = _tqdm_progress("indexing")

    def waiting(message: str) -> None:
        print(f"note: {message}", file=sys.stderr, flush=True)

    try:
        idx = Index.build(paths, settings, progress=progress, rebuild=args.rebuild, prune=args.prune,
                          on_wait=waiting)
    finally:
        progress.close()
    report = idx.last_report
    assert report is not None
    for f, msg in report.errors:
        print(f"error: {f}: {msg}", file=sys.stderr)
    print(f"indexed {report.summary()} -> {idx.location}")
    if report.removed:
        print(f"removed: {', '.join(report.removed)}")
    if report.kept:
        print(f"note: {len(report.kept)} document(s) indexed earlier are not under the paths given and were "
              "kept; `citeqa index --prune PATHS` makes the index exactly PATHS, `citeqa remove DOC` removes one",
              file=sys.stderr)
    return 1 if report.errors and not report.documents else 0


def _verify(settings: Settings) -> int:
    """`citeqa index --verify`: hash every file of the published build against its manifest."""
    from citeqa import integrity
    from citeqa.index import Index

    idx = Index.load(settings, full_check=True)  # raises IndexDamaged, naming the first damaged files
    if idx.path is None:  # a database: every document of the served generation has all its rows
        problems = idx.damage()
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        print(f"{'damaged' if problems else 'ok'}: {len(idx.snap.docs)} documents, {len(idx.units)} units "
              f"-> {idx.location}")
        return 1 if problems else 0
    manifest = json.loads((idx.path / "manifest.json").read_text(encoding="utf-8"))
    sums = manifest.get("checksums")
    if sums is None:
        print(f"note: the build at {idx.path} predates checksums; `citeqa index --rebuild` adds them",
              file=sys.stderr)
        return 0
    print(f"ok: {len(sums)} files, {integrity.total_size(manifest):,} bytes match their checksums "
          f"({len(idx.snap.docs)} documents) -> {idx.path}")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    from citeqa.index import Index

    idx = Index.load(settings)
    report = idx.remove(*args.docs)
    print(f"removed {', '.join(report.removed)}; {report.documents} documents left -> {idx.location}")
    return 0


def _print_answer(ans: Any) -> None:
    print(ans.text)
    for note in ans.notices:
        print(f"\nnote: {note}")
    if ans.citations:
        print("\nReferences:")
        for c in ans.citations:
            section = f" — {c.section}" if c.section else ""
            print(f"[{c.n}] {c.title}{section} ({c.doc}, chars {c.start}-{c.end})")
            print(f"    \"{' '.join(c.quote.split())}\"")


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from citeqa.assistant import Assistant
    from citeqa.inputs import clean_text, history_from_json

    t0 = time.perf_counter()
    if args.jsonl:
        stream = _open_jsonl(args.jsonl)  # a missing file is reported before the model loads
        with stream:
            return _ask_jsonl(Assistant.from_settings(settings), stream)
    if not args.question:
        print("error: give a question, or --jsonl FILE", file=sys.stderr)
        return 2
    history = history_from_json(clean_text(args.history), "--history") if args.history else []
    question = clean_text(" ".join(args.question))
    ans = Assistant.from_settings(settings).ask(question, history)
    if args.json:
        d = ans.to_dict()
        d["timings_ms"]["cold_start_total"] = round((time.perf_counter() - t0) * 1000, 1)
        print(json.dumps(d, ensure_ascii=False))
    else:
        _print_answer(ans)
    return 0


def _open_jsonl(path: str) -> Any:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as e:
        raise CiteqaError(f"--jsonl {path}: cannot be read ({e.strerror or e}); give an existing file, "
                          "or '-' for standard input") from e


def _ask_jsonl(assistant: Any, stream: Any) -> int:
    """Answer each line; a bad line gets an error record naming it, and the batch goes on."""
    from citeqa.inputs import decode_line, parse_history, question_text

    for lineno, raw in enumerate(stream, 1):
        qid: Any = lineno
        try:
            line = decode_line(raw, lineno)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise CiteqaError(f"line {lineno}: invalid JSON ({e})") from e
            if not isinstance(obj, dict):
                raise CiteqaError(f"line {lineno}: expected a JSON object")
            qid = obj.get("id", lineno)
            question = question_text(obj.get("question"), f"line {lineno}: field 'question'")
            ans = assistant.ask(question, parse_history(obj.get("history"), f"line {lineno}: history"))
            out = {"id": qid, **ans.to_dict()}
        except Exception as e:  # noqa: BLE001 - one bad line must not end the batch
            msg = str(e) if isinstance(e, CiteqaError) else f"{type(e).__name__}: {e} (a bug; please report it)"
            msg = msg if msg.startswith(f"line {lineno}") else f"line {lineno}: {msg}"
            out = {"id": qid, "error": msg, "answer": "", "refused": True, "citations": [], "passages": [],
                   "timings_ms": {}}
            print(f"error: {msg}", file=sys.stderr, flush=True)
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 0


def cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    from citeqa.index import Index

    idx = Index.load(settings)
    for d in idx.documents():
        print(f"{d['doc']}\t{d['kind'] or '-'}\t{d['date'] or '-'}\t{d['units']} units\t{d['tables']} tables\t"
              f"{d['title']}")
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """`citeqa db start|stop`: a local PostgreSQL with pgvector (from the pgserver wheel) for trying the
    shared store; prints the URL to put in CITEQA_STORE."""
    from citeqa.backends.pg_db import start_local, stop_local

    data = Path(args.dir).absolute()
    if args.action == "stop":
        stop_local(data)
        print(f"stopped the database in {data}")
        return 0
    _srv, url = start_local(data, keep=True)
    print(url)
    print(f"note: data in {data}; use it with `export CITEQA_STORE='{url}'`, stop it with `citeqa db stop`",
          file=sys.stderr)
    return 0


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    sys.path.insert(0, str(PROJECT_ROOT))
    from ui.app import main as ui_main

    argv = [*(["--host", args.host] if args.host else []), *(["--port", str(args.port)] if args.port else [])]
    return int(ui_main(argv) or 0)


def build_parser(with_eval: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="citeqa", description="Cited answers from your documents, offline.")
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("index", help="build or update the index (default: seeds/)")
    pi.add_argument("paths", nargs="*", help="files or directories to index")
    pi.add_argument("--rebuild", action="store_true",
                    help="ignore the stored index (e.g. when damaged) and re-read and re-embed every document, "
                         "the earlier ones from the files they were indexed from")
    pi.add_argument("--prune", action="store_true",
                    help="make the index exactly PATHS: remove documents not found under them")
    pi.add_argument("--verify", action="store_true",
                    help="check every index file against its checksum and change nothing")
    pi.set_defaults(func=cmd_index)
    for sp in (pi,):
        sp.add_argument("--store", help="postgresql://... URL of a shared index (default: CITEQA_STORE, else files)")
    pr = sub.add_parser("remove", help="remove documents from the index (names as `citeqa docs` lists them)")
    pr.add_argument("docs", nargs="+", metavar="DOC")
    pr.set_defaults(func=cmd_remove)
    pa = sub.add_parser("ask", help="answer a question with citations")
    pa.add_argument("question", nargs="*")
    pa.add_argument("--json", action="store_true", help="print one JSON object")
    pa.add_argument("--jsonl", metavar="FILE", help="questions as JSON lines ('-' for stdin)")
    pa.add_argument("--history", help='JSON list of [user, assistant] pairs for a follow-up')
    pa.set_defaults(func=cmd_ask)
    pd = sub.add_parser("docs", help="list indexed documents")
    pd.set_defaults(func=cmd_docs)
    pu = sub.add_parser("ui", help="open the chat window (http://127.0.0.1:7860)")
    pu.add_argument("--host", help="bind address (default 127.0.0.1, or CITEQA_HOST)")
    pu.add_argument("--port", type=int, help="port (default 7860, or CITEQA_PORT)")
    pu.set_defaults(func=cmd_ui)
    pdb = sub.add_parser("db", help="start or stop a local PostgreSQL + pgvector for the shared store")
    pdb.add_argument("action", choices=["start", "stop"])
    pdb.add_argument("--dir", default=str(PROJECT_ROOT / "pgdata"), help="data directory (default: pgdata/)")
    pdb.set_defaults(func=cmd_db)
    for sp in (pr, pa, pd, pu):
        sp.add_argument("--store", help="postgresql://... URL of a shared index (default: CITEQA_STORE, else files)")
    if not with_eval:  # its options import the baselines' stack (~0.3 s of a cold `citeqa ask`)
        return p
    try:
        from citeqa.evaluate import add_eval_arguments, cmd_eval

        pe = sub.add_parser("eval", help="run a question set and write a report")
        add_eval_arguments(pe)
        pe.set_defaults(func=cmd_eval)
    except ImportError:
        pass
    return p


_OTHER_COMMANDS = frozenset({"index", "remove", "ask", "docs", "ui", "db"})


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(with_eval=not argv or argv[0] not in _OTHER_COMMANDS).parse_args(argv)
    try:
        settings = Settings()
        if getattr(args, "store", None):
            settings = settings.model_copy(update={"store": args.store})
            os.environ["CITEQA_STORE"] = args.store  # the UI reads its settings from the environment
        return int(args.func(args, settings))
    except CiteqaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

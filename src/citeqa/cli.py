"""Command line: ``citeqa index | ask | eval | docs | ui``."""

from __future__ import annotations

import argparse
import json
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

    paths = [Path(p) for p in args.paths] or [settings.seeds_dir]
    missing = [p for p in paths if not p.exists()]
    for p in missing:
        print(f"error: {p}: no such file or directory", file=sys.stderr)
    paths = [p for p in paths if p.exists()]
    progress = _tqdm_progress("indexing")
    idx = Index.build(paths, settings, progress=progress, rebuild=args.rebuild)
    progress.close()
    report = idx.last_report
    assert report is not None
    for f, msg in report.errors:
        print(f"error: {f}: {msg}", file=sys.stderr)
    print(f"indexed {report.summary()} -> {idx.path}")
    return 1 if (missing or report.errors) and not report.documents else 0


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


def _history(raw: Any, where: str) -> list[tuple[str, str]]:
    if raw in (None, ""):
        return []
    if not isinstance(raw, list) or not all(
        isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in raw
    ):
        raise CiteqaError(f"{where}: 'history' must be a list of [user, assistant] string pairs")
    return [(p[0], p[1]) for p in raw]


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from citeqa.assistant import Assistant

    t0 = time.perf_counter()
    assistant = Assistant.from_settings(settings)
    if args.jsonl:
        return _ask_jsonl(assistant, args.jsonl)
    if not args.question:
        print("error: give a question, or --jsonl FILE", file=sys.stderr)
        return 2
    history = _history(json.loads(args.history), "--history") if args.history else []
    ans = assistant.ask(" ".join(args.question), history)
    if args.json:
        d = ans.to_dict()
        d["timings_ms"]["cold_start_total"] = round((time.perf_counter() - t0) * 1000, 1)
        print(json.dumps(d, ensure_ascii=False))
    else:
        _print_answer(ans)
    return 0


def _ask_jsonl(assistant: Any, path: str) -> int:
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    failures = 0
    with stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            qid: Any = None
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise CiteqaError(f"line {lineno}: expected a JSON object")
                qid = obj.get("id", lineno)
                question = obj.get("question")
                if not isinstance(question, str):
                    raise CiteqaError(f"line {lineno}: field 'question' must be a string")
                ans = assistant.ask(question, _history(obj.get("history"), f"line {lineno}"))
                out = {"id": qid, **ans.to_dict()}
            except (json.JSONDecodeError, CiteqaError) as e:
                failures += 1
                msg = f"line {lineno}: invalid JSON ({e})" if isinstance(e, json.JSONDecodeError) else str(e)
                out = {"id": qid, "error": msg, "answer": "", "refused": True, "citations": [], "passages": [],
                       "timings_ms": {}}
                print(f"error: {msg}", file=sys.stderr)
            print(json.dumps(out, ensure_ascii=False), flush=True)
    return 0


def cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    from citeqa.index import Index

    idx = Index.load(settings)
    for d in idx.documents():
        print(f"{d['doc']}\t{d['kind'] or '-'}\t{d['date'] or '-'}\t{d['units']} units\t{d['tables']} tables\t"
              f"{d['title']}")
    return 0


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    sys.path.insert(0, str(PROJECT_ROOT))
    from ui.app import main as ui_main

    argv = [*(["--host", args.host] if args.host else []), *(["--port", str(args.port)] if args.port else [])]
    return int(ui_main(argv) or 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="citeqa", description="Cited answers from your documents, offline.")
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("index", help="build or update the index (default: seeds/)")
    pi.add_argument("paths", nargs="*", help="files or directories to index")
    pi.add_argument("--rebuild", action="store_true", help="ignore the existing index and re-embed all")
    pi.set_defaults(func=cmd_index)
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
    try:
        from citeqa.evaluate import add_eval_arguments, cmd_eval

        pe = sub.add_parser("eval", help="run a question set and write a report")
        add_eval_arguments(pe)
        pe.set_defaults(func=cmd_eval)
    except ImportError:
        pass
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
        return int(args.func(args, settings))
    except CiteqaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

"""Evaluation harness: run a question file through an answerer and score it.

Question file: JSONL, one object per line::

    {"id": "d001", "question": "...", "history": [["user", "assistant"], ...],
     "answer": "...", "must_contain": ["3%"], "evidence": [{"doc": "x.txt", "quote": "..."}],
     "type": "numeric"}

``history`` is optional; ``must_contain`` and ``evidence`` are empty for unanswerable items.
A malformed line becomes an error entry (line number and field) and the other lines still run.

Parsing and per-item scoring live in :mod:`citeqa.scoring`, report.md and plots in
:mod:`citeqa.report`, the "textbook" baseline in :mod:`citeqa.baseline`.

Anything with ``ask(question, history=()) -> Answer`` can be evaluated: the real
:class:`citeqa.Assistant`, :class:`citeqa.baseline.TextbookBaseline`, or a test fake. Gold quotes
are located in the answerer's own document text (``answerer.doc_text`` or ``answerer.index.doc_text``,
else the file under ``settings.seeds_dir``), so every system is scored against the offsets it cites.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from citeqa.scoring import (
    METRIC_LABELS,
    DocTextFn,
    EvalItem,
    Evidence,
    aggregate,
    contains,
    evidence_covered,
    fmt_metric,
    load_questions,
    normalise,
    percentile,
    score_item,
    summarise,
    threshold_curve,
    word_count,
)
from citeqa.types import Answer

__all__ = [
    "METRIC_LABELS",
    "EvalItem",
    "EvalRun",
    "Evidence",
    "add_eval_arguments",
    "aggregate",
    "cmd_eval",
    "compare_runs",
    "contains",
    "evidence_covered",
    "load_questions",
    "normalise",
    "percentile",
    "run_eval",
    "score_item",
    "summarise",
    "threshold_curve",
    "word_count",
]

ProgressFn = Callable[[int, int], None]


class Answerer(Protocol):
    def ask(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer: ...


# ---------------------------------------------------------------- running


@dataclass
class EvalRun:
    out_dir: Path
    metrics: dict[str, Any]
    results: list[dict[str, Any]]
    errors: list[dict[str, Any]] = field(default_factory=list)
    baseline: EvalRun | None = None

    @property
    def passed(self) -> dict[str, bool]:
        return {r["id"]: bool(r["passed"]) for r in self.results}

    @classmethod
    def load(cls, out_dir: str | Path) -> EvalRun:
        d = Path(out_dir)
        metrics = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
        with open(d / "results.jsonl", encoding="utf-8") as fh:
            results = [json.loads(x) for x in fh if x.strip()]
        base = None
        if metrics.get("baseline") and (d / "baseline_results.jsonl").exists():
            with open(d / "baseline_results.jsonl", encoding="utf-8") as fh:
                b_rows = [json.loads(x) for x in fh if x.strip()]
            base = cls(d, metrics["baseline"], b_rows)
        return cls(d, metrics, results, metrics.get("errors", []), base)


def _doc_text_fn(answerer: Any) -> DocTextFn:
    if callable(getattr(answerer, "doc_text", None)):
        return answerer.doc_text
    index = getattr(answerer, "index", None)
    fn = getattr(index, "doc_text", None)
    settings = getattr(answerer, "settings", None)
    roots = [
        Path(p) for p in (getattr(settings, "seeds_dir", None), getattr(settings, "upload_dir", None)) if p
    ]

    def from_files(doc: str) -> str:
        for root in roots:
            if (root / doc).is_file():
                return (root / doc).read_text(encoding="utf-8")
        raise KeyError(doc)

    if callable(fn):

        def via_index(doc: str) -> str:
            try:
                return str(fn(doc))
            except Exception:
                return from_files(doc)

        return via_index
    return from_files


def _evaluate(
    items: Sequence[EvalItem],
    answerer: Any,
    k: int,
    progress: ProgressFn | None,
) -> list[dict[str, Any]]:
    doc_text = _doc_text_fn(answerer)
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(items, start=1):
        t0 = time.perf_counter()
        try:
            ans = answerer.ask(item.question, history=item.history)
            row = score_item(item, ans, doc_text, k=k)
        except Exception as e:  # one broken item must not stop the run
            row = {
                "id": item.id,
                "type": item.type,
                "line": item.line,
                "question": item.question,
                "unanswerable": item.unanswerable,
                "answer": "",
                "refused": False,
                "passed": False,
                "reasons": [f"answerer raised {type(e).__name__}: {e}"],
                "data_errors": [],
                "timings_ms": {},
            }
        row["wall_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        rows.append(row)
        if progress is not None:
            progress(i, len(items))
    return rows


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def _json_safe(obj: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def run_eval(
    questions_path: str | Path,
    assistant: Any,
    out_dir: str | Path,
    k: int = 5,
    progress: ProgressFn | None = None,
    baseline: Any = None,
    *,
    system: str = "citeqa",
    refusal_threshold: float | None = None,
    plots: bool = True,
) -> EvalRun:
    """Evaluate ``assistant`` on a question file and write results.jsonl, metrics.json, report.md, plots.

    ``baseline`` is another answerer (e.g. :class:`~citeqa.baseline.TextbookBaseline`) scored on the
    same items with recall@k taken over however many passages it returns, or an :class:`EvalRun`.
    """
    from citeqa.report import write_report  # matplotlib is imported only when reporting

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items, errors = load_questions(questions_path)
    if refusal_threshold is None:
        refusal_threshold = getattr(getattr(assistant, "settings", None), "refusal_threshold", None)

    total = len(items) * (2 if baseline is not None and not isinstance(baseline, EvalRun) else 1)

    def prog(offset: int) -> ProgressFn | None:
        return None if progress is None else (lambda d, _t: progress(offset + d, total))

    rows = _evaluate(items, assistant, k, prog(0))
    metrics = summarise(rows, system=system, k=k, refusal_threshold=refusal_threshold)
    metrics["questions"] = str(questions_path)
    metrics["created"] = datetime.now().isoformat(timespec="seconds")
    metrics["errors"] = errors
    metrics["data_errors"] = [
        {"id": r["id"], "line": r["line"], "error": e} for r in rows for e in r.get("data_errors", [])
    ]

    base_run: EvalRun | None = None
    if isinstance(baseline, EvalRun):
        base_run = baseline
    elif baseline is not None:
        b_k = int(getattr(baseline, "k", 4))
        b_rows = _evaluate(items, baseline, b_k, prog(len(items)))
        b_name = str(getattr(baseline, "name", type(baseline).__name__))
        b_metrics = summarise(b_rows, system=b_name, k=b_k, refusal_threshold=None)
        base_run = EvalRun(out, b_metrics, b_rows)
        _write_jsonl(out / "baseline_results.jsonl", b_rows)
    if base_run is not None:
        metrics["baseline"] = {k_: v for k_, v in base_run.metrics.items() if k_ != "baseline"}

    run = EvalRun(out, _json_safe(metrics), rows, errors, base_run)
    _write_jsonl(out / "results.jsonl", rows)
    run.metrics["plots"] = write_report(run, plots=plots)
    (out / "metrics.json").write_text(
        json.dumps(_json_safe(run.metrics), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return run


# ---------------------------------------------------------------- comparing runs


def _delta(a: Any, b: Any, key: str) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return "–"
    if any(isinstance(x, float) and math.isnan(x) for x in (a, b)):
        return "–"
    d = b - a
    if key == "n" or key.startswith("n_"):
        return f"{int(d):+d}"
    return f"{d:+.1f}" if key.endswith("_ms") or key.endswith("_mean") else f"{d:+.3f}"


def compare_runs(run_a: EvalRun | str | Path, run_b: EvalRun | str | Path) -> str:
    """Markdown: metric deltas (B − A) overall and per type, and items that flipped pass↔fail."""
    a = run_a if isinstance(run_a, EvalRun) else EvalRun.load(run_a)
    b = run_b if isinstance(run_b, EvalRun) else EvalRun.load(run_b)

    def who(r: EvalRun) -> str:
        m = r.metrics
        return f"`{r.out_dir}` ({m.get('system', '?')}, k={m.get('k', '?')}, {m.get('questions', '')})"

    lines = [f"# Run comparison\n\nA: {who(a)}  \nB: {who(b)}\n", "## Overall\n"]
    lines += ["| metric | A | B | Δ (B−A) |", "| --- | ---: | ---: | ---: |"]
    oa, ob = a.metrics.get("overall", {}), b.metrics.get("overall", {})
    for key, label in METRIC_LABELS.items():
        lines.append(
            f"| {label} | {fmt_metric(oa.get(key), key)} | {fmt_metric(ob.get(key), key)} | "
            f"{_delta(oa.get(key), ob.get(key), key)} |"
        )
    lines.append("\n## Per type\n")
    keys = ["n", "correctness", "recall_at_k", "mrr", "citation_precision"]
    lines.append("| type | " + " | ".join(f"{METRIC_LABELS[x]} A → B (Δ)" for x in keys) + " |")
    lines.append("| --- |" + " ---: |" * len(keys))
    pa, pb = a.metrics.get("per_type", {}), b.metrics.get("per_type", {})
    for t in sorted(set(pa) | set(pb)):
        ma, mb = pa.get(t, {}), pb.get(t, {})
        cells = [
            f"{fmt_metric(ma.get(x), x)} → {fmt_metric(mb.get(x), x)} ({_delta(ma.get(x), mb.get(x), x)})"
            for x in keys
        ]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    pa_ids, pb_ids = a.passed, b.passed
    common = [i for i in pa_ids if i in pb_ids]
    fixed = [i for i in common if not pa_ids[i] and pb_ids[i]]
    broke = [i for i in common if pa_ids[i] and not pb_ids[i]]
    b_rows = {r["id"]: r for r in b.results}
    lines.append(
        f"\n## Flips\n\n{len(fixed)} fail → pass, {len(broke)} pass → fail "
        f"({len(common)} items in both runs).\n"
    )
    if fixed:
        lines.append("**fail → pass:** " + ", ".join(f"`{i}`" for i in fixed) + "\n")
    if broke:
        lines.append("**pass → fail:**\n")
        for i in broke:
            why = "; ".join(b_rows[i].get("reasons", [])) or "?"
            lines.append(f"- `{i}` ({b_rows[i].get('type', '')}): {why}")
    only = sorted(set(pa_ids) ^ set(pb_ids))
    if only:
        lines.append(f"\nItems in only one run: {', '.join(only)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- CLI glue


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``citeqa eval`` (the caller creates the sub-parser)."""
    parser.add_argument("questions", nargs="?", type=Path, help="Question file (JSONL).")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Output directory (default runs/<timestamp>-<questions-stem>/).",
    )
    parser.add_argument("--k", type=int, default=5, help="Passages counted for evidence recall@k and MRR.")
    parser.add_argument(
        "--baseline",
        choices=["textbook"],
        default=None,
        help="Also score a baseline on the same questions (textbook: 1000-char chunks, FAISS top-4).",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("RUN_A", "RUN_B"),
        default=None,
        help="Print a comparison of two finished run directories instead of running.",
    )
    parser.add_argument("--no-plots", action="store_true", help="Skip the PNG plots.")


def default_out_dir(questions: Path, root: Path | None = None) -> Path:
    from citeqa.config import PROJECT_ROOT

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (root or PROJECT_ROOT / "runs") / f"{stamp}-{questions.stem}"


def summary_table(run: EvalRun) -> str:
    """Plain-text summary (both systems side by side when a baseline ran)."""
    keys = [k for k in METRIC_LABELS if k != "pass_rate"] + ["pass_rate"]
    cols = [run.metrics["system"]] + ([run.metrics["baseline"]["system"]] if run.baseline else [])
    mets = [run.metrics["overall"]] + ([run.metrics["baseline"]["overall"]] if run.baseline else [])
    ks = [run.metrics.get("k")] + ([run.metrics["baseline"].get("k")] if run.baseline else [])
    w = max(len(v) for v in METRIC_LABELS.values())
    out = [f"{'metric':<{w}}  " + "  ".join(f"{c:>14}" for c in cols)]
    for key in keys:
        label = METRIC_LABELS[key].replace("@k", "@" + "/".join(str(x) for x in ks))
        out.append(f"{label:<{w}}  " + "  ".join(f"{fmt_metric(m.get(key), key):>14}" for m in mets))
    return "\n".join(out)


def cmd_eval(args: argparse.Namespace, settings: Any) -> int:
    """Run ``citeqa eval``. Exit 0 ok; 1 ran but the question file had malformed lines or gold
    quotes missing from their documents; 2 could not run."""
    import sys

    if args.compare:
        try:
            md = compare_runs(args.compare[0], args.compare[1])
        except (OSError, ValueError, KeyError) as e:
            print(f"citeqa eval: cannot compare runs: {e}", file=sys.stderr)
            return 2
        print(md)
        return 0
    if args.questions is None:
        print("citeqa eval: a question file is required (or --compare RUN_A RUN_B)", file=sys.stderr)
        return 2
    if not Path(args.questions).is_file():
        print(f"citeqa eval: no such question file: {args.questions}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from citeqa import Assistant, Index

    out = args.out or default_out_dir(Path(args.questions))
    index = Index.open(settings)
    assistant = Assistant(index, settings)
    baseline = None
    if args.baseline == "textbook":
        from citeqa.baseline import TextbookBaseline, default_doc_paths

        baseline = TextbookBaseline(default_doc_paths(settings))
    with tqdm(desc="eval", unit="q", total=None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        run = run_eval(
            args.questions,
            assistant,
            out,
            k=args.k,
            progress=progress,
            baseline=baseline,
            plots=not getattr(args, "no_plots", False),
        )
    print(summary_table(run))
    errs, data_errs = run.metrics["errors"], run.metrics["data_errors"]
    for err in errs:
        print(f"question file line {err['line']}: {err['field']}: {err['error']}", file=sys.stderr)
    for derr in data_errs:
        print(f"data error in {derr['id']} (line {derr['line']}): {derr['error']}", file=sys.stderr)
    print(f"\nwrote {out}/report.md")
    return 1 if errs or data_errs else 0

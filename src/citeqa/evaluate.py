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

from citeqa.eval_compare import compare_runs
from citeqa.eval_questions import EvalItem, Evidence, load_questions
from citeqa.scoring import (
    METRIC_LABELS,
    TABLE_METRICS,
    DocTextFn,
    aggregate,
    contains,
    evidence_covered,
    fmt_metric,
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
    "TABLE_METRICS",
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


@dataclass(frozen=True)
class EvalRun:
    out_dir: Path
    metrics: dict[str, Any]
    results: list[dict[str, Any]]
    errors: list[dict[str, Any]] = field(default_factory=list)
    baselines: tuple[EvalRun, ...] = ()  # other systems scored on the same items, in table order

    @property
    def baseline(self) -> EvalRun | None:
        """The first baseline (runs written before several baselines were possible had at most one)."""
        return self.baselines[0] if self.baselines else None

    @property
    def systems(self) -> tuple[EvalRun, ...]:
        """This run and its baselines, in table order."""
        return (self, *self.baselines)

    @property
    def passed(self) -> dict[str, bool]:
        return {r["id"]: bool(r["passed"]) for r in self.results}

    @classmethod
    def load(cls, out_dir: str | Path) -> EvalRun:
        """Read a finished run directory, baselines included (also the single-baseline layout of older
        runs: ``metrics["baseline"]`` with ``baseline_results.jsonl``)."""
        d = Path(out_dir)
        metrics = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
        results = _read_jsonl(d / "results.jsonl")
        bases: list[EvalRun] = []
        for b in metrics.get("baselines") or []:
            f = d / str(b.get("results_file", ""))
            bases.append(cls(d, b, _read_jsonl(f) if f.is_file() else []))
        if not bases and metrics.get("baseline") and (d / "baseline_results.jsonl").exists():
            bases.append(cls(d, metrics["baseline"], _read_jsonl(d / "baseline_results.jsonl")))
        return cls(d, metrics, results, metrics.get("errors", []), tuple(bases))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(x) for x in fh if x.strip()]


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


def current_threshold(assistant: Any) -> float | None:
    """The refusal threshold the answerer applies to ``Answer.support`` (its own property, else its
    settings'), or None when it has none."""
    for t in (getattr(assistant, "refusal_threshold", None),
              getattr(getattr(assistant, "settings", None), "refusal_threshold", None)):
        if isinstance(t, int | float) and not isinstance(t, bool):
            return float(t)
    return None


def _file_name(name: str, taken: set[str]) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "baseline"
    f, n = f"results.{stem}.jsonl", 2
    while f in taken:
        f, n = f"results.{stem}-{n}.jsonl", n + 1
    taken.add(f)
    return f


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

    ``baseline`` is another answerer (e.g. :class:`~citeqa.baseline.TextbookBaseline`), a finished
    :class:`EvalRun`, or a list of those: each is scored on the same items, with recall@k taken over however
    many passages it returns (its ``k``), and written to ``results.<name>.jsonl``.
    """
    from citeqa.report import write_report  # matplotlib is imported only when reporting

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items, errors = load_questions(questions_path)
    if refusal_threshold is None:
        refusal_threshold = current_threshold(assistant)
    others = list(baseline) if isinstance(baseline, list | tuple) else [] if baseline is None else [baseline]
    total = len(items) * (1 + sum(not isinstance(b, EvalRun) for b in others))

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

    base_runs: list[EvalRun] = []
    taken = {"results.jsonl"}
    done = len(items)
    for b in others:
        if isinstance(b, EvalRun):
            b_run = b
        else:
            b_k = int(getattr(b, "k", 4))
            b_rows = _evaluate(items, b, b_k, prog(done))
            done += len(items)
            b_name = str(getattr(b, "name", type(b).__name__))
            b_metrics = summarise(b_rows, system=b_name, k=b_k, refusal_threshold=None)
            b_run = EvalRun(out, _json_safe(b_metrics), b_rows)
        fname = _file_name(str(b_run.metrics.get("system", "baseline")), taken)
        _write_jsonl(out / fname, b_run.results)
        keep = {k_: v for k_, v in b_run.metrics.items() if k_ not in ("baseline", "baselines")}
        base_runs.append(EvalRun(out, {**keep, "results_file": fname}, b_run.results))
    if base_runs:
        metrics["baselines"] = [b.metrics for b in base_runs]

    run = EvalRun(out, _json_safe(metrics), rows, errors, tuple(base_runs))
    _write_jsonl(out / "results.jsonl", rows)
    run.metrics["plots"] = write_report(run, plots=plots)
    (out / "metrics.json").write_text(
        json.dumps(_json_safe(run.metrics), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return run


# ---------------------------------------------------------------- CLI glue


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``citeqa eval`` (the caller creates the sub-parser)."""
    from citeqa.baseline import BASELINES

    parser.add_argument("questions", nargs="?", type=Path, help="Question file (JSONL).")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Output directory (default runs/<timestamp>-<questions-stem>/; with --corpora one "
        "sub-directory per question set).",
    )
    parser.add_argument("--k", type=int, default=5, help="Passages counted for evidence recall@k and MRR.")
    parser.add_argument(
        "--baseline",
        action="append",
        choices=[*BASELINES, "all"],
        default=None,
        help="Also score a baseline on the same questions; repeat for several, 'all' for every one "
        "(textbook: 1000-char chunks, FAISS top-4; bm25-sentence: the top BM25 sentence, top-5 sentences).",
    )
    parser.add_argument(
        "--corpora",
        nargs="*",
        metavar="CORPUS",
        default=None,
        help="Instead of one question file, run every known corpus (or those named: seeds, covidqa, "
        "pubmedqa) against its own index under CITEQA_TRAINING_INDEX_ROOT, one report per question set.",
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


def baseline_names(requested: Sequence[str] | None) -> list[str]:
    """``--baseline`` values in order, 'all' expanded, duplicates dropped."""
    from citeqa.baseline import BASELINES

    out: list[str] = []
    for name in requested or []:
        for n in BASELINES if name == "all" else (name,):
            if n not in out:
                out.append(n)
    return out


def default_out_dir(questions: Path, root: Path | None = None) -> Path:
    from citeqa.config import PROJECT_ROOT

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (root or PROJECT_ROOT / "runs") / f"{stamp}-{questions.stem}"


def summary_table(run: EvalRun) -> str:
    """Plain-text table: citeqa and each baseline side by side (:data:`TABLE_METRICS`, then items)."""
    systems = run.systems
    ks = "/".join(str(r.metrics.get("k")) for r in systems)
    labels = {**TABLE_METRICS, "recall_at_k": f"evidence recall@{ks}", "n": "items"}
    w = max(len(v) for v in labels.values())
    cw = max(14, *(len(str(r.metrics["system"])) for r in systems))
    out = [f"{'metric':<{w}}  " + "  ".join(f"{r.metrics['system']:>{cw}}" for r in systems)]
    for key, label in labels.items():
        cells = (fmt_metric(r.metrics["overall"].get(key), key) for r in systems)
        out.append(f"{label:<{w}}  " + "  ".join(f"{c:>{cw}}" for c in cells))
    t = run.metrics.get("refusal_threshold")
    if t is not None:
        out.append(f"({run.metrics['system']} refuses when P(the sources answer) < {t:.2f})")
    return "\n".join(out)


def progress_bar(desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(desc=desc, unit="q", total=None)


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
    if getattr(args, "corpora", None) is not None:
        if args.questions is not None:
            print("citeqa eval: give a question file or --corpora, not both", file=sys.stderr)
            return 2
        from citeqa.eval_corpora import run_corpora

        return run_corpora(args)
    if args.questions is None:
        print("citeqa eval: a question file is required (or --corpora, or --compare RUN_A RUN_B)",
              file=sys.stderr)
        return 2
    if not Path(args.questions).is_file():
        print(f"citeqa eval: no such question file: {args.questions}", file=sys.stderr)
        return 2
    from citeqa import Assistant, Index
    from citeqa.baseline import document_paths, make_baseline

    out = args.out or default_out_dir(Path(args.questions))
    index = Index.open(settings)
    assistant = Assistant(index, settings)
    docs = document_paths(settings.seeds_dir)
    baselines = [make_baseline(name, docs) for name in baseline_names(args.baseline)]
    with progress_bar("eval") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        run = run_eval(args.questions, assistant, out, k=args.k, progress=progress, baseline=baselines,
                       plots=not getattr(args, "no_plots", False))
    print(summary_table(run))
    print(f"\nwrote {out}/report.md")
    return report_problems(run)


def report_problems(run: EvalRun) -> int:
    """Print the question-file problems of a run to stderr; 1 when there were any, else 0."""
    import sys

    errs, data_errs = run.metrics["errors"], run.metrics["data_errors"]
    for err in errs:
        print(f"question file line {err['line']}: {err['field']}: {err['error']}", file=sys.stderr)
    for derr in data_errs:
        print(f"data error in {derr['id']} (line {derr['line']}): {derr['error']}", file=sys.stderr)
    return 1 if errs or data_errs else 0

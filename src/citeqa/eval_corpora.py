"""``citeqa eval --corpora``: every known corpus against its own index, citeqa beside the baselines.

The corpora and their question sets are :func:`citeqa.training.dataset.corpora` (seeds: dev and own;
covidqa; pubmedqa), each index under ``CITEQA_TRAINING_INDEX_ROOT`` (default ``runs/indexes``). A corpus
whose index is missing is skipped with a note (building a pack's index takes minutes: ``citeqa index``
with ``CITEQA_INDEX_DIR`` set, or ``python -m citeqa.training.dataset``). Each question set gets its
own run directory ``--out/<set>/`` (report.md, plots, metrics.json), and ``--out/summary.md`` holds one
side-by-side table per set.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from citeqa.evaluate import (
    EvalRun,
    baseline_names,
    progress_bar,
    report_problems,
    run_eval,
    summary_table,
)
from citeqa.report import overall_table
from citeqa.scoring import TABLE_METRICS


@dataclass(frozen=True)
class QuestionSet:
    corpus: str
    name: str
    path: Path
    docs_dir: Path
    index_dir: Path


def question_sets(names: Sequence[str] = ()) -> list[QuestionSet]:
    """The question sets of the known corpora (only the corpora named, when any are)."""
    from citeqa.training.dataset import corpora

    known = corpora()
    unknown = set(names) - {c.name for c in known}
    if unknown:
        raise ValueError(f"unknown corpus {', '.join(sorted(unknown))}; known: {', '.join(c.name for c in known)}")
    return [
        QuestionSet(c.name, set_name, path, c.docs_dir, c.index_dir)
        for c in known
        if not names or c.name in names
        for set_name, path in c.question_files
    ]


def run_corpora(args: argparse.Namespace) -> int:
    """Run each question set of the known corpora; print and write a table per set. Exit 0 ok, 1 when a
    set had question-file problems or a corpus was skipped, 2 when nothing could run."""
    from citeqa import Assistant, Index, Settings
    from citeqa.baseline import document_paths, make_baseline
    from citeqa.config import PROJECT_ROOT
    from citeqa.errors import CiteqaError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        sets = question_sets(args.corpora or ())
    except ValueError as e:
        print(f"citeqa eval: {e}", file=sys.stderr)
        return 2
    out_root = Path(args.out or PROJECT_ROOT / "runs" / f"{datetime.now():%Y%m%d-%H%M%S}-corpora")
    names = baseline_names(args.baseline)
    status, runs = 0, []
    loaded: dict[str, tuple[Any, list[Any]]] = {}
    for qs in sets:
        if not qs.path.is_file():
            print(f"note: {qs.corpus}/{qs.name}: no question file {qs.path}; skipped", file=sys.stderr)
            status = 1
            continue
        if qs.corpus not in loaded:
            settings = Settings(index_dir=qs.index_dir, seeds_dir=qs.docs_dir)
            try:
                index = Index.load(settings)
            except CiteqaError as e:
                print(f"note: {qs.corpus}: no usable index at {qs.index_dir} ({e}); skipped. Build it with "
                      f"CITEQA_INDEX_DIR={qs.index_dir} citeqa index {qs.docs_dir}", file=sys.stderr)
                status = 1
                continue
            docs = document_paths(qs.docs_dir)
            loaded[qs.corpus] = (Assistant(index, settings), [make_baseline(n, docs) for n in names])
        assistant, baselines = loaded[qs.corpus]
        with progress_bar(qs.name) as bar:

            def progress(done: int, total: int, bar: Any = bar) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            run = run_eval(qs.path, assistant, out_root / qs.name, k=args.k, progress=progress,
                           baseline=baselines, plots=not getattr(args, "no_plots", False))
        runs.append((qs, run))
        print(f"\n## {qs.name} ({qs.corpus}: {run.metrics['overall']['n']} questions)\n")
        print(summary_table(run))
        status = max(status, report_problems(run))
    if not runs:
        return 2
    write_summary(out_root, runs)
    print(f"\nwrote {out_root}/summary.md and a report per question set under {out_root}/")
    return status


def write_summary(out_root: Path, runs: Sequence[tuple[QuestionSet, EvalRun]]) -> Path:
    md = ["# citeqa beside the baselines, per corpus", ""]
    for qs, run in runs:
        t = run.metrics.get("refusal_threshold")
        md += [
            f"## {qs.name} ({qs.corpus})",
            "",
            f"{run.metrics['overall']['n']} questions from `{qs.path}`, documents `{qs.docs_dir}`, index "
            f"`{qs.index_dir}`" + (f"; citeqa refuses below P(answerable) = {t:.2f}" if t is not None else "")
            + f". Details: [{qs.name}/report.md]({qs.name}/report.md).",
            "",
            *overall_table(run, {**TABLE_METRICS, "n": "items"}),
            "",
        ]
        if run.metrics.get("plots", {}).get("refusal_threshold"):
            md += [f"![refusal trade-off, {qs.name}]({qs.name}/{run.metrics['plots']['refusal_threshold']})", ""]
    path = out_root / "summary.md"
    out_root.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(md), encoding="utf-8")
    return path

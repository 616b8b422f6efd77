"""Comparing two finished evaluation runs (``citeqa eval --compare RUN_A RUN_B``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from citeqa.scoring import METRIC_LABELS, fmt_metric

if TYPE_CHECKING:
    from citeqa.evaluate import EvalRun


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
    from citeqa.evaluate import EvalRun

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

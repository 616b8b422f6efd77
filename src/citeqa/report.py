"""report.md and PNG plots for an evaluation run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from citeqa.scoring import METRIC_LABELS, fmt_metric  # noqa: E402

if TYPE_CHECKING:
    from citeqa.evaluate import EvalRun

SYSTEM_COLOR = "#1f77b4"
BASELINE_COLOR = "#ff7f0e"


def _fmt(v: Any, key: str = "") -> str:
    return fmt_metric(v, key)


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _ms(v: float) -> str:
    return f"{v:.0f} ms" if v >= 100 else f"{v:.1f} ms"


def _md_cell(text: str, n: int = 220) -> str:
    t = " ".join(str(text).split()).replace("|", "\\|")
    return t if len(t) <= n else t[: n - 1] + "\u2026"


# ---------------------------------------------------------------- plots


def plot_by_type(run: EvalRun, path: Path) -> None:
    per = run.metrics["per_type"]
    base = run.metrics.get("baseline", {}).get("per_type") if run.baseline else None
    types = list(per)
    k, bk = run.metrics["k"], (run.metrics.get("baseline") or {}).get("k")
    panels = [("correctness", "Answer correctness"), ("recall_at_k", "Evidence recall@k")]
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.3 * len(types) + 4), 4.2), sharey=True)
    width = 0.38 if base else 0.6
    xs = range(len(types))
    for ax, (key, title) in zip(axes, panels, strict=True):
        sys_vals = [_num(per[t].get(key)) for t in types]
        label = run.metrics["system"] + (f" (k={k})" if key == "recall_at_k" else "")
        off = -width / 2 if base else 0.0
        bars = ax.bar(
            [x + off for x in xs],
            [0 if math.isnan(v) else v for v in sys_vals],
            width,
            color=SYSTEM_COLOR,
            label=label,
        )
        _label_bars(ax, bars, sys_vals)
        if base:
            b_vals = [_num(base.get(t, {}).get(key)) for t in types]
            b_label = run.metrics["baseline"]["system"] + (f" (k={bk})" if key == "recall_at_k" else "")
            bars = ax.bar(
                [x + width / 2 for x in xs],
                [0 if math.isnan(v) else v for v in b_vals],
                width,
                color=BASELINE_COLOR,
                label=b_label,
            )
            _label_bars(ax, bars, b_vals)
        ax.set_title(title)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([f"{t}\n(n={per[t]['n']})" for t in types], rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.3)
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", ncol=2, frameon=False)
    axes[0].set_ylabel("share of items")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _label_bars(ax: Any, bars: Any, values: list[float]) -> None:
    for bar, v in zip(bars, values, strict=True):
        txt = "n/a" if math.isnan(v) else f"{v:.2f}"
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            (0 if math.isnan(v) else v) + 0.01,
            txt,
            ha="center",
            va="bottom",
            fontsize=7,
        )


def plot_latency(run: EvalRun, path: Path) -> None:
    def totals(rows: list[dict[str, Any]]) -> list[float]:
        return [float(r["timings_ms"].get("total", r.get("wall_ms", 0.0))) for r in rows if "metrics" in r]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    t_sys = totals(run.results)
    series = [(run.metrics["system"], t_sys, SYSTEM_COLOR)]
    if run.baseline:
        series.append((run.baseline.metrics["system"], totals(run.baseline.results), BASELINE_COLOR))
    allv = [v for _, vals, _ in series for v in vals]
    bins = max(5, min(30, len(allv) // 2)) if allv else 5
    lo, hi = (min(allv), max(allv)) if allv else (0.0, 1.0)
    if hi - lo < 1.0:
        lo, hi = max(0.0, lo - 0.5), hi + 0.5
    for name, vals, color in series:
        if vals:
            ax1.hist(vals, bins=bins, range=(lo, hi + 1e-9), alpha=0.6, color=color, label=name)
    lat = run.metrics["overall"]
    for q, style in (("latency_p50_ms", "--"), ("latency_p95_ms", ":")):
        if lat.get(q) is not None:
            ax1.axvline(
                lat[q],
                color=SYSTEM_COLOR,
                linestyle=style,
                label=f"{run.metrics['system']} {q.split('_')[1]} = {_ms(lat[q])}",
            )
    ax1.set_xlabel("total latency per question (ms)")
    ax1.set_ylabel("questions")
    ax1.set_title("Latency distribution")
    ax1.legend(fontsize=8)
    stages = {s: v for s, v in run.metrics["latency_ms"].items() if s not in ("total", "wall")}
    if stages:
        names = list(stages)
        ys = range(len(names))
        ax2.barh([y + 0.2 for y in ys], [stages[s]["p50"] for s in names], 0.4, label="p50", color="#4c9be8")
        ax2.barh([y - 0.2 for y in ys], [stages[s]["p95"] for s in names], 0.4, label="p95", color="#1f4e79")
        for y, s_ in zip(ys, names, strict=True):
            for dy, q in ((0.2, "p50"), (-0.2, "p95")):
                ax2.text(stages[s_][q], y + dy, f" {stages[s_][q]:.1f}", va="center", fontsize=7)
        ax2.set_xlim(0, max(stages[s_]["p95"] for s_ in names) * 1.18 or 1.0)
        ax2.set_yticks(list(ys))
        ax2.set_yticklabels(names, fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xlabel("ms")
        ax2.legend(fontsize=8)
    else:
        ax2.text(0.5, 0.5, "no per-stage timings", ha="center", va="center", transform=ax2.transAxes)
        ax2.set_axis_off()
    ax2.set_title(f"{run.metrics['system']}: latency per stage")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_threshold(run: EvalRun, path: Path) -> None:
    curve = run.metrics["threshold_curve"]
    cur = run.metrics.get("refusal_threshold")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ts = [p["threshold"] for p in curve]
    share = [p["answered_share"] for p in curve]
    acc_ans = [_num(p["answered_correct"]) for p in curve]
    overall = [p["overall_correct"] for p in curve]
    ax1.plot(ts, share, label="answered share", color="#555555", drawstyle="steps-post")
    ax1.plot(ts, acc_ans, label="correct among answered", color=SYSTEM_COLOR, drawstyle="steps-post")
    ax1.plot(ts, overall, label="overall correct (incl. refusals)", color="#2ca02c", drawstyle="steps-post")
    if cur is not None:
        ax1.axvline(cur, color="red", linestyle="--", label=f"current threshold {cur:.2f}")
    best = run.metrics.get("best_threshold")
    if best:
        lo, hi = best.get("threshold_low", best["threshold"]), best.get("threshold_high", best["threshold"])
        ax1.axvspan(
            lo, hi + 0.002, color="#2ca02c", alpha=0.12, label=f"best overall on this set ({lo:.2f}–{hi:.2f})"
        )
    ax1.set_xlabel("refusal threshold on Answer.support")
    ax1.set_ylim(-0.02, 1.05)
    ax1.set_title("Refusal threshold sweep")
    ax1.legend(fontsize=8, loc="best")
    ax1.grid(alpha=0.3)
    ax2.plot(share, acc_ans, marker=".", color=SYSTEM_COLOR, label="correct among answered")
    ax2.plot(share, overall, marker=".", color="#2ca02c", alpha=0.7, label="overall correct")
    if cur is not None and curve:
        p = min(curve, key=lambda c: abs(c["threshold"] - cur))
        ax2.scatter(
            [p["answered_share"]],
            [_num(p["answered_correct"])],
            s=90,
            color="red",
            zorder=5,
            label=f"current ({cur:.2f})",
        )
        ax2.scatter([p["answered_share"]], [p["overall_correct"]], s=60, color="red", marker="x", zorder=5)
    ax2.set_xlabel("share of questions answered")
    ax2.set_ylabel("correctness")
    ax2.set_xlim(-0.02, 1.02)
    ax2.set_ylim(-0.02, 1.05)
    ax2.set_title("Coverage vs correctness trade-off")
    ax2.legend(fontsize=8, loc="best")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- markdown


def _overall_table(run: EvalRun) -> list[str]:
    cols = [run.metrics] + ([run.metrics["baseline"]] if run.baseline else [])
    head = " | ".join(f"{c['system']} (k={c['k']})" for c in cols)
    lines = [f"| metric | {head} |", "| --- |" + " ---: |" * len(cols)]
    for key, label in METRIC_LABELS.items():
        lines.append(f"| {label} | " + " | ".join(_fmt(c["overall"].get(key), key) for c in cols) + " |")
    return lines


def _per_type_table(run: EvalRun) -> list[str]:
    keys = [
        "n",
        "correctness",
        "recall_at_k",
        "mrr",
        "citation_precision",
        "refusal_accuracy",
        "false_refusal_rate",
    ]
    heads = ["items", "correct", "recall@k", "MRR", "cit. precision", "refusal acc.", "false refusal"]
    base = run.metrics["baseline"]["per_type"] if run.baseline else None
    if base:
        heads += ["baseline correct", "baseline recall@k"]
    lines = ["| type | " + " | ".join(heads) + " |", "| --- |" + " ---: |" * len(heads)]
    for t, m in run.metrics["per_type"].items():
        cells = [_fmt(m.get(k), k) for k in keys]
        if base:
            b = base.get(t, {})
            cells += [_fmt(b.get("correctness")), _fmt(b.get("recall_at_k"))]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return lines


def _failure_block(row: dict[str, Any]) -> list[str]:
    out = [f"### `{row['id']}` ({row['type']}, line {row.get('line', '?')})", ""]
    out.append(f"- **question:** {_md_cell(row['question'], 400)}")
    if row.get("history"):
        out.append(f"- **history:** {len(row['history'])} turn(s); last: {_md_cell(row['history'][-1][0])}")
    if row.get("gold_answer"):
        out.append(f"- **gold:** {_md_cell(row['gold_answer'], 300)}")
    refused = " *(refused)*" if row.get("refused") else ""
    out.append(f"- **answer{refused}:** {_md_cell(row.get('answer', ''), 400)}")
    out.append("- **why:** " + "; ".join(_md_cell(r, 160) for r in row.get("reasons", [])))
    gold = row.get("gold_spans", [])
    passages = row.get("passages", [])
    if passages:
        out += [
            "",
            "| rank | doc | span | score | gold? | passage |",
            "| ---: | --- | --- | ---: | :---: | --- |",
        ]
        for rank, p in enumerate(passages, start=1):
            hit = any(
                g["doc"] == p.get("doc") and p["start"] < g["end"] and g["start"] < p["end"] for g in gold
            )
            body = _md_cell(p.get("text") or p.get("quote", ""))
            out.append(
                f"| {rank} | {p.get('doc', '')} | {p.get('start')}–{p.get('end')} | "
                f"{_fmt(p.get('score'))} | {'✓' if hit else ''} | {body} |"
            )
    out.append("")
    return out


def write_report(run: EvalRun, plots: bool = True) -> dict[str, str]:
    """Write report.md (and the PNGs unless ``plots`` is false) into ``run.out_dir``.

    Returns {plot name: file name} for the plots written.
    """
    out = run.out_dir
    names = {"by_type": "by_type.png", "latency": "latency.png", "refusal_threshold": "refusal_threshold.png"}
    if plots:
        plot_by_type(run, out / names["by_type"])
        plot_latency(run, out / names["latency"])
        plot_threshold(run, out / names["refusal_threshold"])

    def img(key: str, alt: str) -> list[str]:
        return [f"![{alt}]({names[key]})", ""] if plots else []

    m = run.metrics
    md = [
        f"# Evaluation: {m['system']}",
        "",
        f"Questions: `{m.get('questions', '')}` — {m['overall']['n']} scored, {len(run.errors)} malformed "
        f"line(s), {len(m.get('data_errors', []))} data error(s). Created {m.get('created', '')}.",
        "",
        "## Overall",
        "",
        *_overall_table(run),
        "",
        "Recall@k: an item counts when every non-whitespace character of each gold quote lies inside "
        "the top-k passages of its document. MRR: reciprocal rank of the first top-k passage overlapping "
        "a gold span. Citation precision: cited spans overlapping gold evidence or holding a must-contain "
        "string. Exactness: the citation quote equals the document text at its offsets.",
        "",
        "## Per type",
        "",
        *_per_type_table(run),
        "",
        *img("by_type", "per-type correctness and recall"),
        "## Latency per stage (ms)",
        "",
        "| stage | p50 | p95 | mean |",
        "| --- | ---: | ---: | ---: |",
    ]
    for stage, s in m["latency_ms"].items():
        md.append(f"| {stage} | {s['p50']:.1f} | {s['p95']:.1f} | {s['mean']:.1f} |")
    md += ["", *img("latency", "latency"), "## Refusal threshold", ""]
    cur, best = m.get("refusal_threshold"), m.get("best_threshold")
    if cur is not None:
        md.append(f"Current `refusal_threshold` = {cur:.2f}.")
    if best:
        md.append(
            f"On this set the best overall correctness {best['overall_correct']:.3f} is reached for "
            f"thresholds {best['threshold_low']:.2f}–{best['threshold_high']:.2f} "
            f"(at {best['threshold']:.2f}: "
            f"answering {best['answered_share']:.0%} of questions, {_fmt(best['answered_correct'])} of them "
            "correctly). "
            "Refused items count as wrong when answered at a lower threshold, so the curve is exact only "
            "at and above the current threshold."
        )
    md += ["", *img("refusal_threshold", "refusal threshold trade-off")]
    if run.errors or m.get("data_errors"):
        md += ["## Question-file problems", ""]
        md += [f"- line {e['line']}, field `{e['field']}`: {e['error']}" for e in run.errors]
        md += [f"- `{e['id']}` (line {e['line']}): {e['error']}" for e in m.get("data_errors", [])]
        md.append("")
    failed = [r for r in run.results if not r["passed"]]
    md += [f"## Failures ({len(failed)} of {len(run.results)})", ""]
    for row in failed:
        md += _failure_block(row)
    if run.baseline:
        b_failed = [r for r in run.baseline.results if not r["passed"]]
        md += [
            f"## Baseline failures: {run.baseline.metrics['system']} ({len(b_failed)} of "
            f"{len(run.baseline.results)})",
            "",
        ]
        md += [
            f"- `{r['id']}` ({r['type']}): " + "; ".join(_md_cell(x, 120) for x in r["reasons"])
            for r in b_failed
        ]
        md.append("")
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    return names if plots else {}

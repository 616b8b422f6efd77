"""report.md and PNG plots for an evaluation run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from citeqa.scoring import METRIC_LABELS, TABLE_METRICS, fmt_metric  # noqa: E402

if TYPE_CHECKING:
    from citeqa.evaluate import EvalRun

SYSTEM_COLOR = "#1f77b4"
BASELINE_COLORS = ("#ff7f0e", "#9467bd", "#8c564b", "#e377c2")


def _color(i: int) -> str:
    """Colour of the i-th system of a run (0: citeqa, then its baselines)."""
    return SYSTEM_COLOR if i == 0 else BASELINE_COLORS[(i - 1) % len(BASELINE_COLORS)]


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
    types = list(per)
    systems = run.systems
    panels = [("correctness", "Answer correctness"), ("recall_at_k", "Evidence recall@k")]
    fig, axes = plt.subplots(
        1, 2, figsize=(max(8.0, (0.5 + 0.35 * len(systems)) * len(types) + 4), 4.2), sharey=True
    )
    width = 0.8 / len(systems) if len(systems) > 1 else 0.6
    xs = range(len(types))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for i, r in enumerate(systems):
            m = r.metrics
            vals = [_num(m.get("per_type", {}).get(t, {}).get(key)) for t in types]
            label = m["system"] + (f" (k={m.get('k')})" if key == "recall_at_k" else "")
            off = (i - (len(systems) - 1) / 2) * width
            bars = ax.bar(
                [x + off for x in xs],
                [0 if math.isnan(v) else v for v in vals],
                width,
                color=_color(i),
                label=label,
            )
            _label_bars(ax, bars, vals)
        ax.set_title(title)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([f"{t}\n(n={per[t]['n']})" for t in types], rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.3)
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", ncol=len(systems), frameon=False)
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
    series = [(r.metrics["system"], totals(r.results), _color(i)) for i, r in enumerate(run.systems)]
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
    """The refusal trade-off over thresholds on ``Answer.support``, the current threshold marked."""
    curve = run.metrics["threshold_curve"]
    cur = run.metrics.get("refusal_threshold")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ts = [p["threshold"] for p in curve]

    def series(key: str) -> list[float]:
        return [_num(p.get(key)) for p in curve]

    ax1.plot(ts, series("unanswerable_refused"), label="unanswerable refused", color="#2ca02c",
             drawstyle="steps-post")
    ax1.plot(ts, series("false_refusal"), label="false refusals (answerable refused)", color="#d62728",
             drawstyle="steps-post")
    ax1.plot(ts, series("answer_correct"), label="answer correct (answerable)", color=SYSTEM_COLOR,
             drawstyle="steps-post")
    ax1.plot(ts, series("overall_correct"), label="correct, all items", color="#555555", linestyle=":",
             drawstyle="steps-post")
    if cur is not None:
        ax1.axvline(cur, color="black", linestyle="--", label=f"current threshold {cur:.2f}")
    ax1.set_xlabel("refusal threshold on Answer.support = P(the sources answer)")
    ax1.set_ylim(-0.02, 1.05)
    ax1.set_title("Refusal threshold sweep")
    ax1.legend(fontsize=7, loc="best")
    ax1.grid(alpha=0.3)
    fr, ur = series("false_refusal"), series("unanswerable_refused")
    ax2.plot(fr, ur, marker=".", color="#2ca02c", drawstyle="steps-post", label="thresholds 0 → 1")
    ax2.axvline(0.08, color="#d62728", linestyle=":", alpha=0.7, label="false-refusal target 0.08")
    if cur is not None and curve:
        p = min(curve, key=lambda c: abs(c["threshold"] - cur))
        ax2.scatter([_num(p.get("false_refusal"))], [_num(p.get("unanswerable_refused"))], s=90, color="black",
                    zorder=5, label=f"current ({cur:.2f})")
    ax2.set_xlabel("false refusals (share of answerable refused)")
    ax2.set_ylabel("unanswerable refused")
    ax2.set_xlim(-0.02, 1.02)
    ax2.set_ylim(-0.02, 1.05)
    ax2.set_title("Refusal trade-off")
    ax2.legend(fontsize=8, loc="lower right")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- markdown


def overall_table(run: EvalRun, keys: dict[str, str] | None = None) -> list[str]:
    """One markdown table, a column per system (citeqa first, then each baseline): the side-by-side
    metrics of :data:`TABLE_METRICS`, then the rest of :data:`METRIC_LABELS` (or just ``keys``)."""
    systems = run.systems
    rows = keys or {**TABLE_METRICS, **{k: v for k, v in METRIC_LABELS.items() if k not in TABLE_METRICS}}
    head = " | ".join(f"{r.metrics['system']} (k={r.metrics.get('k')})" for r in systems)
    lines = [f"| metric | {head} |", "| --- |" + " ---: |" * len(systems)]
    for key, label in rows.items():
        lines.append(f"| {label} | " + " | ".join(_fmt(r.metrics["overall"].get(key), key) for r in systems) + " |")
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
    for b in run.baselines:
        heads += [f"{b.metrics['system']} correct", f"{b.metrics['system']} recall@k"]
    lines = ["| type | " + " | ".join(heads) + " |", "| --- |" + " ---: |" * len(heads)]
    for t, m in run.metrics["per_type"].items():
        cells = [_fmt(m.get(k), k) for k in keys]
        for b in run.baselines:
            bm = b.metrics.get("per_type", {}).get(t, {})
            cells += [_fmt(bm.get("correctness")), _fmt(bm.get("recall_at_k"))]
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


def _threshold_section(m: dict[str, Any]) -> list[str]:
    """The refusal trade-off in words and a table at a few thresholds, the current one included."""
    curve = {p["threshold"]: p for p in m.get("threshold_curve", [])}
    cur, best = m.get("refusal_threshold"), m.get("best_threshold")
    md = []
    if cur is not None:
        md.append(
            f"The answerer refuses when `Answer.support` (P(the sources answer the question)) is below "
            f"{cur:.2f}."
        )
    if best:
        md.append(
            f"On this set the best correctness over all items, {best['overall_correct']:.3f}, is reached for "
            f"thresholds {best['threshold_low']:.2f}–{best['threshold_high']:.2f}. "
            "Refused items count as wrong when answered at a lower threshold, so the curve is exact only "
            "at and above the current threshold."
        )
    if curve:
        shown = sorted({0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
                       | ({round(round(cur * 100) / 100, 4)} if cur is not None else set()))
        md += ["", "| threshold | unanswerable refused | false refusals | answer correct | correct, all items |",
               "| ---: | ---: | ---: | ---: | ---: |"]
        for t in shown:
            p = curve.get(t)
            if p is None:
                continue
            mark = " (current)" if cur is not None and abs(t - cur) < 0.005 else ""
            md.append(
                f"| {t:.2f}{mark} | {_fmt(p.get('unanswerable_refused'))} | {_fmt(p.get('false_refusal'))} | "
                f"{_fmt(p.get('answer_correct'))} | {_fmt(p.get('overall_correct'))} |"
            )
    return md


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
        *overall_table(run),
        "",
        "Recall@k: an item counts when every non-whitespace character of each gold quote lies inside "
        "the top-k passages of its document. MRR: reciprocal rank of the first top-k passage overlapping "
        "a gold span. Citation precision: cited spans overlapping gold evidence or holding a must-contain "
        "string. Exactness: the citation quote equals the document text at its offsets. Answer correct: "
        "answerable items answered (not refused) with every must-contain string, or for yes/no items with "
        "the labelled verdict as the answer's first word; correct, all items: the same plus unanswerable "
        "items refused.",
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
    md += _threshold_section(m)
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
    for b in run.baselines:
        b_failed = [r for r in b.results if not r["passed"]]
        md += [f"## Baseline failures: {b.metrics['system']} ({len(b_failed)} of {len(b.results)})", ""]
        md += [
            f"- `{r['id']}` ({r['type']}): " + "; ".join(_md_cell(x, 120) for x in r["reasons"])
            for r in b_failed
        ]
        md.append("")
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    return names if plots else {}

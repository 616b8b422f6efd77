"""Scoring for the evaluation harness: question-file parsing, per-item metrics, aggregation.

See :mod:`citeqa.evaluate` for the question-file format and the runner.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from citeqa.eval_questions import EvalItem, Evidence
from citeqa.textutil import find_quotes
from citeqa.types import Answer

DocTextFn = Callable[[str], str]


# ---------------------------------------------------------------- scoring helpers

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), "-")
_MARKER = re.compile(r"\s*\[\d+(?:\s*[,;\u2013-]\s*\d+)*\]")


def normalise(text: str) -> str:
    """Lower-case, unify comparison signs and dashes, drop [n] markers, squeeze whitespace."""
    t = _MARKER.sub("", text).translate(_DASHES).replace("\u00a0", " ").replace("\u202f", " ")
    t = t.replace("\u2265", ">=").replace("\u2264", "<=").replace("\u2009", " ")
    return re.sub(r"\s+", " ", t).strip().lower()


def contains(haystack: str, needle: str) -> bool:
    if needle.lower() in haystack.lower():
        return True
    return normalise(needle) in normalise(haystack)


def word_count(text: str) -> int:
    """Words in an answer, [n] markers and bare punctuation not counted."""
    return sum(1 for w in _MARKER.sub(" ", text).split() if any(c.isalnum() for c in w))


Span = tuple[int, int]


def evidence_covered(doc_text: str, span: Span, passage_spans: Iterable[Span]) -> bool:
    """True when every non-whitespace char of ``doc_text[span]`` lies inside the union of the spans."""
    qs, qe = span
    covered = bytearray(qe - qs)
    for s, e in passage_spans:
        lo, hi = max(s, qs), min(e, qe)
        if lo < hi:
            covered[lo - qs : hi - qs] = b"\x01" * (hi - lo)
    return all(covered[i - qs] or doc_text[i].isspace() for i in range(qs, qe))


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _short(text: str, n: int = 60) -> str:
    t = " ".join(text.split())
    return t if len(t) <= n else t[: n - 1] + "\u2026"


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]); NaN for no values."""
    if not values:
        return math.nan
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


_VERDICT_LEAD = re.compile(r"^(?:(?:short answer|answer|verdict)\s*[:\-]\s*[^a-z0-9]*)?(yes|no|maybe)\b")
VERDICTS = ("yes", "no", "maybe")


def verdict(text: str) -> str | None:
    """The verdict word an answer leads with ("yes", "no", "maybe"), as the external packs' scorer reads it:
    the first word after leading punctuation/markdown and an optional "Answer:"; None when there is none."""
    t = re.sub(r"^[^a-z0-9]+", "", text.strip().lower())
    m = _VERDICT_LEAD.match(t)
    return m.group(1) if m else None


def yes_no_label(item: EvalItem) -> str:
    """The expected verdict of a yes/no item (its ``label``, else a must_contain of just "yes"/"no"), or ""."""
    if item.type != "yes_no":
        return ""
    if item.label in VERDICTS:
        return item.label
    must = [m.strip().lower() for m in item.must_contain]
    return must[0] if len(must) == 1 and must[0] in VERDICTS else ""


# ---------------------------------------------------------------- per-item scoring


def score_item(item: EvalItem, answer: Answer, doc_text: DocTextFn, k: int = 5) -> dict[str, Any]:
    """Score one answer. Returns the results.jsonl row (without the wall-clock timing)."""
    reasons: list[str] = []
    data_errors: list[str] = []
    texts: dict[str, str | None] = {}

    def text_of(doc: str) -> str | None:
        if doc not in texts:
            try:
                texts[doc] = doc_text(doc)
            except Exception:  # unknown doc, unreadable file: the caller reports it
                texts[doc] = None
        return texts[doc]

    # gold spans
    gold: list[tuple[Evidence, Span]] = []
    for ev in item.evidence:
        t = text_of(ev.doc)
        if t is None:
            data_errors.append(f"evidence doc {ev.doc!r} not found")
            continue
        if ev.start is not None and ev.end is not None and t[ev.start : ev.end] == ev.quote:
            found = [(ev.start, ev.end)]
        else:
            # Whitespace may differ in tables (tabs for spaces); a quote the document states twice (an
            # abstract's sentence repeated in the results) is gold at both places.
            found = find_quotes(t, ev.quote)
        if not found:
            data_errors.append(f"gold quote not found in {ev.doc}: {_short(ev.quote)!r}")
            continue
        gold += [(ev, span) for span in found]

    # retrieval
    passages = list(answer.passages)
    top = passages[:k]
    recall: float | None = None
    mrr: float | None = None
    if item.evidence and not data_errors:
        hits = []
        for ev in item.evidence:  # each quote must be found at one of the places it stands
            spans = [(int(p["start"]), int(p["end"])) for p in top if p.get("doc") == ev.doc]
            ok = any(evidence_covered(texts[ev.doc] or "", span, spans) for e, span in gold if e is ev)
            hits.append(ok)
            if not ok:
                reasons.append(f"evidence not in top-{k}: {_short(ev.quote)!r}")
        recall = 1.0 if all(hits) else 0.0
        mrr = 0.0
        for rank, p in enumerate(top, start=1):
            ps = (int(p["start"]), int(p["end"]))
            if any(p.get("doc") == ev.doc and _overlaps(ps, span) for ev, span in gold):
                mrr = 1.0 / rank
                break

    # answer correctness
    label = yes_no_label(item)
    if label:  # yes/no: the answer's leading verdict word must be the label ("no" occurs in any text)
        got = verdict(answer.text)
        missing = [] if got == label else [f"verdict {label}" + (f" (answer leads with {got})" if got else "")]
    else:
        missing = [m for m in item.must_contain if not contains(answer.text, m)]
    if item.unanswerable:
        correct = answer.refused
        if not correct:
            reasons.append("answered an unanswerable question")
    else:
        correct = not answer.refused and not missing
        if answer.refused:
            reasons.append("falsely refused")
        else:
            reasons.extend(f"missing {m!r}" if not label else f"wrong {m}" for m in missing)

    # citations
    gold_by_doc: dict[str, list[Span]] = {}
    for ev, span in gold:
        gold_by_doc.setdefault(ev.doc, []).append(span)
    cit_good = cit_exact = 0
    for c in answer.citations:
        span = (c.start, c.end)
        cited = f"{c.quote}\n{c.text}"
        if any(_overlaps(span, g) for g in gold_by_doc.get(c.doc, [])) or (
            not label and any(contains(cited, m) for m in item.must_contain)
        ):
            cit_good += 1
        t = text_of(c.doc)
        if t is not None and t[c.start : c.end] == c.quote and c.end > c.start:
            cit_exact += 1
        else:
            reasons.append(f"citation [{c.n}] is not exact document text ({c.doc} {c.start}:{c.end})")
    n_cit = len(answer.citations)

    return {
        "id": item.id,
        "type": item.type,
        "line": item.line,
        "question": item.question,
        "history": [list(h) for h in item.history],
        "gold_answer": item.answer,
        "must_contain": list(item.must_contain),
        "unanswerable": item.unanswerable,
        "answer": answer.text,
        "refused": answer.refused,
        "support": round(float(answer.support), 4),
        "gated": bool(answer.gated),
        "citations": [c.to_dict() for c in answer.citations],
        "passages": top,
        "gold_spans": [{"doc": ev.doc, "start": s, "end": e} for ev, (s, e) in gold],
        "metrics": {
            "correct": correct,
            "recall_at_k": recall,
            "mrr": mrr,
            "n_citations": n_cit,
            "citations_relevant": cit_good,
            "citations_exact": cit_exact,
            "citation_precision": cit_good / n_cit if n_cit else None,
            "citation_exactness": cit_exact / n_cit if n_cit else None,
            "answer_words": word_count(answer.text),
        },
        "timings_ms": {k_: round(float(v), 2) for k_, v in answer.timings_ms.items()},
        "passed": not reasons and not data_errors,
        "reasons": reasons,
        "data_errors": data_errors,
    }


# ---------------------------------------------------------------- aggregation

METRIC_LABELS: dict[str, str] = {
    "n": "items",
    "correctness": "answer correctness",
    "answer_correct": "answer correct (answerable)",
    "recall_at_k": "evidence recall@k",
    "mrr": "MRR",
    "refusal_accuracy": "refusal accuracy",
    "false_refusal_rate": "false-refusal rate",
    "citation_precision": "citation precision",
    "citation_exactness": "citation exactness",
    "answer_words_mean": "answer length (words, mean)",
    "latency_p50_ms": "latency p50 (ms)",
    "latency_p95_ms": "latency p95 (ms)",
    "pass_rate": "pass rate",
}

# The side-by-side table of citeqa and the baselines (``citeqa eval`` output and report.md).
TABLE_METRICS: dict[str, str] = {
    "answer_correct": "answer correct",
    "recall_at_k": "evidence recall@k",
    "refusal_accuracy": "unanswerable refused",
    "false_refusal_rate": "false refusals",
    "citation_precision": "citation precision",
    "citation_exactness": "citation quote exact",
    "answer_words_mean": "mean answer words",
    "latency_p50_ms": "latency p50 (ms)",
    "latency_p95_ms": "latency p95 (ms)",
    "correctness": "correct, all items",
}


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall metrics for a set of results rows (None where nothing was measurable)."""
    ok = [r for r in rows if "metrics" in r]
    m = [r["metrics"] for r in ok]
    unans = [r for r in ok if r["unanswerable"]]
    ans = [r for r in ok if not r["unanswerable"]]
    rec = [x["recall_at_k"] for x in m if x["recall_at_k"] is not None]
    mrr = [x["mrr"] for x in m if x["mrr"] is not None]
    n_cit = sum(x["n_citations"] for x in m)
    totals = [float(r["timings_ms"].get("total", r.get("wall_ms", 0.0))) for r in ok]
    return {
        "n": len(rows),
        "correctness": _mean([float(x["correct"]) for x in m]) if rows else None,
        "answer_correct": _mean([float(r["metrics"]["correct"]) for r in ans]),
        "recall_at_k": _mean(rec),
        "n_with_evidence": len(rec),
        "mrr": _mean(mrr),
        "refusal_accuracy": _mean([float(r["refused"]) for r in unans]),
        "n_unanswerable": len(unans),
        "false_refusal_rate": _mean([float(r["refused"]) for r in ans]),
        "n_answerable": len(ans),
        "citation_precision": sum(x["citations_relevant"] for x in m) / n_cit if n_cit else None,
        "citation_exactness": sum(x["citations_exact"] for x in m) / n_cit if n_cit else None,
        "n_citations": n_cit,
        "answer_words_mean": _mean([float(x["answer_words"]) for x in m]),
        "latency_p50_ms": percentile(totals, 50) if totals else None,
        "latency_p95_ms": percentile(totals, 95) if totals else None,
        "pass_rate": _mean([float(r["passed"]) for r in rows]) if rows else None,
    }


def latency_stats(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    stages: dict[str, list[float]] = {}
    for r in rows:
        for stage, ms in r.get("timings_ms", {}).items():
            stages.setdefault(stage, []).append(float(ms))
        if "wall_ms" in r:
            stages.setdefault("wall", []).append(float(r["wall_ms"]))
    return {
        s: {"p50": percentile(v, 50), "p95": percentile(v, 95), "mean": sum(v) / len(v), "n": len(v)}
        for s, v in stages.items()
    }


def threshold_curve(rows: Sequence[dict[str, Any]], steps: int = 101) -> list[dict[str, float]]:
    """The refusal trade-off as a threshold on ``support`` (P(the sources answer)) moves from 0 to 1.

    At threshold t an item is answered iff support >= t and the detail gate did not refuse it (``gated``:
    that gate's own threshold stays where it is). Per t: ``unanswerable_refused`` (share of
    unanswerable items refused), ``false_refusal`` (share of answerable items refused), ``answer_correct``
    (share of answerable items answered correctly), ``answered_share``, ``answered_correct`` (correct among
    answered) and ``overall_correct`` (answerable answered correctly plus unanswerable refused, over all).
    An item the system refused has no answer text to score, so it counts as wrong if answered at a lower
    threshold: the curve is exact at and above the current threshold.
    """
    scored = [r for r in rows if "metrics" in r]
    out: list[dict[str, float]] = []
    if not scored:
        return out

    def content_ok(r: dict[str, Any]) -> bool:
        if r["unanswerable"] or r["refused"]:
            return False
        if "correct" in r["metrics"]:
            return bool(r["metrics"]["correct"])
        return all(contains(r["answer"], m) for m in r["must_contain"])

    ok = {r["id"]: content_ok(r) for r in scored}
    unans = [r for r in scored if r["unanswerable"]]
    ans = [r for r in scored if not r["unanswerable"]]
    def refused(r: dict[str, Any], t: float) -> bool:
        return bool(r["support"] < t or r.get("gated"))

    for i in range(steps):
        t = i / (steps - 1)
        answered = [r for r in scored if not refused(r, t)]
        good_answered = sum(ok[r["id"]] for r in answered)
        good_refused = sum(1 for r in unans if refused(r, t))
        out.append(
            {
                "threshold": round(t, 4),
                "answered_share": len(answered) / len(scored),
                "answered_correct": good_answered / len(answered) if answered else math.nan,
                "overall_correct": (good_answered + good_refused) / len(scored),
                "unanswerable_refused": good_refused / len(unans) if unans else math.nan,
                "false_refusal": sum(1 for r in ans if refused(r, t)) / len(ans) if ans else math.nan,
                "answer_correct": good_answered / len(ans) if ans else math.nan,
            }
        )
    return out


def summarise(
    rows: list[dict[str, Any]], *, system: str, k: int, refusal_threshold: float | None
) -> dict[str, Any]:
    types = sorted({r["type"] for r in rows})
    curve = threshold_curve(rows)
    best: dict[str, float] | None = None
    if curve:
        top = max(p["overall_correct"] for p in curve)
        ties = [p for p in curve if p["overall_correct"] == top]
        # among equally good thresholds, the one nearest the current setting
        near = min(ties, key=lambda p: abs(p["threshold"] - (refusal_threshold or 0.0)))
        best = {**near, "threshold_low": ties[0]["threshold"], "threshold_high": ties[-1]["threshold"]}
    return {
        "system": system,
        "k": k,
        "overall": aggregate(rows),
        "per_type": {t: aggregate([r for r in rows if r["type"] == t]) for t in types},
        "latency_ms": latency_stats(rows),
        "refusal_threshold": refusal_threshold,
        "threshold_curve": curve,
        "best_threshold": best,
        "failed_ids": [r["id"] for r in rows if not r["passed"]],
    }


def fmt_metric(v: Any, key: str = "") -> str:
    """Table cell for a metric value (counts as integers, ms/words with one decimal)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if key == "n" or key.startswith("n_"):
        return str(int(v))
    if key.endswith("_ms") or key.endswith("_mean"):
        return f"{v:.1f}"
    return f"{v:.3f}" if isinstance(v, float) else str(v)

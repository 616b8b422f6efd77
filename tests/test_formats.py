"""Markdown reviews and HTML news pages, the kinds of document a user drops in besides .txt and PDF:
pipe tables become citable rows, headings nest as written, bullets and page chrome stay out of the
quotes, and the real answerer finds figures in them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from citeqa.config import Settings
from citeqa.ingest import parse_document
from citeqa.ingest.loaders import html_to_text
from conftest import assert_quotes_exact

REVIEW = """---
title: "CAR-T cell therapy in relapsed B-ALL: a narrative review"
authors: Jane Doe, John Roe
date: 2023-05-02
---

# CAR-T cell therapy in relapsed B-ALL: a narrative review

## Abstract

Chimeric antigen receptor (CAR) T cells targeting CD19 induce remission in most patients with relapsed
B-cell acute lymphoblastic leukaemia. Durability remains the main problem.

## Efficacy across trials

The ELIANA trial enrolled 75 children and young adults; the remission rate within 3 months was **81%**.

**Table 2.** Outcomes of the pivotal CAR-T trials

| Trial | Population | Patients | CR rate | Median OS |
|---|---|---:|---:|---|
| ELIANA | children, young adults | 75 | 81% | 19.1 months |
| ZUMA-3 | adults | 55 | 71% | 18.2 months |

- Cytokine release syndrome occurred in 77% of ELIANA patients.
- Neurotoxicity of grade 3 or higher occurred in 25% of ZUMA-3 patients.

## Safety

Most toxic effects were reversible.
"""

NEWS = """<!doctype html><html><head><title>New drug approved for leukemia | Health News Daily</title>
<meta name="author" content="Sam Reporter"><meta property="article:published_time" content="2024-03-05"></head>
<body><header><a href="/">Health News Daily</a><nav><a href="/health">Health</a> | <a href="/s">Subscribe</a></nav>
<h1>FDA approves new drug for adult leukemia</h1><p class="byline">By Sam Reporter, March 5, 2024</p></header>
<article>
<p>The Food and Drug Administration on Tuesday approved obecabtagene autoleucel for adults with relapsed
B-cell precursor acute lymphoblastic leukemia.</p>
<p>In the FELIX trial, 76% of the 94 patients who received the therapy achieved remission, the agency said.</p>
<p>The therapy will cost about $525,000 per treatment, according to the manufacturer.</p>
</article>
<aside><h3>Related stories</h3><ul><li><a href="/a">Cancer drug prices soar</a></li></ul></aside>
<footer>© 2024 Health News Daily. All rights reserved.</footer><script>var x = 1;</script></body></html>
"""


PRESS = """FOR IMMEDIATE RELEASE

Acme Bio Announces Positive Results from Phase 3 HORIZON-7 Trial of Zelabrutinib in Mantle Cell Lymphoma

CAMBRIDGE, Mass., March 3, 2025 /PRNewswire/ -- Acme Bio, Inc. today announced that the Phase 3 HORIZON-7 trial
of zelabrutinib in relapsed mantle cell lymphoma met its primary endpoint. Median progression-free survival was
21.4 months with zelabrutinib compared with 11.2 months with investigator's choice (hazard ratio 0.48).

The trial enrolled 412 patients at 120 sites in 18 countries.

HORIZON-7 (NCT05551234) is a randomized, open-label, multicenter Phase 3 trial.

Forward-Looking Statements

This press release contains forward-looking statements, including statements regarding the potential of
zelabrutinib to improve outcomes. Actual results may differ materially.
"""


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("formats")
    (d / "review.md").write_text(REVIEW, encoding="utf-8")
    (d / "news.html").write_text(NEWS, encoding="utf-8")
    (d / "press.txt").write_text(PRESS, encoding="utf-8")
    return d


def test_markdown_pipe_table_rows_and_sections(docs: Path) -> None:
    pd = parse_document(docs / "review.md", {}, Settings())
    rows = [u for u in pd.units if u.kind == "row"]
    zuma = next(u for u in rows if u.text.startswith("Table 2. Outcomes of the pivotal CAR-T trials — ZUMA-3"))
    assert dict(zuma.cells) == {"Population": "adults", "Patients": "55", "CR rate": "71%",
                                "Median OS": "18.2 months"}
    assert pd.text[zuma.sentences[0].start:zuma.sentences[0].end] == "| ZUMA-3 | adults | 55 | 71% | 18.2 months |"
    assert not any(set(u.text) <= set("|-: ") for u in pd.units)  # the |---| rule is no row
    # "## Efficacy across trials" follows the abstract at its level: a section of its own.
    assert {"Abstract", "Efficacy across trials", "Safety"} <= set(pd.sections)
    bullets = [s.text for u in pd.units for s in u.sentences if "occurred in" in s.text]
    assert bullets == ["Cytokine release syndrome occurred in 77% of ELIANA patients.",
                       "Neurotoxicity of grade 3 or higher occurred in 25% of ZUMA-3 patients."]
    assert all(u.section == "Efficacy across trials" for u in pd.units if "occurred in" in u.text)
    assert pd.meta.title == "CAR-T cell therapy in relapsed B-ALL: a narrative review"  # no YAML quotes
    from citeqa.answer.compose import render_row

    # Column headers in running text keep their acronyms.
    assert render_row(zuma) == "ZUMA-3: population adults; patients 55; CR rate 71%; median OS 18.2 months"


def test_html_page_keeps_title_and_byline_and_drops_chrome(docs: Path) -> None:
    text = html_to_text(NEWS)
    assert "# FDA approves new drug for adult leukemia" in text and "By Sam Reporter, March 5, 2024" in text
    assert not any(w in text for w in ("Subscribe", "Related stories", "All rights reserved", "var x"))
    assert "\n#\n" not in text and not text.rstrip().endswith("#")  # no heading marks left without text
    pd = parse_document(docs / "news.html", {}, Settings())
    assert pd.meta.title == "FDA approves new drug for adult leukemia"
    assert pd.meta.authors == "Sam Reporter" and pd.meta.year == "2024"
    # A page without <h1> is headed by its <title>.
    assert html_to_text("<title>Only a title</title><p>Body text here.</p>").startswith("# Only a title\n")
    assert html_to_text("<title>Page</title><svg><title>icon</title></svg><p>Body.</p>").startswith("# Page\n")


def test_answers_from_a_markdown_table_and_a_news_page(docs: Path, tmp_path: Path) -> None:
    from citeqa import Assistant, Index

    settings = Settings(index_dir=tmp_path / "index", seeds_dir=docs)
    index = Index.build([docs], settings)
    bot = Assistant(index, settings)
    ans = bot.ask("What was the complete remission rate in the ZUMA-3 trial?")
    assert not ans.refused and "71%" in ans.text
    assert any(c.doc == "review.md" for c in ans.citations)
    cost = bot.ask("How much will the new leukemia therapy cost per treatment?")
    assert not cost.refused and "$525,000" in cost.text and cost.citations[0].doc == "news.html"
    for a in (ans, cost):
        for c in a.citations:
            assert c.quote == index.quote(c.doc, c.start, c.end)


def test_press_release_dateline_study_name_and_boilerplate(docs: Path) -> None:
    from citeqa.answer.features import NEVER_EVIDENCE

    meta = parse_document(docs / "press.txt", {}, Settings()).meta
    assert meta.date == "2025-03-03"
    # "Phase 3 HORIZON-7": the 3 is the phase, not a quantity the token would be the unit of.
    assert "HORIZON-7" in meta.aliases and meta.trial_id.startswith("NCT05551234")
    assert NEVER_EVIDENCE.search("This press release contains forward-looking statements, including statements")
    assert not NEVER_EVIDENCE.search("The trial enrolled 412 patients at 120 sites in 18 countries.")


def test_answers_from_a_press_release_routed_by_study_name(docs: Path, tmp_path: Path) -> None:
    from citeqa import Assistant, Index

    settings = Settings(index_dir=tmp_path / "index", seeds_dir=docs)
    index = Index.build([docs], settings)
    assert index.mentioned_docs("How many patients did HORIZON-7 enrol?") == {"press.txt"}
    ans = Assistant(index, settings).ask("How many patients did the HORIZON-7 trial enrol?")
    assert not ans.refused and "412" in ans.text and ans.citations[0].doc == "press.txt"
    assert not any("forward-looking" in c.quote for c in ans.citations)


def test_html_table_caption_and_the_text_after_it(tmp_path: Path) -> None:
    page = ("<html><body><article><h1>Trial results</h1><p>The table below summarises the outcomes.</p>"
            "<table><caption>Table 1. Outcomes by arm</caption><tr><th>Outcome</th><th>Drug (n=100)</th>"
            "<th>Placebo (n=98)</th></tr><tr><td>Remission</td><td>45%</td><td>20%</td></tr></table>"
            "<p>Serious adverse events were similar.</p></article></body></html>")
    (tmp_path / "t.html").write_text(page, encoding="utf-8")
    pd = parse_document(tmp_path / "t.html", {}, Settings())
    row = next(u for u in pd.units if u.kind == "row" and "Remission" in u.text)
    assert row.text == "Table 1. Outcomes by arm — Remission — Drug (n=100): 45% — Placebo (n=98): 20%"
    chunks = {u.text: u.section for u in pd.units if u.kind == "chunk"}
    # The caption left the paragraph above; the paragraph below is text again, not a note of the table.
    assert chunks == {"The table below summarises the outcomes.": "Trial results",
                      "Serious adverse events were similar.": "Trial results"}


def test_news_bylines_are_never_evidence() -> None:
    from citeqa.ingest.bylines import is_byline

    for line in ("By Priya Natarajan, Health Correspondent · November 11, 2023", "By Sam Reporter, March 5, 2024",
                 "By John Smith and Jane van der Berg"):
        assert is_byline(line), line
    for sentence in ("By contrast, the rate was 5%.", "By Week 12, 45% of patients responded.",
                     "By 2020, most centres had adopted it.", "By Monday the trial was stopped."):
        assert not is_byline(sentence), sentence


PLAIN_RELEASE = """Nordvik Reports Positive Topline Results from Phase 2b LUMEN-2 Study of Orvatinib

- Clinical remission at week 12 in 31.5% of patients on orvatinib 200 mg versus 9.8% on placebo (p<0.001)
- Endoscopic improvement in 44.0% versus 17.6%
- No new safety signals

Study design

LUMEN-2 enrolled 246 patients at 61 sites in 12 countries.

About Orvatinib

Orvatinib is an investigational, oral, once-daily inhibitor of tyrosine kinase 2.

RESULTS
At week 12, clinical remission was achieved by 31.5% of patients in the 200 mg group.
"""


def test_plain_text_bullets_short_headings_and_run_in_section_names(tmp_path: Path) -> None:
    (tmp_path / "release.txt").write_text(PLAIN_RELEASE, encoding="utf-8")
    pd = parse_document(tmp_path / "release.txt", {}, Settings())
    assert {"Study design", "About Orvatinib", "RESULTS"} <= {s.split(" > ")[-1] for s in pd.sections}
    sentences = {s.text: s for u in pd.units for s in u.sentences}
    # Bullets written without full stops are a sentence each, not fragments of one.
    for bullet in ("Endoscopic improvement in 44.0% versus 17.6%", "No new safety signals"):
        assert bullet in sentences and not sentences[bullet].continues
    assert next(u.section for u in pd.units if "246 patients" in u.text).endswith("Study design")


def test_answer_from_bullets_quotes_each_once(library: Callable[..., Any]) -> None:
    index, bot = library({"release.txt": PLAIN_RELEASE})
    ans = bot.ask("Did orvatinib improve remission compared with placebo?")
    assert not ans.refused and ans.text.count("Endoscopic improvement") <= 1
    assert_quotes_exact(index, ans)


def test_html_table_with_spanning_cells_and_group_rows(tmp_path: Path) -> None:
    page = ("<html><body><article><h1>Outcomes of the HALO trial</h1>"
            "<p>Table 2 shows the main outcomes at one year.</p><table><thead>"
            "<tr><th rowspan='2'>Outcome</th><th colspan='2'>Drug A (n=120)</th>"
            "<th colspan='2'>Placebo (n=118)</th></tr>"
            "<tr><th>n</th><th>%</th><th>n</th><th>%</th></tr></thead><tbody>"
            "<tr><td colspan='5'><b>Efficacy</b></td></tr>"
            "<tr><td>Remission</td><td>54</td><td>45.0</td><td>21</td><td>17.8</td></tr>"
            "<tr><td colspan='5'><b>Safety</b></td></tr>"
            "<tr><td>Serious adverse events</td><td>9</td><td>7.5</td><td>8</td><td>6.8</td></tr>"
            "</tbody></table><p>Remission was defined as a Mayo score of 2 or less.</p></article></body></html>")
    (tmp_path / "t.html").write_text(page, encoding="utf-8")
    pd = parse_document(tmp_path / "t.html", {}, Settings())
    rows = [u.text for u in pd.units if u.kind == "row"]
    # A heading spanning two columns heads both; the row under it names them; a full-width row is a group.
    assert ("Table 1 — Efficacy — Remission — Drug A (n=120) n: 54 — Drug A (n=120) %: 45.0 — Placebo (n=118) n: 21"
            " — Placebo (n=118) %: 17.8") in rows
    assert any(r.startswith("Table 1 — Safety — Serious adverse events — Drug A (n=120) n: 9") for r in rows)
    chunks = [u.text for u in pd.units if u.kind == "chunk"]
    # "Table 2 shows …" is a sentence about a table, not its caption.
    assert chunks == ["Table 2 shows the main outcomes at one year.",
                      "Remission was defined as a Mayo score of 2 or less."]


CASE_REPORT = """Severe hyponatraemia after starting a thiazide: a case report

Helena Lindqvist
Department of Medicine, Uppsala Region Health Research Centre, Uppsala, Sweden, and Karolinska Institutet

Abstract
Thiazide-induced hyponatraemia is common in older women. We describe an 82-year-old woman with a serum sodium of 109 mmol/L.

Case presentation
An 82-year-old woman was brought to the emergency department after a seizure at home. Ten days earlier her doctor had started hydrochlorothiazide 25 mg daily.

Treatment
Hydrochlorothiazide was stopped. She received a 100 mL bolus of 3% saline, which raised her sodium to 112 mmol/L at 2 hours.

Learning points
- Check serum sodium within 2 weeks of starting a thiazide in older patients.
- Correct severe chronic hyponatraemia by no more than 8-10 mmol/L in 24 hours.
"""  # noqa: E501


def test_plain_text_headings_that_run_into_their_paragraph(tmp_path: Path) -> None:
    (tmp_path / "case.txt").write_text(CASE_REPORT, encoding="utf-8")
    pd = parse_document(tmp_path / "case.txt", {}, Settings())
    # A short line over a paragraph line far longer than itself heads it; after a one-paragraph abstract the
    # next heading opens the body rather than a part of the abstract.
    section = {u.text.split(".")[0]: u.section for u in pd.units if u.kind == "chunk"}
    assert section["Hydrochlorothiazide was stopped"] == "Case presentation > Treatment"
    assert section["An 82-year-old woman was brought to the emergency department after a seizure at home"] == \
        "Case presentation"
    assert any(s.endswith("Learning points") for s in pd.sections)
    # A name over its affiliation in the front matter is no heading.
    assert not any("Helena" in s for s in pd.sections)


LABEL = """HIGHLIGHTS OF PRESCRIBING INFORMATION
These highlights do not include all the information needed to use VELTRAZIN safely and effectively.

2 DOSAGE AND ADMINISTRATION
2.1 Recommended Dosage
The recommended dosage of VELTRAZIN is 10 mg orally once daily, taken in the morning, with or without food.

2.2 Dosage in Patients with Renal Impairment
No dose adjustment is needed for patients with an eGFR of 25 mL/min/1.73 m2 or greater.

8 USE IN SPECIFIC POPULATIONS
8.1 Pregnancy
Based on animal data showing adverse renal effects, VELTRAZIN is not recommended during pregnancy.

References
1. Smith J, Jones K. Sodium-glucose cotransporter 2 inhibitors in heart failure. N Engl J Med 2020; 383: 1413-24.
"""


def test_numbered_headings_of_a_drug_label_over_their_text(tmp_path: Path) -> None:
    (tmp_path / "label.txt").write_text(LABEL, encoding="utf-8")
    pd = parse_document(tmp_path / "label.txt", {}, Settings())
    def section(words: str) -> str:
        return next(u.section for u in pd.units if u.kind == "chunk" and words in u.text)

    # "2 DOSAGE AND ADMINISTRATION" opens a section, "2.1 Recommended Dosage" right under it is its part.
    assert section("recommended dosage") == "2 DOSAGE AND ADMINISTRATION > 2.1 Recommended Dosage"
    assert section("No dose adjustment") == "2 DOSAGE AND ADMINISTRATION > 2.2 Dosage in Patients with Renal Impairment"
    assert section("animal data") == "8 USE IN SPECIFIC POPULATIONS > 8.1 Pregnancy"
    # A numbered reference is no heading: the reference list stays under "References".
    assert section("Smith J") == "References"


def test_markdown_bold_inline_labels_give_their_sections_roles() -> None:
    from citeqa.answer import features as F

    text = "## Abstract 103: Stockings\n\n**Conclusions:** Stockings were not associated with a lower risk.\n"
    start = text.index("Stockings were")
    assert F.inline_label(text, start) == "Conclusions" and F.section_role(F.inline_label(text, start)) == "conclusion"
    assert F.inline_label("*Methods*: We randomised 842 patients.", 12) == "Methods"

"""Questions about a document (title, authors, journal, date, DOI, registration), answered from its metadata
with each value cited where the text states it: the real seed index, with and without the catalog."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from citeqa.answer.about import asked_fields, readable_date

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
TOWER = "003_19084b4463aafb5f.txt"


@pytest.mark.parametrize(("question", "fields"), [
    ("What is the title of the NEJM TOWER paper?", ("title",)),
    ("Who are the authors of the infant study?", ("authors",)),
    ("Who is the first author of the TOWER paper?", ("authors",)),
    ("When and where were the TOWER results published?", ("venue", "date")),
    ("What is the DOI of the TOWER paper?", ("doi",)),
    ("What is the trial registration number of TOWER?", ("trial_id",)),
    # about findings: "the authors" as the subject, "published" data, a table's title
    ("What doubling time did the authors measure for the hosts in culture?", ()),
    ("How do the authors explain the lower relapse rate?", ()),
    ("What was the median overall survival in TOWER?", ()),
])
def test_asked_fields(question: str, fields: tuple[str, ...]) -> None:
    assert asked_fields(question) == fields


def test_readable_date() -> None:
    assert readable_date("2017-03-02") == "March 2, 2017"
    assert readable_date("2019-12") == "December 2019"
    assert readable_date("2017") == "2017"


def _exact(ans: Any, index: Any) -> None:
    for c in ans.citations:
        assert index.quote(c.doc, c.start, c.end) == c.quote, c


def test_title_date_and_venue_are_cited_where_the_text_states_them(assistant: Any) -> None:
    ans = assistant.ask("When and where were the TOWER results published?")
    assert not ans.refused
    assert "March 2, 2017" in ans.text and "N Engl J Med 2017;376:836-47" in ans.text, ans.text
    assert [c.quote for c in ans.citations] == [
        "Blinatumomab versus Chemotherapy for Advanced Acute Lymphoblastic Leukemia",
        "N Engl J Med 2017;376:836-47", "MARCH 2, 2017"]
    assert all(c.doc == TOWER for c in ans.citations)
    _exact(ans, assistant.index)


def test_doi_and_registration(assistant: Any) -> None:
    ans = assistant.ask("What is the DOI and the trial registration number of the TOWER paper?")
    assert "10.1056/NEJMoa1609783" in ans.text and "NCT02013167" in ans.text, ans.text
    assert {c.quote for c in ans.citations} >= {"10.1056/NEJMoa1609783", "NCT02013167"}
    _exact(ans, assistant.index)


def test_authors_without_a_catalog(tmp_path: Path) -> None:
    """A user's own document has no catalog entry: the title and byline come from its text."""
    from citeqa import Assistant, Index, Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SEEDS / TOWER, docs / "tower.txt")
    settings = Settings(index_dir=tmp_path / "idx", seeds_dir=docs)
    index = Index.build([docs], settings)
    assistant = Assistant(index, settings)
    ans = assistant.ask("Who is the first author of the paper?")
    assert "Hagop Kantarjian" in ans.text and "first of" in ans.text, ans.text
    byline = next(c for c in ans.citations if c.quote.startswith("Hagop Kantarjian"))
    assert "Dirk Nagorsen" in byline.quote  # the whole byline, first author to last
    _exact(ans, index)
    # a question about the findings still goes to the evidence
    ans = assistant.ask("What did the authors report as the median overall survival with blinatumomab?")
    assert "7.7" in ans.text, ans.text


@pytest.mark.parametrize(("text", "statement"), [
    ("Results held. (Funded by Amgen; TOWER ClinicalTrials.gov number, NCT02013167.)", "Funded by Amgen"),
    ("We thank the staff. Funding: This work was supported by the National Science Foundation (grant "
     "CAREER-2142336 to P.M.F.), and the Swedish Research Council. The funders had no role.",
     "This work was supported by the National Science Foundation (grant CAREER-2142336 to P.M.F.), and the "
     "Swedish Research Council"),
    # a page break inside the sentence, initials inside it
    ("# Acknowledgements\n\nThis work was supported by the\n\nNational Institutes of Health (to S.N.F.) and "
     "grants to Y.S. from the Foundation.\n\nMore.",
     "This work was supported by the\n\nNational Institutes of Health (to S.N.F.) and grants to Y.S. from the "
     "Foundation"),
    ("This hypothesis is supported by the observation that repeats are enriched near binding sites.", None),
])
def test_funding_statement(text: str, statement: str | None) -> None:
    from citeqa.answer.about import funding_statement

    span = funding_statement(text)
    assert (text[span[0]:span[1]] if span else None) == statement


def test_funding_of_a_named_study(assistant: Any) -> None:
    ans = assistant.ask("Who funded the TOWER trial?")
    assert not ans.refused and "Amgen" in ans.text, ans.text
    assert any(c.quote.endswith("by Amgen") for c in ans.citations)
    _exact(ans, assistant.index)
    # the infant study's news report states no funding: that is said, not a sentence naming the study
    assert assistant.ask("Who funded the infant KMT2A study?").refused

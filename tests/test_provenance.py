"""Primary reports first, on the real seed index: the trial article is recognised as the primary report
with and without its catalog kind, a news item stating the trial's finding follows the trial's own
sentence as "Also reported", and a yes/no answer cites only the evidence its verdict was read from."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from citeqa.answer.provenance import primary_first, provenance

TRIAL = "003_19084b4463aafb5f.txt"
NEWS = ("000_ff52d1b053a42489.txt", "002_e9f14de385d16e30.txt")


def test_catalog_kind_decides_provenance(seed_index: tuple[Any, Any]) -> None:
    index, _ = seed_index
    assert provenance(index, TRIAL).primary
    assert provenance(index, TRIAL).why == "catalog kind"
    for doc in NEWS:
        assert not provenance(index, doc).primary


def test_provenance_without_catalog_reads_the_text(seed_index: tuple[Any, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's documents have no catalog: the trial article still reads as a first-hand report (methods
    and results sections, "we enrolled ..."), the news items and blog do not."""
    index, _ = seed_index
    monkeypatch.setitem(index.snap.derived, "provenance", {})
    real_meta = index.meta
    monkeypatch.setattr(index, "meta", lambda doc: dataclasses.replace(real_meta(doc), kind=""))
    trial = provenance(index, TRIAL)
    assert trial.primary and trial.why != "catalog kind"
    for doc in NEWS:
        assert not provenance(index, doc).primary, doc


def test_secondary_finding_follows_the_primary_report(assistant: Any) -> None:
    """Ask what the blog and news items also report: whenever a secondary item is marked as
    corroborating, the primary sentence it corroborates comes before it and is from the trial article."""
    j = assistant.judge(assistant.retrieve(assistant.condense(
        "What was the median overall survival with blinatumomab compared with chemotherapy?")))
    order, corroborates = primary_first(assistant.index, j.picked, j.scored)
    assert order and set(order) >= set(j.picked)
    assert provenance(assistant.index, order[0].cand.unit.doc).primary
    for i, s in enumerate(order):
        if s.cand.key in corroborates:
            primary = corroborates[s.cand.key]
            assert primary in order[:i]
            assert primary.cand.unit.doc == TRIAL
    answer = assistant.ask("What was the median overall survival with blinatumomab compared with chemotherapy?")
    assert answer.citations[0].doc == TRIAL
    assert "7.7" in answer.text
    if len({c.doc for c in answer.citations}) > 1:
        assert "Also reported:" in answer.text


def test_yes_no_answer_cites_only_its_verdict_evidence(assistant: Any) -> None:
    answer = assistant.ask("Did blinatumomab improve overall survival compared with chemotherapy?")
    assert answer.verdict in {"yes", "no", "unclear"}
    assert answer.text.split()[0].rstrip(".,:") in {"Yes", "No", "The"}
    assert 1 <= len(answer.citations) <= 2

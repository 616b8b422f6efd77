"""Unit checks of the evidence scorer's text helpers (no index needed)."""

from __future__ import annotations

from citeqa.answer.evidence import TermCache, _has, _terms_with_synonyms, has_figure


def test_term_cache_is_bounded_lru() -> None:
    c = TermCache(max_items=3)
    for i in range(5):
        c.put(str(i), frozenset({str(i)}))
    assert len(c) == 3 and c.get("0") is None and c.get("4") == frozenset({"4"})
    c.get("2")  # touched: survives the next eviction
    c.put("5", frozenset())
    assert c.get("2") is not None and c.get("3") is None


def test_terms_normalise_number_words_hyphens_and_plus_minus() -> None:
    t = _terms_with_synonyms("Two-year disease-free survival; salvage-treatment phase; 4.4 ± 15.5", {})
    assert {"2", "year", "salvag"} <= t and "mean" in t
    assert _has("disease-fre", t)
    assert _has("stem-cel", _terms_with_synonyms("allogeneic stem cell transplantation", {}))


def test_figures_ignore_references_and_codes() -> None:
    assert not has_figure("The groups were similar (Table S2 and Fig. 2B; P = .05), see CD19.")
    assert has_figure("49 patients (45%) received the regimen.")


def test_question_shape_patterns() -> None:
    from citeqa.answer.evidence import _DOSE, _FOCUS, _MEAN_VERB

    assert _MEAN_VERB.search("What did 'low levels of MRD' mean in the infant study?")
    assert not _MEAN_VERB.search("What did the trial report as the mean age?")
    m = _FOCUS.search("What was the median age of patients in the trial?")
    assert m and m.group(1) == "median age"
    m = _FOCUS.search("What dose of the drug was given?")
    assert m and m.group(1) == "dose"
    assert _DOSE.search("(9 μ g per day during week 1)") and not _DOSE.search("30 infants were given")


def test_figures_given_by_the_question_do_not_count() -> None:
    text = "Neurologic events of grade 3 or higher occurred at a similar rate (Table 3)."
    assert has_figure(text) and not has_figure(text, frozenset({"3"}))


def test_qualifier_conflicts() -> None:
    from citeqa.answer.evidence import _qualifier_conflict

    q = "What was survival in Philadelphia chromosome-positive patients?"
    assert _qualifier_conflict(q, "in Philadelphia chromosome (Ph)–negative ALL")
    assert not _qualifier_conflict(q, "Philadelphia chromosome-positive and -negative ALL")
    q = "What percentage had cytokine release syndrome of any grade?"
    assert _qualifier_conflict(q, "Grade ≥3 adverse event — Cytokine release syndrome 13 (4.9)")
    assert not _qualifier_conflict(q, "Cytokine release syndrome of any grade occurred in 14%")


def test_statistic_must_stand_with_the_measure() -> None:
    from types import SimpleNamespace
    from typing import Any

    from citeqa.answer.evidence import _focus_together

    def item(text: str) -> Any:
        return SimpleNamespace(cand=SimpleNamespace(is_row=False, sentence=SimpleNamespace(text=text)))

    focus = frozenset({"median", "event-fre", "surviv"})
    far = ("Event-free survival was higher with the drug (6-month estimates, 31% vs. 12%; hazard ratio, 0.55), "
           "and the median duration of remission was 7.3 months.")
    assert not _focus_together(focus, item(far))
    assert _focus_together(focus, item("The median event-free survival was 3.2 months."))

"""verify_answer: invented markers, unsupported numbers and terms, refusals, marker syntax."""

from __future__ import annotations

import pytest

from citeqa.verify import key_terms, numbers_in, parse_markers, split_sentences, verify_answer

OS = (
    "The median overall survival was 7.7 months in the blinatumomab group and 4.0 months in the "
    "chemotherapy group (hazard ratio for death, 0.71; 95% CI, 0.55 to 0.93; P=0.01)."
)
REMISSION = (
    "Remission rates within 12 weeks were higher with blinatumomab than with chemotherapy "
    "(34% vs. 16%, P<0.001); 10,000 blasts per microliter; change of \u22122.5 points."
)
SOURCES = {1: OS, 2: REMISSION}


def test_all_good_is_supported() -> None:
    v = verify_answer(
        "Median overall survival was 7.7 months with blinatumomab vs. 4.0 months with chemotherapy [1]. "
        "Remission within 12 weeks was 34% vs. 16% [2].",
        SOURCES,
    )
    assert [s.supported for s in v.sentences] == [True, True]
    assert v.supported
    assert v.used == (1, 2)
    assert v.removed_markers == ()
    assert v.sentences[0].citations == (1,)


def test_invented_marker_removed() -> None:
    v = verify_answer(
        "Median overall survival was 7.7 months with blinatumomab [1][7]. Hazard ratio 0.71 [9].", SOURCES
    )
    assert v.removed_markers == (7, 9)
    assert "[7]" not in v.text and "[9]" not in v.text
    assert v.text.startswith("Median overall survival was 7.7 months with blinatumomab [1].")
    assert v.text.endswith("Hazard ratio 0.71.")
    last = v.sentences[-1]
    assert (last.supported, last.note, last.citations) == (False, "no citation", ())
    assert v.used == (1,)


def test_number_not_in_source_flagged() -> None:
    v = verify_answer("Median overall survival was 9.1 months with blinatumomab [1].", SOURCES)
    (s,) = v.sentences
    assert not s.supported
    assert "9.1" in s.note


def test_decimal_form_matters() -> None:
    # "4.0" is in the source; "4" is a different claim.
    ok = verify_answer("Median overall survival with chemotherapy was 4.0 months [1].", SOURCES)
    bad = verify_answer("Median overall survival with chemotherapy was 4 months [1].", SOURCES)
    assert ok.sentences[0].supported
    assert not bad.sentences[0].supported and "4" in bad.sentences[0].note


def test_number_only_in_uncited_source_flagged() -> None:
    v = verify_answer("Remission rates were 34% with blinatumomab [1].", SOURCES)
    assert not v.sentences[0].supported
    assert "34" in v.sentences[0].note


def test_off_topic_terms_flagged() -> None:
    v = verify_answer("Grilled vegetables improve appetite during winter holidays [1].", SOURCES)
    (s,) = v.sentences
    assert not s.supported and "key terms" in s.note


@pytest.mark.parametrize(
    "text",
    ["Not reported.", "The indexed sources do not report this.", "The passages do not mention the dose."],
)
def test_refusal_needs_no_citation(text: str) -> None:
    v = verify_answer(text, SOURCES)
    (s,) = v.sentences
    assert (s.supported, s.note) == (True, "refusal")


def test_refusal_with_number_is_checked() -> None:
    v = verify_answer("Survival at 24 months was not reported.", SOURCES)
    assert not v.sentences[0].supported


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a [1]", [1]),
        ("a [1, 2]", [1, 2]),
        ("a [1][3]", [1, 3]),
        ("a [1] [3]", [1, 3]),
        ("a [1-3]", [1, 2, 3]),
        ("a [1\u20132]", [1, 2]),
        ("a [2; 1]", [2, 1]),
        ("a [Passage 2]", [2]),
        ("a [CI] [0.55-0.93]", []),
    ],
)
def test_marker_parsing(text: str, expected: list[int]) -> None:
    assert parse_markers(text) == expected


def test_multi_marker_sentence_uses_union_of_sources() -> None:
    v = verify_answer(
        "Blinatumomab gave 7.7 months median overall survival and 34% remission [1-2]. "
        "Chemotherapy gave 4.0 months and 16% [1][2].",
        SOURCES,
    )
    assert [s.citations for s in v.sentences] == [(1, 2), (1, 2)]
    assert all(s.supported for s in v.sentences), v.sentences
    assert "[1, 2]" in v.text


def test_trailing_marker_stays_with_sentence() -> None:
    assert split_sentences("Survival was 7.7 months. [1] Remission was 34%. [2]") == [
        "Survival was 7.7 months. [1]",
        "Remission was 34%. [2]",
    ]


def test_abbreviations_do_not_split() -> None:
    assert len(split_sentences("It was 7.7 vs. 4.0 months (Fig. 1A) in Kantarjian et al. [1].")) == 1


def test_numbers_in_normalises() -> None:
    assert numbers_in("10,000 and \u22122.5 and 5.6\u20139.6 and 34% and .05 and 4.0 [3]") == [
        "10000",
        "-2.5",
        "5.6",
        "9.6",
        "34",
        "0.05",
        "4.0",
    ]


def test_key_terms_stem_and_drop_stopwords() -> None:
    assert key_terms("The patients received therapies") == key_terms("patient receives therapy")
    assert "the" not in key_terms("the survival")


def test_empty_answer() -> None:
    v = verify_answer("", SOURCES)
    assert v.sentences == () and not v.supported


def test_rendering_keeps_model_text() -> None:
    v = verify_answer("Mortality was lower (P = .05) [1] [4] .", {1: "P = .05 mortality lower"})
    assert v.text == "Mortality was lower (P = .05) [1]."

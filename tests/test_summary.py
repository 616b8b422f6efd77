"""Questions about what a document found as a whole ("What was the main finding of TOWER?", "Summarize the
news report", "What is TOWER?") are answered with the document's own conclusion, on the real seed index and a
real news page; a document that is not about the question's subject is not summarised in its place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from citeqa.answer.summary import asks_summary
from conftest import assert_quotes_exact

TRIAL = "003_19084b4463aafb5f.txt"
NEWS = """<!doctype html><html><head><title>Weekly injection cuts heart attacks | Health Desk</title></head><body>
<header><nav><a href="/">Home</a> | <a href="/subscribe">Subscribe</a></nav></header><main><article>
<h1>Weekly semaglutide cuts heart attacks and strokes in people with obesity</h1>
<p class="byline">By Priya Natarajan, Health Correspondent · November 11, 2023</p>
<figure><img src="x.jpg" alt="pen"><figcaption>Semaglutide is given as a once-weekly injection. Photo: Health Desk
</figcaption></figure>
<p>A weekly injection of semaglutide reduced the risk of heart attack, stroke or cardiovascular death by 20% in
adults with obesity and heart disease, according to results of the SELECT trial.</p>
<p>The trial followed 17,604 adults for an average of 40 months.</p>
<h2>What it costs</h2><p>The list price of the drug is about $1,350 a month.</p>
</article></main><footer><p>© 2023 Health Desk.</p></footer></body></html>"""


def test_summary_requests_are_recognised() -> None:
    for q in ("What was the main finding of the TOWER trial?", "Summarize the NCI blog post.",
              "What is the take-home message of the ASH piece?", "What did the authors conclude about infants?",
              "What are the key results?", "What is the NCI blog post about?"):
        assert asks_summary(q), q
    for q in ("What was the median overall survival in TOWER?", "What did the authors measure?",
              "What was the primary outcome of the trial?", "What was the main outcome measure?",
              "What is known about the safety of blinatumomab?",
              "Which findings were significant?"):
        assert not asks_summary(q), q


def test_main_finding_is_the_conclusion_of_the_named_trial(assistant: Any) -> None:
    for q in ("What was the main finding of the TOWER trial?", "What is TOWER?"):
        ans = assistant.ask(q)
        assert not ans.refused, q
        assert ans.citations[0].doc == TRIAL and "significantly longer overall survival" in ans.citations[0].quote, q
        assert ans.citations[0].section.endswith("CONCLUSIONS")
        # The passage it quotes is shown first, though retrieval did not bring it.
        first = ans.passages[0]
        assert first["doc"] == TRIAL and first["start"] <= ans.citations[0].start < first["end"]


def test_conclusion_of_an_unnamed_study_found_by_its_subject(assistant: Any) -> None:
    ans = assistant.ask("What did the authors conclude about blinatumomab in infants?")
    assert not ans.refused and "infants" in ans.text and "safe" in ans.text


def test_a_news_page_is_summarised_by_its_headline_finding(library: Callable[..., Any]) -> None:
    index, bot = library({"news.html": NEWS})
    ans = bot.ask("Summarize the semaglutide article.")
    assert not ans.refused and "reduced the risk of heart attack" in ans.text
    assert "Natarajan" not in ans.text  # a byline is never evidence
    assert "Photo:" not in ans.text  # nor a picture credit
    assert_quotes_exact(index, ans)


def test_no_summary_of_a_document_about_something_else(assistant: Any) -> None:
    ans = assistant.ask("Summarize the study of knee replacement rehabilitation.")
    assert ans.refused or not any("significantly longer overall survival" in c.quote for c in ans.citations)


def test_compare_two_named_studies_quotes_each(assistant: Any) -> None:
    ans = assistant.ask("Compare TOWER and AALL1331.")
    assert not ans.refused
    assert {c.doc for c in ans.citations} >= {TRIAL, "001_f5e58083e22ab1c9.txt"}


def test_inline_conclusions_label_of_a_one_paragraph_abstract(library: Callable[..., Any]) -> None:
    _, bot = library({"abstract.txt": (
        "Does early feeding shorten hospital stay after bowel surgery?\n\n"
        "BACKGROUND: Feeding after bowel surgery is often delayed for several days. METHODS: We randomly assigned "
        "212 adults to oral feeding within 24 hours or after the return of bowel function. RESULTS: Median stay "
        "was 5 days with early feeding and 7 days with delayed feeding (P<0.001). Vomiting was more frequent with "
        "early feeding (18% vs 11%). CONCLUSIONS: Early oral feeding shortened hospital stay by two days without "
        "more complications. Nausea should be watched for in the first days.\n")})
    ans = bot.ask("Summarize the study on early feeding after bowel surgery.")
    assert not ans.refused and "shortened hospital stay by two days" in ans.text


def test_a_finding_on_a_named_topic_is_not_answered_with_the_conclusion(assistant: Any) -> None:
    # "find about neurologic events": a specific finding, which the evidence model ranks; the trial's
    # conclusion does not speak of it.
    ans = assistant.ask("What did the TOWER trial find about neurologic events?")
    assert not ans.refused and "eurologic" in ans.text
    assert not any("significantly longer overall survival" in c.quote for c in ans.citations)


ABSTRACTS = """# Selected Abstracts

## Abstract 101: Apixaban versus warfarin after valve replacement (ATLAS-TAVR)

**Methods:** We randomised 842 patients with atrial fibrillation after valve replacement to apixaban or warfarin.

**Results:** Major bleeding occurred in 6.1% and 9.8% (hazard ratio 0.61; 95% CI 0.38 to 0.97).

**Conclusions:** Apixaban was not superior to warfarin for net adverse clinical events but caused less major bleeding.

## Abstract 103: Compression stockings after deep vein thrombosis (STOCK-REG)

**Background:** Whether compression stockings prevent post-thrombotic syndrome is debated.

**Methods:** In a national registry of 5,620 patients with proximal deep vein thrombosis, we compared patients who wore stockings with those who did not.

**Conclusions:** Compression stockings were not associated with a lower risk of post-thrombotic syndrome.
"""  # noqa: E501


def test_a_file_of_abstracts_answers_from_the_abstract_asked_about(library: Any) -> None:
    index, bot = library({"abstracts.md": ABSTRACTS})
    found = bot.ask("What was the main finding of ATLAS-TAVR?")
    assert "Apixaban was not superior to warfarin" in found.text and "stockings" not in found.text
    # The verdict is read from the conclusion of the stockings abstract, not from the first one in the file.
    yn = bot.ask("Do compression stockings prevent post-thrombotic syndrome?")
    assert yn.verdict == "no" and "Compression stockings were not associated" in yn.text and "Apixaban" not in yn.text
    assert_quotes_exact(index, found)
    assert_quotes_exact(index, yn)


RELEASE = """Nordvik Reports Positive Topline Results from Phase 2b LUMEN-2 Study of Orvatinib in Ulcerative Colitis

OSLO, Norway, June 4, 2024 -- Nordvik Therapeutics ASA today announced positive topline results from LUMEN-2, a randomized, placebo-controlled Phase 2b study of orvatinib in adults with ulcerative colitis.

Study design

LUMEN-2 enrolled 246 patients at 61 sites in 12 countries. Patients were randomized to orvatinib 100 mg, orvatinib 200 mg or placebo once daily for 12 weeks.

About Orvatinib

Orvatinib is an investigational, oral, once-daily inhibitor of tyrosine kinase 2.
"""  # noqa: E501


def test_a_press_release_is_summarised_by_its_lead_before_the_first_heading(library: Callable[..., Any]) -> None:
    index, bot = library({"press.txt": RELEASE})
    ans = bot.ask("Summarize the LUMEN-2 press release.")
    # The finding is announced before the first heading, not in the study design.
    assert "announced positive topline results" in ans.text and "enrolled 246" not in ans.text
    assert_quotes_exact(index, ans)

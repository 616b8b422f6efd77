"""Questions that ask what a document found as a whole: "What was the main finding of TOWER?",
"Summarize the NCI blog post", "What did the authors conclude about blinatumomab in infants?".

Such a question shares no words with the sentences that answer it, so the evidence model, which learned
what answers a question from the words and figures they share, ranks consent statements and table rows
above the conclusion. A paper states its conclusion where scholarly writing puts it: after a "CONCLUSIONS:"
label, in a Conclusions (or Summary, Interpretation) section, else at the end of its abstract; a news report
leads with it. The answer quotes those sentences of the document the question names, or, when it names none,
of the document the evidence points to, provided that document is about what the question asks (its title
and those sentences hold most of the question's remaining words).

The phrases below are English ways of asking for a summary, not any corpus's vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from citeqa.answer import features as F
from citeqa.answer.evidence import Scored
from citeqa.index import Index
from citeqa.ingest.structure import CAPTION
from citeqa.textutil import index_terms
from citeqa.types import Passage, Unit

# ("primary outcome" and "what is known about X" ask for a detail, not the document's conclusion.)
_ASKS = re.compile(
    r"\b(summari[sz]e|summary of|sum up|overview of|gist|tl;?dr|in a nutshell|take[- ]?home|bottom line|"
    r"(?:key|main|major|principal|overall|central) (?:message|point|finding|result|conclusion|takeaway|"
    r"take-away|lesson)s?|conclusions? (?:of|from)|what (?:did|do|does) (?:\w+ ){0,6}(?:conclude|find|show)|"
    r"what (?:is|was) (?:\w+ ){0,5}about(?=\W*$)|what (?:are|were) (?:\w+ ){0,4}(?:findings|conclusions))\b",
    re.I,
)
# Words of the request itself, dropped before checking that a document is about the rest.
_REQUEST = frozenset(index_terms(
    "take-home take-away key-message "
    "summarize summarise summary sum overview gist tldr nutshell take home takeaway bottom line key main major "
    "principal primary overall central message point finding findings result results conclusion conclusions compare "
    "conclude concluded lesson lessons outcome show showed shown find found article paper study trial report "
    "piece post blog authors author researchers investigators document source press release news story review "
    "preprint manuscript file text"
))
MAX_SENTENCES = 2
MIN_WORDS = 8
INLINE_CONCLUSION = re.compile(r"^\W*(?:conclusions?|interpretation|main conclusions?)\s*:", re.I)
_SUMMARY_HEADING = re.compile(r"\bsummary\b", re.I)
EARLY = 0.15  # a summary section starting in the first 15% of the text is the paper's abstract
MAX_BODY_UNITS = 40  # a report's headline finding is stated early; this bounds the work for a long one
ABOUT_SHARE = 0.5  # share of the question's remaining weight the document must hold


_WHAT_IS = re.compile(r"^\W*(?:(?:what|which)\s+(?:is|was|are|were)\b|tell me about\b|describe\b|compare\b)", re.I)


def asks_summary(question: str) -> bool:
    return bool(_ASKS.search(question))


def names_only(index: Index, question: str, named: frozenset[str]) -> bool:
    """"What is TOWER?", "Tell me about the SELECT trial", "Compare TOWER and AALL1331": a question whose only
    subject is the studies or documents it names, which their own conclusions answer best."""
    if not named or not _WHAT_IS.match(question):
        return False
    rest = [t for t in index_terms(question) if t not in _REQUEST]
    names = {t for d in named for t in index_terms(index.alias_text(d))}
    return bool(rest) and all(t in names for t in rest)


def _in_role(units: Sequence[Unit], role: str) -> list[Unit]:
    return [u for u in units if F.section_role(u.section) == role]


def summary_units(index: Index, doc: str, part: str = "") -> list[tuple[list[Unit], str]]:
    """Where a document states its conclusion, best first, each with how it is read: a "CONCLUSIONS:" label
    inside a paragraph ("inline", from the label), its Conclusions section ("conclusion", from the start), its
    abstract's last paragraph ("abstract", from the end), its body text ("body": a news report or a press
    release, whose headline says what it reports). ``part``: the section the question's evidence stands in;
    a file of several abstracts concludes each in its own part."""
    every = index.doc_units(doc)
    units = [u for u in every if u.kind != "row" and u.sentences]  # prose; a table row states no conclusion
    out: list[tuple[list[Unit], str]] = []
    # A structured abstract written as one paragraph, or a Science summary: "CONCLUSIONS: ..." inline.
    labelled = [u for u in units if any(INLINE_CONCLUSION.match(s.text) for s in u.sentences)]
    if labelled:
        out.append(([u for u in labelled if u.section == part][:1] or labelled[:1], "inline"))
    # Not a "Reporting summary" checklist under Methods, nor a summary in the back matter.
    found = [u for u in _in_role(units, "conclusion")
             if F.section_role(u.section.split(" > ")[0]) not in ("methods", "back")]
    if found:
        same = [u for u in found if u.section == found[0].section]
        if _SUMMARY_HEADING.search(same[0].section.rsplit(" > ", 1)[-1]) and same[0].start < EARLY * max(
                u.end for u in every):
            out.append((same[-1:], "abstract"))  # a Summary that opens the paper is its abstract
        else:
            out.append((same, "conclusion"))
    found = _in_role(units, "abstract")
    if found:
        out.append(([u for u in found if u.section == found[-1].section][-1:], "abstract"))
    prose = [u for u in units
             if F.section_role(u.section) != "back" and not CAPTION.match(u.section.rsplit(" > ", 1)[-1])]
    # Text before the first heading is kept: a press release or a news story leads with its finding there
    # (its author lines and bylines are never evidence, and only whole sentences of prose are quoted).
    out.append((prose[:MAX_BODY_UNITS], "body"))
    return out


def passages(index: Index, units: Sequence[Unit]) -> list[Passage]:
    """Units as passages, so the evidence pipeline can score and cite them."""
    return [Passage(u, index.meta(u.doc).title, index.quote(u.doc, u.start, u.end), 1.0, k + 1)
            for k, u in enumerate(units)]


def sentences(found: Sequence[Scored]) -> list[Scored]:
    """Whole sentences of prose among scored candidates (not a row, a title line, an e-mail line or a
    footnote), in their order."""
    return [s for s in found if not s.cand.is_row and len(s.cand.text.split()) >= MIN_WORDS
            and s.cand.text.rstrip().endswith((".", ")"))]


def pick(found: Sequence[Scored], kind: str) -> list[Scored]:
    """The concluding sentences among the scored summary candidates: whole sentences of prose (a PDF's
    abstract may end in an e-mail line or a footnote), the first ones of a Conclusions section or a report's
    best, the last ones of an abstract."""
    prose = sorted(sentences(found), key=lambda s: s.cand.sentence.start)
    if kind == "inline":
        at = next((k for k, s in enumerate(prose) if INLINE_CONCLUSION.match(s.cand.text)), len(prose))
        return prose[at : at + MAX_SENTENCES]
    return prose[-MAX_SENTENCES:] if kind == "abstract" else prose[:MAX_SENTENCES]


def about_topic(index: Index, doc: str, question: str, texts: Sequence[str], others: Sequence[str] = ()) -> bool:
    """Whether the document is about what the question asks once the request words are set aside: its title,
    names and summary sentences hold at least half of the remaining terms' weight (IDF)."""
    # The names of the other documents the question names ("Compare TOWER and AALL1331") are theirs to hold.
    theirs = {t for d in others if d != doc for t in index_terms(index.alias_text(d))}
    mine = set(index_terms(index.alias_text(doc)))
    rest = [t for t in index_terms(question) if t not in _REQUEST and (t in mine or t not in theirs)]
    if not rest:
        return True
    have = set(index_terms(" ".join([index.meta(doc).title, index.alias_text(doc), *texts])))
    total = sum(index.idf(t) for t in rest) or 1.0
    return sum(index.idf(t) for t in rest if t in have) / total >= ABOUT_SHARE

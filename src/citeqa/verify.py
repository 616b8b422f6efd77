"""Check a generated answer against the passages it cites.

An LLM may invent citation numbers, quote numbers that are not in its sources, or drift away
from them. This module removes invented markers and marks each sentence supported or not, with
a note saying why, so the caller can warn, drop sentences, or fall back to the extractive answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from citeqa.types import AnswerSentence

__all__ = [
    "MARKER_RE",
    "VerifiedAnswer",
    "key_terms",
    "numbers_in",
    "parse_markers",
    "split_sentences",
    "strip_markers",
    "verify_answer",
]

# A sentence needs at least this share of its key terms in its cited sources.
MIN_TERM_SHARE = 0.5
# "[1-40]" is almost surely not a citation list; cap ranges so it cannot blow up.
MAX_RANGE = 20

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"
_DASH_CLASS = "-" + _DASHES

# One bracketed citation group: [1], [1, 2], [1; 3], [1-2], [ 2 ], [Passage 1], [Source 1, 2].
_NUM_ITEM = rf"\d+(?:\s*[{_DASH_CLASS}]\s*\d+)?"
_MARKER_PREFIX = r"\[\s*(?:(?:passages?|sources?|refs?|doc)\s*)?"
_MARKER_BODY = rf"{_NUM_ITEM}(?:\s*[,;]\s*{_NUM_ITEM})*"
MARKER_RE = re.compile(rf"{_MARKER_PREFIX}({_MARKER_BODY})\s*\]", re.IGNORECASE)
_MARKER_RUN = rf"(?:\s*{_MARKER_PREFIX}{_MARKER_BODY}\s*\])*"

# Sentence end: terminal punctuation, optional closing quote/bracket, then trailing markers
# (models often write "... months. [1]"), then whitespace; or a line break.
_BOUNDARY_RE = re.compile(
    rf"([.!?][\"')\u201d\u2019]*)({_MARKER_RUN})(\s+|\Z)|(\s*\n\s*)",
    re.IGNORECASE,
)
_ABBREVIATION_WORDS = (
    "vs v e.g i.e et al fig figs no nos dr mr mrs ms approx ca cf etc eq ref refs vol pp p st jr sr mt"
    " inc ltd co dept univ resp n.s"
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())

# A number: optional sign, digits with optional thousands groups, optional decimals; or ".5".
_NUMBER_RE = re.compile(
    rf"(?<![\w.])([{_DASH_CLASS}+]?)(\d{{1,3}}(?:[,\u2009\u202f]\d{{3}})+(?!\d)|\d+|(?=\.\d))(\.\d+)?"
)

_REFUSAL_RE = re.compile(
    r"\b(?:not\s+(?:reported|mentioned|stated|provided|available|specified|described|given|found)"
    r"|(?:do|does|did)\s*(?:n[o']t)\s+(?:report|mention|state|provide|say|contain|address|specify|include)"
    r"|no\s+(?:information|data|mention|answer)|cannot\s+(?:be\s+)?(?:answer|determine|find)"
    r"|can['’]t\s+(?:answer|determine|find)|unable\s+to|insufficient\s+(?:information|evidence)"
    r"|(?:do|does)\s*n[o']t\s+know)\b",
    re.IGNORECASE,
)

_STOPWORD_TEXT = """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either few for
    from further had has have having he her here hers him his how however i if in into is it its
    itself just may me might more most much must my neither no nor not of off on once only or other
    our out over own per same she should since so some such than that the their them then there
    these they this those through thus to too under until up upon us very via was we were what when
    where whether which while who whom whose why will with within without would yet you your
    according answer based cited indexed passage passages report reported reports say says show
    shows showed source sources state stated states study trial was were respectively"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD_RE = re.compile(r"[a-z][a-z0-9]*")


@dataclass(frozen=True)
class VerifiedAnswer:
    text: str  # rendered answer; invented markers removed, kept ones written as "[1, 2]"
    sentences: tuple[AnswerSentence, ...]  # sentence text includes its markers
    used: tuple[int, ...]  # valid citation numbers cited anywhere, ascending
    removed_markers: tuple[int, ...]  # invented numbers, in order of first appearance

    @property
    def supported(self) -> bool:
        return bool(self.sentences) and all(s.supported for s in self.sentences)


# --------------------------------------------------------------------------- helpers


def _normalise_dashes(text: str) -> str:
    return text.translate({ord(c): "-" for c in _DASHES})


def _expand_marker(body: str) -> list[int]:
    """Numbers in a marker body such as "1, 3-4"; ranges longer than MAX_RANGE keep their ends."""
    out: list[int] = []
    for item in re.split(r"\s*[,;]\s*", _normalise_dashes(body).strip()):
        if "-" in item:
            lo_s, hi_s = (p.strip() for p in item.split("-", 1))
            lo, hi = int(lo_s), int(hi_s)
            span = range(lo, hi + 1) if 0 <= hi - lo <= MAX_RANGE else (lo, hi)
            out.extend(n for n in span if n not in out)
        elif item and int(item) not in out:
            out.append(int(item))
    return out


def parse_markers(text: str) -> list[int]:
    """Citation numbers in ``text`` in order of first appearance ("[1][3]" and "[1-2]" included)."""
    seen: list[int] = []
    for m in MARKER_RE.finditer(text):
        seen.extend(n for n in _expand_marker(m.group(1)) if n not in seen)
    return seen


def strip_markers(text: str) -> str:
    """``text`` without citation markers (for display or comparison)."""
    return re.sub(r"\s+([.,;:!?])", r"\1", MARKER_RE.sub("", text)).strip()


def numbers_in(text: str) -> list[str]:
    """Numbers in ``text``, normalised so "10,000" == "10000", "−2.5" == "-2.5", "34%" == "34".

    Decimals are kept as written: "4.0" and "4" are different claims. A dash between two
    numbers ("5.6-9.6") is a range, not a sign. Citation markers are ignored.
    """
    text = MARKER_RE.sub(" ", text)
    out: list[str] = []
    for m in _NUMBER_RE.finditer(text):
        sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
        whole = re.sub(r"[,\u2009\u202f]", "", whole) or "0"
        if sign and sign != "+":
            before = text[: m.start()].rstrip()
            # "5.6 - 9.6": a dash after a number is a range. ("CD19-3" never gets here: lookbehind.)
            sign = "" if before and (before[-1].isdigit() or before[-1] in ")]%") else "-"
        else:
            sign = ""
        out.append(f"{sign}{whole}{frac}")
    return out


def _stem(word: str) -> str:
    """Light suffix stripping; applied to both sides, so it only has to be consistent."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "ches", "shes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ational", "ation", "ingly", "edly", "ing", "ed", "ly", "ment", "ity"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    if word.endswith("y") and len(word) > 4:
        word = word[:-1] + "i"
    return word


def key_terms(text: str) -> set[str]:
    """Lower-cased, stemmed content words (no stopwords, numbers or markers)."""
    words = _WORD_RE.findall(_normalise_dashes(MARKER_RE.sub(" ", text)).lower())
    return {_stem(w) for w in words if len(w) >= 3 and w not in _STOPWORDS and not w.isdigit()}


def _is_abbreviation(before: str) -> bool:
    token = before.rsplit(None, 1)[-1] if before.split() else ""
    token = token.lstrip("([\"'\u201c").lower().rstrip(".")
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def split_sentences(text: str) -> list[str]:
    """Split an answer into sentences; trailing markers ("... months. [1]") stay with their sentence."""
    parts: list[str] = []
    start = 0
    for m in _BOUNDARY_RE.finditer(text):
        if m.group(4) is None:  # punctuation boundary
            nxt = text[m.end() : m.end() + 1]
            if nxt and not (nxt.isupper() or nxt.isdigit() or nxt in "\"'(\u201c[*-"):
                continue
            if m.group(1).startswith(".") and _is_abbreviation(text[start : m.start()]):
                continue
            cut = m.end(2)
        else:
            cut = m.start()
        piece = text[start:cut].strip()
        if piece:
            parts.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _is_refusal(sentence: str) -> bool:
    return bool(_REFUSAL_RE.search(sentence)) and not numbers_in(sentence)


def _number_found(num: str, pool: set[str]) -> bool:
    # An unsigned "0.5" may describe a signed "-0.5" ("decreased by 0.5"); a signed one must match.
    return num in pool or (not num.startswith("-") and f"-{num}" in pool)


def _check(sentence: str, cited: Iterable[int], sources: Mapping[int, str]) -> AnswerSentence:
    cites = tuple(cited)
    if _is_refusal(sentence):
        return AnswerSentence(sentence, cites, True, "refusal")
    if not cites:
        return AnswerSentence(sentence, cites, False, "no citation")
    evidence = " \n ".join(sources[n] for n in cites)
    notes: list[str] = []
    pool = set(numbers_in(evidence))
    missing = [n for n in dict.fromkeys(numbers_in(sentence)) if not _number_found(n, pool)]
    if missing:
        notes.append("numbers not in cited sources: " + ", ".join(missing))
    terms = key_terms(sentence)
    if terms:
        found = terms & key_terms(evidence)
        if len(found) / len(terms) < MIN_TERM_SHARE:
            absent = ", ".join(sorted(terms - found)[:6])
            notes.append(f"only {len(found)}/{len(terms)} key terms in cited sources (missing: {absent})")
    return AnswerSentence(sentence, cites, not notes, "; ".join(notes))


def _tidy(text: str) -> str:
    # Only where a removed marker left "months ." behind; "P = .05" must stay as written.
    text = re.sub(r"[ \t]+([.,;:!?])(?=\s|$)", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return re.sub(r"[ \t]+\n", "\n", text).strip()


# --------------------------------------------------------------------------- entry point


def verify_answer(text: str, sources: Mapping[int, str]) -> VerifiedAnswer:
    """Remove invented markers and judge each sentence against the passages it cites.

    ``sources`` maps citation number n to the cited passage text. A sentence is supported when
    it cites at least one given passage, every number in it occurs in its cited passages, and at
    least half of its key terms do. Refusals ("The indexed sources do not report this.") need no
    citation.
    """
    removed: list[int] = []

    def rewrite(m: re.Match[str]) -> str:
        kept: list[int] = []
        for n in _expand_marker(m.group(1)):
            if n in sources:
                kept.append(n)
            elif n not in removed:
                removed.append(n)
        return f"[{', '.join(map(str, kept))}]" if kept else ""

    rendered = _tidy(MARKER_RE.sub(rewrite, text))
    sentences = tuple(_check(s, parse_markers(s), sources) for s in split_sentences(rendered))
    used = tuple(sorted({n for s in sentences for n in s.citations}))
    return VerifiedAnswer(rendered, sentences, used, tuple(removed))

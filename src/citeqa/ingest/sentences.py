"""Sentence splitting on cleaned text, aware of abbreviations common in clinical writing."""

from __future__ import annotations

import re
from collections.abc import Callable

# Tokens that end with a period but do not end a sentence.
ABBREVIATIONS = {
    "vs", "v", "dr", "mr", "mrs", "ms", "prof", "fig", "figs", "no", "nos", "e.g", "i.e", "al", "et al",
    "approx", "ca", "cf", "dept", "inc", "ltd", "co", "corp", "st", "jr", "sr", "vol", "pp", "p", "ref",
    "refs", "eq", "tab", "suppl", "min", "max", "mo", "yr", "yrs", "wk", "wks", "h", "m.d", "ph.d", "b.s",
    "m.b", "m.s", "u.s", "u.k", "n.engl.j.med", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "ed", "eds", "resp", "incl", "govt", "n", "med", "engl", "j",
}

# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(r"[.!?][\"'”’)\]]*(?=\s+)")
# The next sentence starts in upper case or a digit, or with a figure legend's panel label: "… level. (b)
# CDKN1a expression …", "(f) treatment with …".
_NEXT_START = re.compile(r"\s+(?:\([a-z]\)\s|[\"'“‘(\[]*[A-Z0-9•])")


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at ``dot`` closes an abbreviation or initial, not a sentence."""
    if text[dot] != ".":
        return False
    j = dot
    while j > 0 and not text[j - 1].isspace() and text[j - 1] not in "([":
        j -= 1
    word = text[j:dot].lower().strip("\"'“‘")
    if not word:
        return False
    if word in ABBREVIATIONS:
        return True
    if len(word) == 1 and word.isalpha():  # initials: "Dirk G. Nagorsen"
        return True
    # Dotted abbreviations such as "M.D", "Ph.D", "U.S".
    return bool(re.fullmatch(r"(?:[a-z]{1,3}\.)+[a-z]{1,3}", word))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return ``[start, end)`` spans of sentences in ``text`` (whitespace trimmed)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        if not _NEXT_START.match(text, end):
            continue
        if _is_abbreviation(text, m.start()):
            continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    # List numbering ("7.", "**13.**") is not a sentence: glue it to what follows.
    merged: list[tuple[int, int]] = []
    carry: int | None = None
    for a, b in spans:
        if carry is not None:
            a, carry = carry, None
        if re.fullmatch(r"\s*[*_]*\d{1,3}\.[*_]*\s*", text[a:b]):
            carry = a
            continue
        merged.append((a, b))
    if carry is not None:
        merged.append((carry, len(text)))
    spans = merged
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


_SOFT_BREAKS = (re.compile(r";\s"), re.compile(r",\s"), re.compile(r"\s"))


def split_long(text: str, a: int, b: int, too_long: Callable[[str], bool]) -> list[tuple[int, int]]:
    """Split ``text[a:b]`` at ``;`` then ``,`` then spaces until every piece passes ``too_long``."""
    if not too_long(text[a:b]):
        return [(a, b)]
    for pat in _SOFT_BREAKS:
        cuts = [m.end() + a for m in pat.finditer(text[a:b])]
        if not cuts:
            continue
        mid = (a + b) // 2
        cut = min(cuts, key=lambda c: abs(c - mid))
        left = (a, cut)
        right = (cut, b)
        left = _trim(text, *left)
        right = _trim(text, *right)
        if left[1] > left[0] and right[1] > right[0]:
            return split_long(text, *left, too_long) + split_long(text, *right, too_long)
    return [(a, b)]


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b

"""Abbreviations defined in the corpus ("minimal residual disease (MRD)"), for query expansion.

A question may say "MRD" where the trial article only ever writes "minimal residual disease"; the
definition found in any indexed document bridges the two (Schwartz & Hearst, 2003, simplified).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Standard clinical-trial abbreviations that papers use without defining (journal style assumes them).
CLINICAL = {
    "CR": "complete remission", "CRh": "complete remission with partial hematologic recovery",
    "CRi": "complete remission with incomplete hematologic recovery", "OS": "overall survival",
    "EFS": "event-free survival", "DFS": "disease-free survival", "PFS": "progression-free survival",
    "MRD": "minimal residual disease", "HSCT": "hematopoietic stem-cell transplantation",
    "SCT": "stem-cell transplantation", "AE": "adverse event", "AEs": "adverse events",
    "SAE": "serious adverse event", "HR": "hazard ratio", "CI": "confidence interval",
    "ITT": "intention-to-treat", "CRS": "cytokine release syndrome", "ORR": "overall response rate",
    "RR": "risk ratio", "QoL": "quality of life", "ECOG": "Eastern Cooperative Oncology Group",
}
# Everyday words readers use for the trial-report terms.
SYNONYMS = {
    "stop": "discontinuation", "stopped": "discontinuation", "quit": "discontinuation",
    "sites": "centers", "site": "center", "side": "adverse",
    "transplant": "transplantation", "arm": "group", "arms": "groups",
}

# "(MRD)", or in square brackets inside parentheses' text ("pooled risk ratio [RR] 0.54").
_DEF = re.compile(r"[(\[]([A-Z][A-Za-z0-9]{0,3}[A-Z0-9][A-Za-z0-9]{0,4})s?[)\]]")


def _match_long_form(words: list[str], abbr: str) -> str | None:
    """Shortest run of trailing ``words`` whose letters contain ``abbr``'s letters in order."""
    letters = [c.lower() for c in abbr if c.isalnum()]
    for n in range(1, min(len(words), len(letters) + 3) + 1):
        cand = words[-n:]
        text = " ".join(cand).lower()
        if cand[0][:1].lower() != letters[0]:
            continue
        # every abbreviation letter must appear in order; the first must start the long form
        pos = 0
        ok = True
        for ch in letters:
            pos = text.find(ch, pos)
            if pos < 0:
                ok = False
                break
            pos += 1
        if ok and len(cand) >= max(1, len(letters) - 2):
            return " ".join(cand)
    return None


def find_abbreviations(texts: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for text in texts:
        for m in _DEF.finditer(text):
            abbr = m.group(1)
            before = text[max(0, m.start() - 120) : m.start()]
            before = re.split(r"[.;:()\[\]\n]", before)[-1]
            words = re.findall(r"[A-Za-z][A-Za-z\-']*", before)
            if not words:
                continue
            long = _match_long_form(words, abbr)
            if long and abbr.lower() != long.lower() and abbr not in out:
                out[abbr] = long
    return out


def expand(query: str, abbreviations: dict[str, str], synonyms: bool = False) -> str:
    """Extra terms for ``query``: long forms of the abbreviations it uses (corpus definitions first,
    then standard clinical ones) and, for questions, trial-report words for everyday ones."""
    extra = []
    low = query.lower()
    for tok in re.findall(r"[A-Za-z][A-Za-z0-9]+", query):
        for table in (abbreviations, CLINICAL):
            base = tok[:-1] if tok.endswith("s") and tok[:-1] in table and tok not in table else tok
            if base in table:
                if table[base].lower() not in low:
                    extra.append(table[base])
                break
        if synonyms and tok.lower() in SYNONYMS:
            extra.append(SYNONYMS[tok.lower()])
    return " ".join(dict.fromkeys(extra))


# Long forms by their first two words, per abbreviation table (an index's table is built once per snapshot
# and kept alive by it): a lookup per word of the text, however many abbreviations the corpus defines.
_LongForms = dict[tuple[str, str], list[tuple[tuple[str, ...], str]]]
_LONG_FORMS: dict[int, tuple[dict[str, str], _LongForms]] = {}
_WORD = re.compile(r"[a-z0-9]+")


def _long_forms(abbreviations: dict[str, str]) -> _LongForms:
    hit = _LONG_FORMS.get(id(abbreviations))
    if hit is not None and hit[0] is abbreviations:
        return hit[1]
    index: _LongForms = {}
    for short, long in abbreviations.items():
        words = tuple(_WORD.findall(long.lower()))
        if len(words) >= 2:
            index.setdefault((words[0], words[1]), []).append((words, short))
    for forms in index.values():
        forms.sort(key=lambda f: -len(f[0]))  # the longest long form first ("complete remission with ...")
    if len(_LONG_FORMS) > 64:
        _LONG_FORMS.clear()
    _LONG_FORMS[id(abbreviations)] = (abbreviations, index)
    return index


def contract(text: str, abbreviations: dict[str, str]) -> str:
    """The abbreviations the corpus defines whose long forms ``text`` spells out: a question asking about
    "PSO" meets a sentence that writes "particle swarm optimization" (the reverse of :func:`expand`). Only
    the corpus's own definitions: the built-in clinical table named one field's terms."""
    index = _long_forms(abbreviations)
    words = _WORD.findall(text.lower())
    found: list[str] = []
    i = 0
    while i < len(words) - 1:
        for form, short in index.get((words[i], words[i + 1]), ()):
            if tuple(words[i : i + len(form)]) == form:
                found.append(short)
                i += len(form) - 1
                break
        i += 1
    return " ".join(dict.fromkeys(found))


def abbreviations_used(query: str, abbreviations: dict[str, str]) -> list[str]:
    """Abbreviations in ``query`` that :func:`expand` knows a long form for."""
    out = []
    for tok in re.findall(r"[A-Za-z][A-Za-z0-9]+", query):
        for table in (abbreviations, CLINICAL):
            base = tok[:-1] if tok.endswith("s") and tok[:-1] in table and tok not in table else tok
            if base in table:
                out.append(tok)
                break
    return out

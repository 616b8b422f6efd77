"""Primary reports first: when several documents state the same finding, the answer leads with the
report of the study itself and cites the others (news, blogs, highlights, reviews) as corroboration.

A document is a primary report when its catalog kind says so, or, with no catalog, when it reads like
one: it has both methods and results sections, or its authors describe their own study in the first
person plural ("we randomly assigned", "we enrolled"). These are signs of the genre, not of any corpus.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from citeqa.answer import features as F
from citeqa.answer.compose import figures
from citeqa.answer.evidence import Scored
from citeqa.index import Index

_PRIMARY_KIND = re.compile(r"\b(article|trial|study|report|paper|preprint|abstract)\b", re.I)
_SECONDARY_KIND = re.compile(r"\b(news|blog|press|highlight|review|summary|commentary|editorial)\b", re.I)
_FIRST_HAND = re.compile(
    r"\bwe (?:randomly |prospectively |retrospectively )?(?:assigned|enrolled|recruited|conducted|performed|"
    r"analy[sz]ed|measured|investigated|studied|examined|compared|evaluated|included|identified|collected|"
    r"followed|screened|designed|report|found|observed|show(?:ed)?|present|tested|used|developed)\b|"
    r"\b(?:in )?(?:the present|this|our) (?:study|work|experiments?|trial|analysis)\b|"
    r"\bour (?:results|findings|data)\b", re.I)
_RETOLD = re.compile(r"\b(?:said|says|according to (?:the )?(?:researchers|authors|study)|the researchers|"
                     r"(?:study|trial|findings) (?:was |were )?published in|this review|we review)\b", re.I)
_PARA_LABEL = re.compile(r"(?:^|\n\s*\n)\s*([A-Z][A-Za-z]*(?:[ /&-]+[A-Za-z]+){0,4})\s*:\s")
# Two sentences giving the same figures state the same finding when their meaning is this close
# (MiniLM cosine); with no figures to compare, closer still. Below, sentences on one topic differ.
SAME_FINDING = 0.6
SAME_MEANING = 0.7


@dataclass(frozen=True)
class Provenance:
    doc: str
    primary: bool
    why: str  # "catalog kind", "methods and results sections", "first-hand study statements", ...


def provenance(index: Index, doc: str) -> Provenance:
    """Whether ``doc`` reports its study first-hand (cached per index snapshot)."""
    cache = index.snap.derived.setdefault("provenance", {})
    if doc in cache:
        return cache[doc]
    kind = index.meta(doc).kind
    if kind and (_PRIMARY_KIND.search(kind) or _SECONDARY_KIND.search(kind)):
        out = Provenance(doc, not _SECONDARY_KIND.search(kind), "catalog kind")
    else:
        text = index.doc_text(doc)
        lo, hi = index.snap.doc_range(doc) if doc in index.snap.docs else (0, 0)
        # Headings give sections; structured abstracts and plain-text articles label paragraphs inline.
        roles = {F.section_role(u.section) for u in index.units[lo:hi]}
        roles |= {F.section_role(m.group(1)) for m in _PARA_LABEL.finditer(text)}
        first_hand, retold = len(_FIRST_HAND.findall(text)), len(_RETOLD.findall(text))
        if {"methods", "results"} <= roles and retold <= first_hand + 1:
            out = Provenance(doc, True, "methods and results sections")
        elif first_hand >= 2 and retold <= first_hand:
            out = Provenance(doc, True, "first-hand study statements")
        else:
            out = Provenance(doc, False, "no sign of a first-hand report")
    cache[doc] = out
    return out


def _same_finding(primary: Scored, other: Scored) -> bool:
    """Same finding: close in meaning, and every figure the other source gives is in the primary report
    (as given, or rounded as news rounds "86.5" to "87"). Without figures to compare, the meaning must
    be closer still."""
    cos = float(np.dot(primary.cand.vector, other.cand.vector))
    fo = _figures(other.cand.text)
    if fo:
        fp = _figures(primary.cand.text)
        return cos >= SAME_FINDING and (fo <= fp or _rounded(fo) <= _rounded(fp))
    return cos >= SAME_MEANING


def _figures(text: str) -> set[str]:
    """The figures a text reports (not years, P values or confidence bounds)."""
    return {v for vals in figures(text).values() for v in vals}


def _rounded(nums: set[str]) -> set[str]:
    out = set()
    for n in nums:
        try:
            out.add(str(round(float(n))))
        except ValueError:
            out.add(n)
    return out


# The evidence model's probabilities are peaked: on the seeds the trial's own sentence giving the
# survival figures scored 0.03 beside a blog's 0.62 retelling of it. The same-finding test (same
# figures, close meaning) is what guards against bringing in an unrelated sentence, so the reach is low.
REACH = 0.02


def primary_first(index: Index, picked: Sequence[Scored], pool: Sequence[Scored], reach: float = REACH
                  ) -> tuple[list[Scored], dict[tuple[str, int, int], Scored]]:
    """Reorder the evidence so that a finding from a secondary source follows the primary report of
    the same finding; returns the new order and, for each corroborating item, the item it corroborates.
    A primary item not yet picked is brought in when it scores at least ``reach`` × the lead's score."""
    if not picked:
        return [], {}
    floor = reach * picked[0].score
    order: list[Scored] = []
    corroborates: dict[tuple[str, int, int], Scored] = {}
    for s in picked:
        if s in order:
            continue
        if provenance(index, s.cand.unit.doc).primary:
            order.append(s)
            continue
        match = next((p for p in pool if p.score >= floor and p.cand.unit.doc != s.cand.unit.doc
                      and provenance(index, p.cand.unit.doc).primary and _same_finding(p, s)), None)
        if match is None:
            order.append(s)
            continue
        if match not in order:
            order.append(match)
        order.append(s)
        corroborates[s.cand.key] = match
    return order, corroborates

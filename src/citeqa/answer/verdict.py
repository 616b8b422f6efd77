"""Yes/no verdicts: the polarity of the concluding evidence, from a model learned on labelled yes/no
questions (``models/verdict.json``).

Features compare the question with its evidence: negation and hedging in each, whether the evidence
reports "no difference" while the question asks about an effect or about sameness, and
positive-result wording; the weights are learned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from citeqa.textutil import index_terms

_NEG = re.compile(r"\b(no|not|none|neither|nor|without|never|cannot|fail(?:ed|s)?|lack(?:ed|s|ing)?|unable|"
                  r"non-?significant|insignificant|absence|(?:recommend|suggest|advise|argue)[sd]?(?:ed)? against)\b|"
                  r"n['’]t\b", re.I)
# Negation words that negate nothing (NegEx's "pseudo-negations", Chapman et al. 2001): "whether or not it is
# clinically apparent", "not only ... but", "gram-negative"), and a negation word inside a hyphenated
# compound, which names a thing ("the point-of-no-return", "a no-reflow phenomenon").
_PSEUDO_NEG = re.compile(r"\b(whether or not|not only|not necessarily|no doubt|without doubt|without difficulty|"
                         r"gram[- ]negative|if not)\b|(?:\b\w+-)*\b(?:no|not)-\w+(?:-\w+)*|"
                         r"\bno\.(?=\s*(?:\(|of\b|\d|:|—|$))", re.I)


# A clause that gives a reason or a concession ("Because alcohol does not kill spores, soap is preferred";
# "X lowered pressure, although Y did not") is not what the sentence asserts: its negations are not the
# answer's.
_SUBORDINATE = re.compile(r"(?:^|(?<=[.;]\s))(?:because|since|although|though|while|whereas|as)\b[^,;]*,|"
                          r",\s*(?:although|though|whereas|while)\b[^,;.]*", re.I)


def _negations(text: str) -> int:
    return len(_NEG.findall(_PSEUDO_NEG.sub(" ", _SUBORDINATE.sub(" ", text))))


_NO_DIFF = re.compile(r"\b(no (?:significant |statistically significant )?(?:difference|association|effect|"
                      r"correlation|relationship|benefit|change|improvement|increase|decrease|reduction)s?|"
                      r"did not (?:differ|change|improve|increase|decrease|reduce|affect|predict)|"
                      r"(?:not|non-?) ?(?:significantly )?(?:different|associated|related|correlated|predictive)|"
                      r"similar|comparable|equivalent|independent of)\b", re.I)
_SAME_Q = re.compile(r"\b(same|similar|equal(?:ly)?|equivalent|comparable|as (?:\w+ ){1,3}as|independent)\b",
                     re.I)
_HEDGE = re.compile(r"\b(may|might|could|possibly|potentially|suggests?|appears?|seems?|likely|unclear|uncertain|"
                    r"further|warrant\w*|needed|limited|preliminary)\b", re.I)
_POSITIVE = re.compile(r"\b(significant(?:ly)?|improv\w*|effective|beneficial|associated with|predict\w*|increas\w*|"
                       r"reduc\w*|useful|superior|better|higher|lower|safe|feasible|support\w*|confirm\w*)\b", re.I)


# The evidence says the answer is not known: "whether it reduces admission remains uncertain", "effects on
# death could not be established". No labelled question teaches this (pubmedqa-dev holds yes and no only),
# so it is read from these words, and only from a sentence about the question (half its terms).
_UNSETTLED = re.compile(r"\b(remains? (?:uncertain|unclear|unknown|to be (?:determined|established|elucidated))|"
                        r"(?:is|are|was|were) (?:still |yet )?(?:uncertain|unclear|unknown|inconclusive)|"
                        r"could not be (?:established|determined|confirmed)|inconclusive|insufficient evidence|"
                        r"not (?:yet )?(?:known|established))\b", re.I)


def unsettled(question: str, evidence: Sequence[str]) -> bool:
    """A sentence of the evidence states that the answer is not known: it names two of the question's terms
    and, read with the evidence before it ("Exercise improves … Whether it reduces admission remains
    uncertain."), half of them."""
    asked = set(index_terms(question))
    seen: set[str] = set()
    for t in evidence:
        own = asked & set(index_terms(t))
        seen |= own
        if _UNSETTLED.search(t) and len(own) >= min(2, len(asked)) and 2 * len(seen) >= len(asked):
            return True
    return False


# A candidate as the verdict reads it: (text, document, section role, start, probability, part), where the
# part is the section the sentence stands in before any inline label ("Abstract 103: …" of a file of
# conference abstracts, each with its own "Conclusions:").
Item = tuple[str, str, str, int, float, str]


def _concluding(items: Sequence[Item]) -> list[int]:
    """The lead's document's concluding sentences; those of the lead's own part when it has any (another
    abstract of the same file concludes about another study)."""
    lead = items[0]
    concl = [i for i, it in enumerate(items) if it[1] == lead[1] and it[2] == "conclusion"]
    own = [i for i in concl if items[i][5] == lead[5]]
    return own or concl


# More concluding sentences than an abstract's conclusion holds.
_LONG_PART = 3


def long_conclusion(items: Sequence[Item]) -> bool:
    """More than three concluding sentences of the lead's document among the candidates: not an abstract's
    conclusion but a part that states many things (a guideline's recommendations)."""
    return bool(items) and len(_concluding(items)) > _LONG_PART


def verdict_evidence(items: Sequence[Item], ratio: float = 0.5) -> list[int]:
    """Which candidates a verdict is read from (indices into ``items``, which are most probable first). The
    lead's document answers: its concluding sentences state the answer (abstracts and articles put it there)
    — an abstract's few in reading order, a long concluding part's those about the question, most probable
    first — else the lead and up to two close runners-up of the same document."""
    if not items:
        return []
    lead = items[0]
    concl = _concluding(items)
    if len(concl) > _LONG_PART:  # long_conclusion(items), without finding the concluding sentences again
        # A long concluding part (a guideline's summary of recommendations, a paper's conclusions
        # section) states many things: the ones about the question, most probable first.
        concl = [concl[0], *[i for i in concl[1:] if items[i][4] >= ratio * items[concl[0]][4]][:2]]
    else:
        # An abstract's conclusion is read whole, in reading order.
        concl.sort(key=lambda i: items[i][3])
    if concl:
        return concl
    return [0, *[i for i in range(1, len(items)) if items[i][1] == lead[1] and items[i][4] >= ratio * lead[4]][:2]]


def verdict_features(question: str, evidence: Sequence[str]) -> np.ndarray:
    """Negation, hedging and "no difference" in the evidence (the concluding sentences first), against
    the question's own negation and whether it asks about sameness."""
    ev = " ".join(evidence)
    lead = evidence[0] if evidence else ""
    q_neg = _negations(question)
    same = bool(_SAME_Q.search(question))
    # "No difference" answers "Does X reduce Y?" with no but "Is X as effective as Y?" with yes: for a
    # question about sameness the finding counts with the opposite sign, and the negation inside it
    # ("did not differ") is no negation of the answer, so one weight learned on either kind serves both.
    sign = -1.0 if same else 1.0
    neg_lead, neg_ev = (_negations(_NO_DIFF.sub(" ", t)) if same else _negations(t) for t in (lead, ev))
    dense = [
        float(q_neg > 0),
        min(neg_lead, 3) / 3,
        min(neg_ev, 5) / 5,
        sign * float(bool(_NO_DIFF.search(lead))),
        sign * float(bool(_NO_DIFF.search(ev))),
        float(same),
        float(same and bool(_NO_DIFF.search(ev))),
        min(len(_HEDGE.findall(ev)), 4) / 4,
        min(len(_POSITIVE.findall(lead)), 4) / 4,
        min(len(_POSITIVE.findall(ev)), 6) / 6,
        float(q_neg > 0 and neg_lead > 0),
        1.0 if evidence else 0.0,
    ]
    return np.array(dense, dtype=np.float32)


# Hashed word features of the evidence were tried and dropped: with ~250 labelled questions they fit
# the training folds and lost 12 points of cross-validated accuracy.
VERDICT_FEATURES: tuple[str, ...] = (
    "q_negated", "lead_neg", "ev_neg", "lead_no_diff", "ev_no_diff", "q_sameness", "sameness_no_diff", "hedge",
    "lead_positive", "ev_positive", "double_negation", "has_evidence",
)

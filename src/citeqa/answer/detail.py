"""The second refusal gate: does the evidence state the *detail* the question asks about?

The answerability model (``features.answerable_vector``) tells whether the retrieved documents are about
the question at all; it learns that from the public packs, whose unanswerable items lack the whole
answering document. A user's harder case is the near-topic one: the right paper is there, but it reports
the sublineage UCYN-A1 and not the asked UCYN-A3, ICML 2023 and not 2024, BAL in COVID-19 and not in
influenza. This gate reads how well the best evidence covers the question and whether the question's
named things — tokens shaped like identifiers (a digit with letters, two capitals, a capital inside a
word: gene, strain, trial, model and cohort names of any field) — appear in the top evidence, its section
or its document's title, and how rare the rarest question term is that the best evidence leaves out (the
asked measure is often the one word a near-topic sentence lacks). It is
fitted on the training corpora's wh-questions against their unanswerable items and near-topic copies (each
answerable question's pool with the answering sentences removed), with its own false-refusal budget.
Yes/no questions are left to the first gate: an abstract's conclusion answers its title question without
repeating the question's details.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

from citeqa.answer.features import FEATURE_NAMES

DETAIL_FEATURES = ("core_cov1", "p1", "entity_missing1", "entity_missing3", "entity_missing_pool", "missing_rare1")
# The evidence features the gate reads of each candidate, in this order.
CANDIDATE_INPUTS = ("core_cov_ctx", "missing_rare")
_CANDIDATE_COLS = [FEATURE_NAMES.index(n) for n in CANDIDATE_INPUTS]


def candidate_inputs(x: np.ndarray) -> np.ndarray:
    """The ``CANDIDATE_INPUTS`` columns of the candidates' evidence feature rows (``FEATURE_NAMES`` order):
    one selection for answering and training."""
    return x.reshape(-1, len(FEATURE_NAMES))[:, _CANDIDATE_COLS]

_TOKEN = re.compile(r"[^\s,;:()?\[\]\"'/–—]+")  # noqa: RUF001 -- en and em dashes join two names
_POSSESSIVE = re.compile(r"['’]s$")  # noqa: RUF001


def _shaped(t: str, first: bool) -> bool:
    digit = any(ch.isdigit() for ch in t)
    alpha = any(ch.isalpha() for ch in t)
    caps = sum(ch.isupper() for ch in t)
    return (digit and alpha) or caps >= 2 or (caps >= 1 and not first and not t[0].isupper())


def entity_names(question: str) -> tuple[str, ...]:
    """The question's identifier-shaped tokens as written ("UCYN-A3", "IL-6", "ICML", "mRNA", "2-year"):
    a digit with letters, two capitals, or a capital inside a word; the first word only when it has a digit
    or two capitals (a capitalised first word is just a sentence). A hyphenated compound with an ordinary
    word ("GMP-to-monocyte", "KMT2A-rearranged") gives its shaped parts, since the text may phrase the
    compound otherwise ("GMPs to monocytes"); "2-year" stays whole."""
    out: list[str] = []
    for i, m in enumerate(_TOKEN.finditer(question)):
        t = _POSSESSIVE.sub("", m.group().strip(".'’-"))  # noqa: RUF001
        parts = t.split("-")
        named = [p for p in parts if len(p) >= 2 and _shaped(p, i == 0)]
        if named and any(len(p) >= 3 and p.isalpha() and p.islower() for p in parts):
            out += named
        elif len(t) >= 2 and _shaped(t, i == 0):
            out.append(t)
    return tuple(dict.fromkeys(out))


def entity_tokens(question: str) -> tuple[str, ...]:
    """``entity_names`` lower-cased, as the gate compares them with lower-cased texts."""
    return tuple(dict.fromkeys(t.lower() for t in entity_names(question)))


@functools.lru_cache(maxsize=2048)
def _name_pattern(name: str) -> re.Pattern[str]:
    # Any dash, a space or nothing between the name's parts ("IL-6" is met by "IL6", "IL‑6" with a no-break
    # hyphen, "5-day" by "5 days"), and a plural either side ("HPVs" by "HPV").
    stem = name[:-1] if len(name) > 2 and name.endswith("s") and name[-2].isupper() else name
    body = r"[-‐‑‒–— ]?".join(re.escape(p) for p in re.split(r"[-‐‑‒–—]", stem.lower()) if p)  # noqa: RUF001
    # The pattern opens on a literal, which the regex engine finds fast; the boundary before it is
    # checked by hand (a look-behind first would be tried at every position of long documents).
    return re.compile(rf"{body}s?(?![0-9a-z])")


def mentions(text: str, name: str) -> bool:
    """``text`` (lower-cased) mentions ``name`` as a whole token ("UCYN-A3" is not met by "UCYN-A30")."""
    return any(m.start() == 0 or not text[m.start() - 1].isalnum() for m in _name_pattern(name).finditer(text))


def unmentioned(names: Sequence[str], texts: Sequence[str]) -> list[str]:
    """The ``names`` that none of ``texts`` mentions as a whole token, whatever the case: what a refusal can
    tell the asker is missing."""
    lowered = [t.lower() for t in texts]
    return [name for name in names if not any(mentions(t, name) for t in lowered)]


def gate_text(text: str, section: str, names: str) -> str:
    """What the gate reads of one candidate: its text, section path and its document's names, lower-cased
    (one definition for training and answering, so the two never read differently)."""
    return f"{text} {section} {names}".lower()


def detail_vector(question: str, probs: np.ndarray, cand: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """The gate's input for one question: ``probs`` per candidate (evidence probability), ``cand`` the
    candidates' ``CANDIDATE_INPUTS`` (IDF-weighted coverage of the question's own terms; the IDF of the
    rarest question term missing, relative to the question's rarest), ``texts`` per candidate: its text,
    section path and document title, lower-cased."""
    if len(probs) == 0:
        return np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0], dtype=np.float32)
    order = np.argsort(-probs, kind="stable")
    ents = entity_tokens(question)

    def missing(idx: Sequence[int] | np.ndarray) -> float:
        if not ents:
            return 0.0
        return sum(all(not mentions(texts[int(j)], e) for j in idx) for e in ents) / len(ents)

    best = cand[order[0]]
    return np.array([float(best[0]), float(probs[order[0]]), missing(order[:1]), missing(order[:3]),
                     missing(range(len(texts))), float(best[1])], dtype=np.float32)

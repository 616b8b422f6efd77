"""Features of candidate evidence (one sentence or table row of the retrieved pool) and of a question.

Every feature is a small named function; the weights that turn them into a probability are learned
(``citeqa.training.train``) and shipped in ``answer/models/*.json``. Nothing here decides on its own:
question-shape patterns only describe the question (does it ask for a number, a date, a definition,
yes or no), and the model learns how much each description matters.

All patterns are generic English or generic scholarly layout (section names, licence lines), never a
word of one corpus.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from citeqa.textutil import index_terms, numbers

# --- question descriptions ------------------------------------------------------------------------
_QUANTITY_Q = re.compile(
    r"\b(how (many|much|long|common|often|frequent|large|high|low)|what (percentage|proportion|fraction|share|"
    r"rate|rates|number|dose|age|size)|median|mean|average|rate|rates|percentage|proportion|ratio|incidence|"
    r"prevalence)\b", re.I)
_WHEN_Q = re.compile(r"^\s*(when|in what year|what year|what date|on what date|since when)\b", re.I)
_WHERE_Q = re.compile(r"^\s*(where|in which (country|countries|city|region|place))\b", re.I)
_WHO_Q = re.compile(r"^\s*(who|whom|which (group|people|patients|organi[sz]ation))\b", re.I)
_WHY_Q = re.compile(r"^\s*(why|for what reason)\b|\bwhat (causes|caused|explains)\b", re.I)
_HOW_Q = re.compile(r"^\s*how\b(?! (many|much|long|common|often))", re.I)
# ("What is PSO?" ends on "?", after which no word boundary can follow: that form is matched apart.)
_DEFINE_Q = re.compile(r"\b(?:defined?|definition|meant by|criteria)\b|\bwhat (?:is|are) (?:an? )?[\w-]+\s*\??$", re.I)
# Auxiliary-first questions are answered yes or no ("Does X reduce Y?", "Is X associated with Y?"),
# also as the last clause of a titled question ("Fatigue in X: is there a link with Y?").
YES_NO_Q = re.compile(r"^\W*(is|are|was|were|do|does|did|can|could|should|will|would|has|have|had|may|might|"
                      r"must|shall)\b", re.I)
_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how)\b", re.I)
_CHOICE = re.compile(r"\w\s+or\s+(?!not\b|no\b|older\b|younger\b|more\b|less\b)\w", re.I)
_COMPARATIVE = re.compile(r"\b(more|less|fewer|better|worse|higher|lower|greater|smaller|earlier|later|longer|"
                          r"shorter)\b", re.I)


# Two opposite comparatives offered as the answers; "more or less the same" means "about" and is not one.
_OPPOSITES = re.compile(r"\b(?:more or less|less or more|higher or lower|lower or higher|better or worse|"
                        r"worse or better|greater or smaller|larger or smaller|longer or shorter|shorter or longer|"
                        r"more or fewer|fewer or more|earlier or later)\b(?! (?:the same|equal|identical)\b)", re.I)


_TITLE_PARTS = re.compile(r"[:;]\s|\.\s|--|\s[-–—]\s")
_AS_A = re.compile(r"\bas an?\b", re.I)


def is_yes_no(question: str, follow_up: bool = False) -> bool:
    """Whether the question is answered by yes or no, from its grammar alone."""
    q = question.strip()
    last = re.split(r"[:;]|\.\s|--|\s[-–—]\s", q)[-1]
    if _CHOICE.search(last) and _COMPARATIVE.search(last) and not re.search(r"\bmore or less\b", last, re.I):
        return False  # "Did more patients stop A or B early?" asks to choose
    if _OPPOSITES.search(last):
        return False  # "Were serious events more or less frequent with A?" asks which
    if YES_NO_Q.search(q) or YES_NO_Q.search(last):
        return True
    # A follow-up fragment ("And with chemotherapy?") takes its kind from the turn it follows.
    if follow_up or not q.endswith("?") or _WH.search(q):
        return False
    if any(YES_NO_Q.search(part) for part in q.split(", ")[1:]):
        return True  # "According to the notice, is it safe to ...?"
    # Without a question word or a verb first, a question is a titled claim when it has a title's parts or
    # an "as a" predicate ("Pancreas retransplantation: a second chance?", "X as a diagnostic tool?"); a bare
    # noun phrase asks for the thing it names ("Drug dose for a first episode?", "Pooled RR vs control?").
    return bool(_TITLE_PARTS.search(q) or _AS_A.search(q))

# --- evidence descriptions --------------------------------------------------------------------------
_DATEISH = re.compile(
    r"\b(1[89]\d\d|20\d\d|january|february|march|april|may|june|july|august|september|october|november|"
    r"december)\b", re.I)
_DEFINING = re.compile(r"\b(defined as|(?:was|were|is|are) defined|refers? to|is (?:an?|the) \w+ (?:that|which|of)|"
                       r"known as|consists? of|i\.e\.|termed|called)\b", re.I)
_NEGATION = re.compile(r"\b(no|not|none|neither|nor|without|never|fail(?:ed|s)?|lack(?:ed|s|ing)?|unable|"
                       r"non-?significant|insignificant)\b|n['’]t\b", re.I)
_HEDGE = re.compile(r"\b(may|might|could|possibly|suggests?|likely|unclear|uncertain|further (?:studies|research))\b",
                    re.I)
# Scholarly furniture that is never evidence: licences, affiliations, correspondence, funding, citations.
_FURNITURE = re.compile(
    r"(©|\bcopyright\b|\ball rights reserved\b|\blicen[cs]e[ds]?\b|creative ?commons|\bcc[- ]by\b|"
    r"\bdoi\s*:|\bhttps?://|www\.|@\w+\.\w|\bcorrespond(?:ence|ing author)\b|\bdepartment of\b|\buniversity\b|"
    r"\binstitute\b|\bfunded by\b|\bgrant (?:no|number)\b|\bcompeting interests?\b|\bconflicts? of interest\b|"
    r"\bet al\.|\bauthors?\s*:|\bpublished online\b|\breceived\b.*\baccepted\b)", re.I)
# Of those, the ones that can never be an answer to a question about the content (the issue's "front
# matter, affiliations, author lists, funding, licence lines and reference lists are never evidence").
NEVER_EVIDENCE = re.compile(
    r"(©|\bcopyright\b|\ball rights reserved\b|\blicen[cs]ed? (?:under|to)\b|creative ?commons|\bcc[- ]by\b|"
    r"\bdoi\s*:|\bhttps?://|www\.|\b[\w.+-]+@\w+\.\w|\bcorrespond(?:ence|ing author)\b|\bfunded by\b|"
    r"\bgrant (?:no|number)\b|\bcompeting interests?\b|\bconflicts? of interest\b|^\W*(?:authors?|keywords?)\s*:|"
    r"\bpublished online\b|\breceived\b.{0,40}\baccepted\b|\bauthor affiliations\b|\bcontributed equally\b|"
    # a press release's legal boilerplate and contacts
    r"\bforward-looking statements?\b|\bactual results (?:may|could) differ\b|\bsafe harbor\b|"
    r"^\W*(?:media|investor|press) contacts?\b|"
    # a web page's picture credit ("Photo: Health Desk", "Image credit: Getty Images")
    r"^\W*(?:photo(?:graph)?|image|picture)(?: credits?)?\s*:\s*\S+(?:\s+\S+){0,5}\W*$)", re.I)
# Lines that address the reader or the system are instructions, not evidence (prompt injection).
INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,30}\b(previous|prior|above|earlier|all)\b.{0,20}\b(instructions?|prompts?|"
    r"rules|context)\b|^\W*(system|assistant|user|developer)\s*:|\banswer\b.{0,40}\bto (every|all|any) questions?\b|"
    r"\byou (must|should) (now )?(answer|say|respond|reply)\b", re.I)

SECTION_ROLES = ("abstract", "intro", "methods", "results", "discussion", "conclusion", "back", "front", "other")
_ROLE_PATTERNS = [
    ("front", re.compile(r"^\s*(authors?|date|doi|licen[cs]e|keywords?|correspondence|affiliations?|received|"
                         r"accepted|published|citation|copyright)\s*$", re.I)),
    ("back", re.compile(r"reference|bibliograph|acknowledg|funding|conflicts? of interest|competing|disclosure|"
                        r"author.{0,5}contribution|supplementa|appendix|declaration|abbreviation|data availability|"
                        r"supported by", re.I)),
    ("conclusion", re.compile(r"conclusion|concluding|summary|implication|interpretation", re.I)),
    ("abstract", re.compile(r"abstract|highlights|key points", re.I)),
    ("results", re.compile(r"result|finding|outcome|efficacy|safety|adverse|table", re.I)),
    ("methods", re.compile(r"method|material|design|patients and|participants|statistic|procedure|setting|"
                           r"protocol|population|intervention|measure|analysis|eligib", re.I)),
    ("discussion", re.compile(r"discussion|limitation|comment", re.I)),
    ("intro", re.compile(r"introduction|background|objective|aim|purpose|context|rationale|overview", re.I)),
]


# Structured abstracts and plain-text articles label paragraphs inline ("CONCLUSIONS: ...", "Abstract: ...").
# Markdown may set the label in bold or italics ("**Conclusions:**", "*Methods*:").
INLINE_LABEL = re.compile(r"[*_]{0,2}([A-Z][A-Za-z]*(?:[ /&-]+[A-Za-z]+){0,4})\s*(?::[*_]{0,2}|[*_]{1,2}:)\s")


def inline_label(text: str, start: int) -> str:
    """The inline label of the paragraph holding offset ``start`` ("" when it has none)."""
    para = max(text.rfind("\n\n", 0, start), text.rfind("\r\n\r\n", 0, start))
    para = 0 if para < 0 else para + 2
    m = INLINE_LABEL.match(text, para, min(len(text), para + 60))
    return m.group(1) if m else ""


def section_role(section: str) -> str:
    if not section.strip():
        return "front"
    last = section.split(">")[-1]
    for role, pat in _ROLE_PATTERNS:  # the innermost heading decides first, then the whole path
        if pat.search(last):
            return role
    for role, pat in _ROLE_PATTERNS:
        if pat.search(section):
            return role
    return "other"


@dataclass(frozen=True)
class QuestionView:
    """The question as the features see it."""

    text: str
    weights: dict[str, float]  # question term -> IDF weight (context terms at half weight)
    core: frozenset[str]  # terms of the question itself
    numbers: frozenset[str]
    max_idf: float
    unknown_share: float  # weight share of question terms that no indexed unit uses
    wants_number: bool
    wants_time: bool
    wants_place: bool
    wants_person: bool
    wants_reason: bool
    wants_how: bool
    wants_definition: bool
    yes_no: bool
    named: frozenset[str]  # documents the question names (catalog alias or extracted acronym)
    vector: np.ndarray = field(repr=False, compare=False)
    bigrams: frozenset[tuple[str, str]] = frozenset()  # consecutive question terms ("overal", "surviv")
    counted: str = ""  # stem of what "how many ..." / "the number of ..." counts ("patient")
    negated: bool = False  # the question negates something ("patients with no comorbidities")

    @property
    def total(self) -> float:
        return sum(self.weights.values()) or 1.0


def describe_question(text: str, follow_up: bool = False) -> dict[str, bool]:
    return {
        "wants_number": bool(_QUANTITY_Q.search(text)),
        "wants_time": bool(_WHEN_Q.search(text)),
        "wants_place": bool(_WHERE_Q.search(text)),
        "wants_person": bool(_WHO_Q.search(text)),
        "wants_reason": bool(_WHY_Q.search(text)),
        "wants_how": bool(_HOW_Q.search(text)),
        "wants_definition": bool(_DEFINE_Q.search(text)),
        "yes_no": is_yes_no(text, follow_up),
    }


@dataclass(frozen=True)
class CandidateView:
    """What the features read of one candidate, computed once per question."""

    text: str  # the sentence (or the row rendered with its caption and headers)
    own: frozenset[str]  # terms of the text itself
    context: frozenset[str]  # + section path, sentence before, document names
    section: str
    role: str
    is_row: bool
    position: int  # sentence index within its unit
    rel_pos: float  # start offset / document length
    passage_rank: int
    passage_score: float
    sim: float  # sentence vector · question vector
    unit_sim: float
    doc: str
    starts_lower: bool
    seq: tuple[str, ...] = ()  # the text's terms in order
    label: frozenset[str] = frozenset()  # a table row's own label terms (empty for sentences)
    label_negated: bool = False  # the label negates ("No current use", "Non-smokers", "Without diabetes")


# --- per-candidate features ---------------------------------------------------------------------------
def _cov(q: QuestionView, terms: frozenset[str]) -> float:
    return sum(w for t, w in q.weights.items() if t in terms) / q.total


def _core_cov(q: QuestionView, terms: frozenset[str]) -> float:
    tot = sum(w for t, w in q.weights.items() if t in q.core) or 1.0
    return sum(w for t, w in q.weights.items() if t in q.core and t in terms) / tot


def _bm25(q: QuestionView, c: CandidateView, k1: float = 1.2, b: float = 0.75, avg: float = 25.0) -> float:
    toks = c.seq
    n = len(toks) or 1
    tf: dict[str, int] = {}
    for t in toks:
        tf[t] = tf.get(t, 0) + 1
    s = 0.0
    for t, w in q.weights.items():
        f = tf.get(t, 0)
        if f:
            s += w * f * (k1 + 1) / (f + k1 * (1 - b + b * n / avg))
    return s


def _missing_rare(q: QuestionView, c: CandidateView) -> float:
    miss = [w for t, w in q.weights.items() if t in q.core and t not in c.context]
    return max(miss, default=0.0) / (q.max_idf or 1.0)


def _has_figure(q: QuestionView, c: CandidateView) -> float:
    return float(any(n.lstrip("-") not in q.numbers for n in numbers(c.text)))


# The kind of quantity a question asks for, and how an answer states it: a dose is given in mass or
# concentration units, a duration in time units, a cost in a currency. General scientific usage, not any
# corpus's vocabulary; the weights of the two features below are learned.
_KINDS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "percent": (re.compile(r"\b(percent(?:age)?|proportion|fraction|share)\b|%", re.I),
                re.compile(r"\d\s?%|\bper ?cent\b|\b\d+ (?:of|out of) \d+\b", re.I)),
    "duration": (re.compile(r"\b(how long|duration|follow-up|time to|(?:median|mean) (?:[\w-]+ ){0,2}survival)\b",
                            re.I),
                 re.compile(r"\d\s?(?:-\s?)?(?:years?|yrs?|months?|mo|weeks?|wks?|days?|hours?|hrs?|h|minutes?|min|"
                            r"seconds?|s)\b", re.I)),
    "age": (re.compile(r"\b(age|aged|how old)\b", re.I),
            re.compile(r"\b(?:aged?|ages)\b\D{0,25}\d|\d\s?(?:-\s?)?(?:years?|yrs?|months?)(?:[- ]old| of age)", re.I)),
    "dose": (re.compile(r"\b(dose|doses|dosage|dosing|concentration|how much \w+ (?:was|were) (?:given|used|added))\b",
                        re.I),
             re.compile(r"\d\s?(?:mg|µg|μg|ug|ng|pg|g|kg|ml|mL|µl|μl|mM|µM|μM|nM|pM|M|IU|U|units?|mg/kg|mg/m2|"
                        r"µg/kg|μg/kg)\b", re.I)),
    "money": (re.compile(r"\b(cost|costs|price|priced|expensive|dollars?|euros?)\b", re.I),
              re.compile(r"[$€£¥]\s?\d|\b\d[\d.,]*\s?(?:dollars|euros|USD|EUR|GBP)\b", re.I)),
    "effect_ratio": (re.compile(r"\b(hazard ratio|odds ratio|risk ratio|relative risk)\b", re.I),
                     # Abbreviations in capitals only: "or 5 patients" is not an odds ratio.
                     re.compile(r"(?i:\b(?:hazard|odds|risk) ratio|\brelative risk)\b\D{0,25}\d|"
                                r"\b(?:a?HR|a?OR|RR)\b\s?[=:,(]?\s?\d")),
    "correlation": (re.compile(r"\b(correlation|coefficient|r2|r²)\b", re.I),
                    re.compile(r"\b(?:r|R|rho|ρ|R2|R²|r2|Rs|RS)\s?[=:]\s?[-−]?0?[.·]\d|"
                               r"\bcorrelat\w*\D{0,30}0?\.\d", re.I)),
}


@functools.lru_cache(maxsize=4096)
def _kinds_wanted(question: str) -> tuple[str, ...]:
    return tuple(k for k, (ask, _) in _KINDS.items() if ask.search(question))


def _kind_given(q: QuestionView, c: CandidateView) -> float:
    """1 when the candidate states a quantity of a kind the question asks for (0 when it asks for none)."""
    kinds = _kinds_wanted(q.text)
    return float(any(_KINDS[k][1].search(c.text) for k in kinds))


def _kind_missing(q: QuestionView, c: CandidateView) -> float:
    """1 when the question asks for a kind of quantity and the candidate states none of it."""
    return float(bool(_kinds_wanted(q.text))) - _kind_given(q, c)


def _words(c: CandidateView) -> int:
    return len(c.text.split())


_COUNT_Q = re.compile(r"\bhow many ([^\W\d_]+)|\bnumber of ([^\W\d_]+)", re.I)


def counted_noun(question: str) -> str:
    m = _COUNT_Q.search(question)
    return next(iter(index_terms(m.group(1) or m.group(2))), "") if m else ""


def _counted(q: QuestionView, c: CandidateView) -> float:
    """A "how many patients" question answered by "405 patients" (a figure right before the counted noun)."""
    if not q.counted:
        return 0.0
    seq = c.seq
    return float(any(seq[i][0].isdigit() and q.counted in seq[i + 1 : i + 3] for i in range(len(seq) - 1)))


_ACRONYM = re.compile(r"\b[A-Za-z]*[A-Z][A-Za-z0-9-]*[A-Z0-9][A-Za-z0-9-]*\b")


@functools.lru_cache(maxsize=4096)
def _acronyms(question: str) -> tuple[str, ...]:
    return tuple(a for a in _ACRONYM.findall(question) if sum(ch.isupper() for ch in a) >= 2 and len(a) <= 10)


def _defines_acronym(q: QuestionView, c: CandidateView) -> float:
    """The text introduces an abbreviation the question uses ("particle swarm optimization (PSO)"): where a
    paper says what the term is."""
    return float(any(re.search(r"\(\s*" + re.escape(a) + r"s?\s*[),;]", c.text) for a in _acronyms(q.text)))


def _opening(q: QuestionView, c: CandidateView) -> float:
    """Share of the question's weight among the text's first eight terms: a sentence whose subject is what the
    question asks about ("The pestiviruses have …") tends to say what it is or does."""
    return _core_cov(q, frozenset(c.seq[:8]))


# A negation in a row label or a question ("No current use", "non-users", "with no comorbidities"); "no." is
# "number" in a table ("Delirium, no. (%)").
LABEL_NEGATION = re.compile(r"\b(?:no(?!\.)|not|none|never|without)\b|\bnon-?(?=[a-z])", re.I)


def _polarity_differs(q: QuestionView, c: CandidateView) -> bool:
    """The row's label negates and the question does not, or the reverse: "No current use" does not name
    "current PPI use", nor "Outpatient, with comorbidities" "outpatients with no comorbidities"."""
    return c.label_negated != q.negated


def _label_named(q: QuestionView, c: CandidateView) -> float:
    """Share of a table row's label the question names: "complete remission with partial hematologic
    recovery" asked about picks that row over a summary sentence that lists every kind of remission. A
    label of the other polarity counts one term short."""
    if not c.label:
        return 0.0
    return len(c.label & q.core) / (len(c.label) + _polarity_differs(q, c))


def _label_cov(q: QuestionView, c: CandidateView) -> float:
    """Share of the question's weight in a table row's label (0 for sentences; halved for a label of the
    other polarity)."""
    return _core_cov(q, c.label) / (1 + _polarity_differs(q, c)) if c.label else 0.0


def _phrase(q: QuestionView, c: CandidateView) -> float:
    """Share of the question's consecutive term pairs that the text has in the same order."""
    if not q.bigrams:
        return 0.0
    pairs = set(zip(c.seq, c.seq[1:], strict=False))
    return len(q.bigrams & pairs) / len(q.bigrams)


def _novel(q: QuestionView, c: CandidateView) -> float:
    """Share of the text's terms the question does not use: an answer says something beyond the question."""
    own = [t for t in c.seq if not t[0].isdigit()]
    return sum(t not in q.weights for t in own) / len(own) if own else 0.0


def _density(q: QuestionView, c: CandidateView) -> float:
    """Question weight matched per term of the text: a short sentence on the topic beats a long list."""
    return sum(w for t, w in q.weights.items() if t in c.own) / (len(c.seq) + 5)


def _spread(q: QuestionView, c: CandidateView) -> float:
    """How far apart the question's terms lie in the text (0: next to each other; 1: no two matched)."""
    pos = [i for i, t in enumerate(c.seq) if t in q.weights]
    if len(pos) < 2:
        return 1.0
    return min(1.0, (pos[-1] - pos[0]) / (4 * len(pos)))


Feature = Callable[[QuestionView, CandidateView], float]


def _role_is(role: str, yes_no: bool) -> Feature:
    return lambda q, c: float(c.role == role and q.yes_no == yes_no)


CANDIDATE_FEATURES: dict[str, Feature] = {
    "sim": lambda q, c: c.sim,
    "unit_sim": lambda q, c: c.unit_sim,
    "cov_own": lambda q, c: _cov(q, c.own),
    "cov_ctx": lambda q, c: _cov(q, c.context),
    "core_cov_ctx": lambda q, c: _core_cov(q, c.context),
    "bm25": _bm25,
    "phrase": _phrase,
    "defines_acronym": _defines_acronym,
    "opening": _opening,
    "label_named": _label_named,
    "label_cov": _label_cov,
    "label_whole": lambda q, c: float(bool(c.label) and c.label <= q.core and not _polarity_differs(q, c)),
    "novel": _novel,
    "density": _density,
    "spread": _spread,
    "is_question": lambda q, c: float(c.text.rstrip().endswith("?")),
    "no_final_stop": lambda q, c: float(not c.is_row and not c.text.rstrip().endswith((".", "!", "?", ")", "]"))),
    "missing_rare": _missing_rare,
    "q_numbers_in": lambda q, c: (len(q.numbers & set(numbers(c.text))) / len(q.numbers)) if q.numbers else 0.0,
    "passage_rank_inv": lambda q, c: 1.0 / c.passage_rank,
    "passage_score": lambda q, c: c.passage_score,
    "position": lambda q, c: min(c.position, 5) / 5,
    "rel_pos": lambda q, c: c.rel_pos,
    "is_row": lambda q, c: float(c.is_row),
    "log_words": lambda q, c: math.log1p(_words(c)),
    "short": lambda q, c: float(_words(c) < 6),
    "long": lambda q, c: float(_words(c) > 60),
    "starts_lower": lambda q, c: float(c.starts_lower),
    "has_figure": _has_figure,
    "number_wanted_given": lambda q, c: float(q.wants_number) * _has_figure(q, c),
    "counted_given": _counted,
    "number_wanted_missing": lambda q, c: float(q.wants_number) * (1 - _has_figure(q, c)),
    "kind_wanted_given": _kind_given,
    "kind_wanted_missing": _kind_missing,
    "time_wanted_given": lambda q, c: float(q.wants_time and bool(_DATEISH.search(c.text))),
    "definition_wanted_given": lambda q, c: float(q.wants_definition and bool(_DEFINING.search(c.text))),
    "yes_no_negated": lambda q, c: float(q.yes_no and bool(_NEGATION.search(c.text))),
    "hedged": lambda q, c: float(bool(_HEDGE.search(c.text))),
    "furniture": lambda q, c: float(bool(_FURNITURE.search(c.text))),
    "named_doc": lambda q, c: float(c.doc in q.named),
    "other_doc_named": lambda q, c: float(bool(q.named) and c.doc not in q.named),
    "unknown_share": lambda q, c: q.unknown_share,
    # Where an answer sits depends on the kind of question: a yes/no verdict in the conclusion, a figure
    # in the results; one weight per role and kind keeps one corpus's kind from teaching the other's.
    **{f"role_{r}": _role_is(r, yes_no=False) for r in SECTION_ROLES},
    **{f"role_{r}_yes_no": _role_is(r, yes_no=True) for r in SECTION_ROLES},
}
# Relative to the best candidate of the same question: makes scores comparable across corpora whose
# absolute similarities differ (short abstracts vs long full texts).
RELATIVE = ("sim", "unit_sim", "cov_ctx", "bm25", "passage_score")
POOL_FEATURES = (
    [f"{n}_gap" for n in RELATIVE] + [f"{n}_rank" for n in RELATIVE]
    + ["doc_best_sim_gap", "doc_share", "doc_best_cov_gap", "neighbour_sim", "label_named_distinct"]
)
FEATURE_NAMES: tuple[str, ...] = (*CANDIDATE_FEATURES, *POOL_FEATURES)


def feature_matrix(q: QuestionView, views: Sequence[CandidateView]) -> np.ndarray:
    """(n candidates × len(FEATURE_NAMES)) matrix, columns in FEATURE_NAMES order."""
    n = len(views)
    if n == 0:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    base = np.array([[f(q, c) for f in CANDIDATE_FEATURES.values()] for c in views], dtype=np.float64)
    col = {name: i for i, name in enumerate(CANDIDATE_FEATURES)}
    extra = []
    for name in RELATIVE:
        v = base[:, col[name]]
        extra.append(v - v.max())
    for name in RELATIVE:
        v = base[:, col[name]]
        order = (-v).argsort(kind="stable")
        rank = np.empty(n)
        rank[order] = np.arange(n)
        extra.append(np.log1p(rank))
    sim = base[:, col["sim"]]
    cov = base[:, col["cov_ctx"]]
    docs = [c.doc for c in views]
    doc_best: dict[str, float] = {}
    doc_cov: dict[str, float] = {}
    doc_w: dict[str, float] = {}
    for d, s, cv, c in zip(docs, sim, cov, views, strict=True):
        doc_best[d] = max(doc_best.get(d, -1.0), float(s))
        doc_cov[d] = max(doc_cov.get(d, 0.0), float(cv))
        doc_w[d] = doc_w.get(d, 0.0) + 1.0 / c.passage_rank
    total_w = sum(doc_w.values()) or 1.0
    extra.append(np.array([doc_best[d] for d in docs]) - sim.max())
    extra.append(np.array([doc_w[d] / total_w for d in docs]))
    extra.append(np.array([doc_cov[d] for d in docs]) - cov.max())
    # The sentences next to a candidate speak of the same thing when the candidate is on topic.
    nb = np.zeros(n)
    for i in range(n):
        around = [sim[j] for j in (i - 1, i + 1) if 0 <= j < n and docs[j] == docs[i]]
        nb[i] = max(around, default=sim[i])
    extra.append(nb)
    extra.append(_label_named_distinct(q, views))
    return np.column_stack([base, *extra]).astype(np.float32)


def _label_named_distinct(q: QuestionView, views: Sequence[CandidateView]) -> np.ndarray:
    """Share of a table row's label the question names, counting only label terms that most of the pool
    does not use: a row labelled by the documents' own topic ("Other agents" in a review of those agents)
    is not named by a question that merely names the topic."""
    n = len(views)
    df = {t: sum(t in v.own for v in views) for t in set().union(*(c.label for c in views))}
    out = np.zeros(n)
    for i, c in enumerate(views):
        distinct = {t for t in c.label if df[t] * 2 < n}
        if distinct and not _polarity_differs(q, c):
            out[i] = len(distinct & q.core) / len(distinct)
    return out


# --- question-level (answerability) features --------------------------------------------------------------
ANSWERABLE_FEATURES = (
    "p1", "p2", "p_mean3", "logit_p1", "p1_minus_p2", "sim1", "sim_max", "cov1", "core_cov1", "missing_rare1",
    "unknown_share", "max_idf", "n_terms", "wants_number", "yes_no", "best_doc_share", "top_docs",
    "missing_rare_best_doc", "type_match1", "type_match_any3", "kind_match1", "kind_match_any3",
)


def answerable_vector(q: QuestionView, probs: np.ndarray, x: np.ndarray, docs: Sequence[str]) -> np.ndarray:
    """Question-level summary of the scored pool (the input of the refusal model)."""
    col = {n: i for i, n in enumerate(FEATURE_NAMES)}
    if len(probs) == 0:
        return np.array([0, 0, 0, -6, 0, 0, 0, 0, 0, 1, q.unknown_share, q.max_idf, len(q.core),
                         float(q.wants_number), float(q.yes_no), 0, 0, 1, 0, 0, 0, 0], dtype=np.float32)
    order = np.argsort(-probs, kind="stable")
    p = probs[order]
    best = x[order[0]]
    p1 = float(p[0])
    p2 = float(p[1]) if len(p) > 1 else 0.0
    top = order[: min(5, len(order))]
    return np.array([
        p1, p2, float(p[:3].mean()), math.log(max(p1, 1e-6) / max(1 - p1, 1e-6)), p1 - p2,
        float(best[col["sim"]]), float(x[:, col["sim"]].max()), float(best[col["cov_ctx"]]),
        float(best[col["core_cov_ctx"]]), float(best[col["missing_rare"]]), q.unknown_share, q.max_idf,
        float(len(q.core)), float(q.wants_number), float(q.yes_no), float(best[col["doc_share"]]),
        float(len({docs[int(i)] for i in top})), float(x[:, col["missing_rare"]][top].min()),
        _type_match(q, x[order[0]], col), max(_type_match(q, x[i], col) for i in order[:3]),
        1 - float(best[col["kind_wanted_missing"]]), 1 - float(x[:, col["kind_wanted_missing"]][order[:3]].min()),
    ], dtype=np.float32)


def _type_match(q: QuestionView, row: np.ndarray, col: dict[str, int]) -> float:
    """1 when the evidence holds the kind of answer asked for (a figure, a date, a definition), or none
    is asked for."""
    if q.wants_number:
        return float(row[col["number_wanted_given"]])
    if q.wants_time:
        return float(row[col["time_wanted_given"]])
    if q.wants_definition:
        return float(row[col["definition_wanted_given"]])
    return 1.0

"""Evidence scoring at sentence and table-row level, selection, and the support behind refusals."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from citeqa.abbrev import SYNONYMS, abbreviations_used, expand
from citeqa.index import Index
from citeqa.textutil import index_terms, numbers, tokens
from citeqa.types import Passage, Sentence, Unit

# Question words that ask for a number / a time.
_QUANTITY_Q = re.compile(
    r"\b(how (many|much|long|common|often|frequent)|what (percentage|proportion|fraction|share|rate|rates|number|"
    r"dose|age)|median|mean|rate|rates|percentage|proportion|hazard ratio|how did .* compare)\b", re.I)
_MONEY_Q = re.compile(r"\b(cost|costs|price|prices|priced|expensive|cheap|afford\w*|reimburse\w*)\b", re.I)
_MONEY = re.compile(r"[$€£¥]|\b(cost|costs|price|prices|dollars?|euros?|usd|eur)\b", re.I)
_WHEN_Q = re.compile(r"^\s*(when|in what year|what year|what date|on what date)\b", re.I)
_DATEISH = re.compile(
    r"\b(1[89]\d\d|20\d\d|january|february|march|april|may|june|july|august|september|october|november|"
    r"december|week|weeks|month|months|day|days|year|years)\b", re.I)
LIGHT = frozenset(index_terms(
    "achieve achieved receive received get got occur occurred find found see take took include included "
    "experience experienced undergo underwent become became happen happened patients people participants "
    "study trial studies trials percentage percent proportion fraction share rate rates number count many much "
    "compare compared differ difference each both"
))
# "Did ... mean" asks for a meaning, "the mean" for a statistic.
_MEAN_VERB = re.compile(r"\b(do|does|did)\b(?:(?!\b(?:the|a)\s+mean\b).)*\bmean\b", re.I)
_PERCENT_Q = re.compile(r"\b(what|which) (percentage|proportion|fraction|share)\b|\bhow many percent\b", re.I)
_PERCENT = re.compile(r"%|\bpercent|\b\d+ of \d+\b", re.I)
# Study-conduct figures (planning assumptions, follow-up time) are not the outcome they mention.
_CONDUCT = re.compile(r"\b(would give|power to detect|assum(?:ed|ing|ption)|enrollment target|follow-?up)\b", re.I)
_CONDUCT_Q = re.compile(r"\b(power|sample size|design\w*|plan\w*|assum\w*|follow-?up|followed)\b", re.I)
# The thing a "what/which" question asks for ends at its first preposition or verb.
_FOCUS = re.compile(r"^\s*(?:what|which)\s+(?:(?:was|were|is|are)\s+)?(?:the\s+|a\s+|an\s+)?"
                    r"((?:[\w-]+\s+){0,4}?[\w-]+?)(?=\s+(?:of|in|with|for|among|at|to|by|after|between|from|"
                    r"on|did|do|does|was|were|is|are|has|have|had|when|that|who)\b|\s*\?|\s*$)", re.I)
# Definition questions want the sentence that defines, not a table row that counts.
_DEFINE_Q = re.compile(r"\b(defined?|definition|counts? as|meant by|criteria|eligib\w*)\b", re.I)
_DEFINING = re.compile(r"\b(defined as|(?:was|were|is|are) defined|definition|calculated as|consist\w* of|"
                       r"criteria|i\.e\.|refers? to|eligib\w*|measured as)\b", re.I)
_BACK_MATTER = re.compile(r"^(REFERENCES|APPENDIX|ACKNOWLEDG|DISCLOSURE)|> Supported by", re.I)


@dataclass(frozen=True)
class Candidate:
    unit: Unit
    sentence: Sentence
    position: int  # index of the sentence inside its unit
    passage_rank: int
    vector: np.ndarray = field(repr=False, compare=False)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.unit.doc, self.sentence.start, self.sentence.end)

    @property
    def is_row(self) -> bool:
        return self.unit.kind == "row"


@dataclass(frozen=True)
class Scored:
    cand: Candidate
    score: float
    sim: float
    covered: frozenset[str]  # question terms this evidence covers (with its context)
    has_number: bool


@dataclass(frozen=True)
class Query:
    """The question as the scorer sees it: weighted terms, numbers, what kind of answer it wants."""

    text: str
    weights: dict[str, float]
    core: frozenset[str]  # terms of the question itself (not of the turn it follows up)
    numbers: frozenset[str]
    wants_number: bool
    wants_time: bool
    wants_money: bool
    counted: str  # stem of the noun after "how many" ("patient"), if any
    focus: frozenset[str]  # what a "what/which" question asks for ("dose", "median age")
    wants_percent: bool
    wants_definition: bool
    named: frozenset[str]  # documents the question (or its earlier turn) names by a catalog alias
    vector: np.ndarray = field(repr=False, compare=False)

    @property
    def total(self) -> float:
        return sum(self.weights.values()) or 1.0

    def coverage(self, terms: frozenset[str] | set[str]) -> float:
        return sum(w for t, w in self.weights.items() if t in terms) / self.total


def make_query(index: Index, question: str, context: str, vector: np.ndarray) -> Query:
    """Terms of the question (weight by rarity) plus, at half weight, those of the turn it follows up."""
    abbr = index.abbreviations()
    skip = {t for a in abbreviations_used(question + " " + context, abbr) for t in index_terms(a)}
    weights: dict[str, float] = {}
    # "How long/big/common" says what kind of answer is wanted, not what it is about.
    phrasing = {t for m in re.finditer(r"\bhow (\w+)", question, re.I) for t in index_terms(m.group(1))}
    if _MEAN_VERB.search(question):
        phrasing.add("mean")
    for text, factor in ((question, 1.0), (context, 0.5)):
        full = f"{text} {expand(text, abbr)}"
        for t in index_terms(full):
            if t in skip:
                continue
            # A word no document uses is usually the asker's phrasing ("judged", "rank"): it weighs little.
            w = (0.3 if t in LIGHT or t in phrasing else index.idf(t) if index.in_corpus(t) else 1.0) * factor
            weights[t] = max(weights.get(t, 0.0), w)
    # Names of a document ("TOWER") route the question; once routed they say nothing about the topic.
    alias_index = index.alias_index()
    # News pieces about a study carry its name as an alias too: they report on the named study.
    asked = set(tokens(f"{question} {context}"))
    named = frozenset(d for t in asked for d in alias_index.get(t, ()))
    for t in list(weights):
        if t in alias_index:
            weights[t] = min(weights[t], 1.0)
    m = re.search(r"\bhow many (\w+)", question, re.I) or re.search(r"\bnumber of (\w+)", question, re.I)
    counted = next(iter(index_terms(m.group(1))), "") if m else ""
    core = frozenset(t for t in index_terms(f"{question} {expand(question, abbr)}") if t in weights)
    # Only one asked-for thing ("sample size and power" is two), named in words the corpus uses.
    fm = _FOCUS.search(question)
    focus = frozenset(t for t in index_terms(fm.group(1)) if t in weights and weights[t] > 0.3
                      and index.in_corpus(t)) if fm and not re.search(r"\b(and|or)\b", fm.group(1)) else frozenset()
    return Query(
        text=question, weights=weights, core=core, counted=counted, numbers=frozenset(numbers(question)),
        focus=focus, wants_percent=bool(_PERCENT_Q.search(question)),
        named=named, wants_definition=bool(_DEFINE_Q.search(question) or _MEAN_VERB.search(question)),
        wants_number=bool(_QUANTITY_Q.search(question)), wants_time=bool(_WHEN_Q.search(question)),
        wants_money=bool(_MONEY_Q.search(question)), vector=vector,
    )


def candidates(index: Index, passages: Sequence[Passage]) -> list[Candidate]:
    out: list[Candidate] = []
    seen: set[tuple[str, int, int]] = set()
    for p in passages:
        u = p.unit
        sv = index.sentence_vectors(u.id)
        if u.kind == "row" and not u.cells:
            continue  # header and sub-group rows are context for data rows, not answers
        for i, s in enumerate(u.sentences):
            key = (u.doc, s.start, s.end)
            if key in seen:
                continue
            seen.add(key)
            vec = sv[i] if sv is not None and i < len(sv) else index.snap.vectors[u.id]
            out.append(Candidate(u, s, i, p.rank, vec))
    return out


class TermCache:
    """Bounded LRU of text -> terms, shared by the queries of one index snapshot (UI threads too)."""

    def __init__(self, max_items: int = 20_000) -> None:
        self.max_items = max_items
        self._data: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> frozenset[str] | None:
        with self._lock:
            v = self._data.get(key)
            if v is not None:
                self._data.move_to_end(key)
            return v

    def put(self, key: str, value: frozenset[str]) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def term_cache(index: Index) -> TermCache:
    cache = index.snap.derived.get("evidence_terms")
    if not isinstance(cache, TermCache):
        cache = index.snap.derived.setdefault("evidence_terms", TermCache())
    return cache


_NUMWORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "twelve": "12"}
_NUM_WORD_UNIT = re.compile(r"\b(one|two|three|four|five|six|twelve)(?=[- ](?:year|month|week|day)s?\b)", re.I)


# Report wording for question words, used when judging evidence only (retrieval keeps its own list).
_ANSWER_SYNONYMS = [("given", "administered"), ("given", "received"), ("last", "duration"), ("long", "duration")]
_DOSE = re.compile(r"\d\s*(?:\$?\\?mu\$?\s*g|[μµ]\s*g|mg|iu)\b(?:\s*(?:per|/)\s*\w+)?", re.I)


def _terms_with_synonyms(text: str, abbr: dict[str, str], cache: TermCache | None = None) -> frozenset[str]:
    if cache is not None and (hit := cache.get(text)) is not None:
        return hit
    # "Two-year" is the question's "2-year"; "salvage-treatment" also speaks of "salvage".
    norm = _NUM_WORD_UNIT.sub(lambda m: _NUMWORDS[m.group(1).lower()], text)
    terms = set(index_terms(f"{norm} {expand(norm, abbr)}", parts=True))
    for t in [t for t in terms if "-" in t]:
        terms.add(t.replace("-", ""))  # "event-free" meets "eventfree"
    if "±" in text:
        terms.add("mean")  # journal convention: plus-minus values are means ±SD
    if _DOSE.search(text):
        terms.add("dose")  # "9 μg per day" is a dose even where the word is not used
    # A question's everyday word counts as present when the report's word is there.
    for word, formal in [*SYNONYMS.items(), *_ANSWER_SYNONYMS]:
        if set(index_terms(formal)) <= terms:
            terms.update(index_terms(word))
    out = frozenset(terms)
    if cache is not None:
        cache.put(text, out)
    return out


def _has(term: str, terms: frozenset[str]) -> bool:
    """A hyphenated question term ("stem-cel") is present when the text has it joined or its parts."""
    if term in terms:
        return True
    if "-" not in term:
        return False
    if term.replace("-", "") in terms:
        return True
    *head, last = [p for p in term.split("-") if len(p) > 1] or [""]
    # The whole word was stemmed, so its last part may be cut short ("stem-cel" for "stem-cell").
    return bool(last) and all(p in terms for p in head) and any(x.startswith(last) for x in terms)


# Digits that are not figures: table/figure pointers, P values, trial phases, codes ("CD19", "S2").
_NOT_FIGURE = re.compile(
    r"\b(?:tables?|fig(?:ure)?s?\.?|panels?)\s+S?\d+[A-Z]?(?:\s*(?:,|and|to)\s*S?\d+[A-Z]?)*"
    r"|\bP\s*[=<>≤≥]\s*0?\.\d+|\bphase\s+\d\b|[A-Za-z]\d+", re.I)


def has_figure(text: str, given: frozenset[str] = frozenset()) -> bool:
    """Whether ``text`` reports a figure, not counting the numbers the question itself gives ("grade 3")."""
    return any(n.lstrip("-") not in given for n in numbers(_NOT_FIGURE.sub(" ", text)))


def score(index: Index, q: Query, cands: Sequence[Candidate]) -> list[Scored]:
    abbr = index.abbreviations()
    tc = term_cache(index)
    ctx_cache: dict[tuple[str, str], frozenset[str]] = {}
    # Names of a document ("TOWER") are covered by its catalog context; in a sentence they add nothing.
    out = []
    for c in cands:
        u = c.unit
        key = (u.doc, u.section)
        if key not in ctx_cache:
            ctx_cache[key] = _terms_with_synonyms(f"{u.section} {index.alias_text(u.doc)}", abbr, tc)
        own_text = u.text if c.is_row else c.sentence.text
        own = _terms_with_synonyms(own_text, abbr, tc) - index.alias_tokens(u.doc)
        # The sentence before belongs to the meaning ("...newly diagnosed ALL. ... rates are 85 to 90%").
        before = u.lead if c.position == 0 else u.sentences[c.position - 1].text
        have = own | ctx_cache[key]
        if before and not c.is_row:
            have = have | _terms_with_synonyms(before, abbr, tc)
        has_number = has_figure(own_text, q.numbers)
        covered = frozenset(t for t in q.weights if _has(t, have))
        own_cov = q.coverage(frozenset(t for t in q.weights if _has(t, own)))
        sim = float(c.vector @ q.vector)
        s = 0.4 * sim + 0.45 * q.coverage(covered) + 0.15 * own_cov
        if q.numbers:
            s += 0.1 * len(q.numbers & set(numbers(own_text))) / len(q.numbers)
        if q.counted and re.search(rf"\d[\d,]*\s+(?:\w+\s+)?{re.escape(q.counted)}", own_text, re.I):
            s += 0.1  # "how many patients" answered by "405 patients"
        if c.is_row:
            # A question that names the row ("CR with incomplete hematologic recovery") wants that row.
            label = _terms_with_synonyms(u.sentences[0].text.split(" — ")[-len(u.cells) - 1], abbr, tc)
            if label:
                s += 0.15 * len(label & q.weights.keys()) / len(label)
        if q.wants_number and not has_number:
            s -= 0.15
        if _BACK_MATTER.search(u.section):
            s -= 0.2
        if _CONDUCT.search(own_text) and not _CONDUCT_Q.search(q.text):
            s -= 0.1
        # (Not when a figure is asked for too: the defining sentence would crowd out the figure.)
        if q.wants_definition and not q.wants_number and not c.is_row and (d := _DEFINING.search(own_text)):
            # The defined thing must be the asked one ("complete remission", not "the remission rate").
            subject = set(index_terms(own_text[: d.start()]))
            s += 0.15 if subject and all(t in q.weights for t in subject) else -0.05
        s -= 0.005 * c.passage_rank  # ties go to the better-retrieved passage
        out.append(Scored(c, s, sim, covered, has_number))
    out.sort(key=lambda x: -x.score)
    return out


def select(q: Query, scored: Sequence[Scored], max_items: int, mentioned: set[str]) -> list[Scored]:
    """Lead with the best evidence, then add items that cover what it leaves out (or a named document)."""
    if not scored:
        return []
    lead = scored[0]
    picked = [lead]
    covered = set(lead.covered)
    docs = {lead.cand.unit.doc}
    for s in scored[1:]:
        if len(picked) >= max_items:
            break
        if s.score < 0.8 * lead.score:
            break
        new = q.coverage(frozenset(s.covered - covered))
        needed_doc = s.cand.unit.doc in mentioned and s.cand.unit.doc not in docs
        if new >= 0.08 or needed_doc:
            picked.append(s)
            covered |= s.covered
            docs.add(s.cand.unit.doc)
    if lead.cand.is_row and len(picked) < max_items:  # the article's own sentence for the same figure
        prose = next((s for s in scored[1:6] if not s.cand.is_row and s.has_number
                      and s.cand.unit.doc == lead.cand.unit.doc and s.score >= 0.9 * lead.score), None)
        if prose is not None and prose not in picked:
            picked.append(prose)
    elif q.wants_number and len(picked) < max_items:  # prose rounds ("35%"); its table row is exact
        row = next((s for s in scored[1:6] if s.cand.is_row and s.has_number
                    and s.cand.unit.doc == lead.cand.unit.doc and s.score >= 0.85 * lead.score), None)
        if row is not None and row not in picked:
            picked.append(row)
    for doc in sorted(mentioned - docs):  # a question naming two studies gets both
        best = next((s for s in scored if s.cand.unit.doc == doc and s.score >= 0.5 * lead.score), None)
        if best is not None and len(picked) < max_items + 1:
            picked.append(best)
    return picked


_STATISTIC = re.compile(
    r"\b(median|(?<!did )(?<!does )(?<!do )(?<!to )mean(?!\s*[?.,!'\"]|\s*$)|average|range|hazard ratio|odds ratio|"
    r"relative risk)\b", re.I)
_TIME_POINT = re.compile(r"\b(\d+|one|two|three|four|five|six|twelve)[- ](year|month|week|day)s?\b", re.I)


def _time_points(text: str) -> set[tuple[str, str]]:
    """("2", "year") for "2-year", "two-year", "2 years"."""
    return {(_NUMWORDS.get(n.lower(), n), u.lower()) for n, u in _TIME_POINT.findall(text)}


_POLARITY = re.compile(r"([A-Za-z]+)[- ](positive|negative)\b", re.I)
_ANY_GRADE = re.compile(r"\bany grade\b", re.I)
_HIGH_GRADE = re.compile(r"\bgrade\s*(?:≥|>=|>)\s*\d|\bgrade \d (?:or|and) (?:higher|above|more)\b", re.I)


def _qualifier_conflict(question: str, text: str) -> bool:
    """The evidence qualifies the asked thing the opposite way (Ph-negative for Ph-positive, grade ≥3
    for any grade)."""
    for word, pol in _POLARITY.findall(question):
        opp = "negative" if pol.lower() == "positive" else "positive"
        near = rf"\b{re.escape(word)}\W+(?:\(\w+\)\W*)?"
        if re.search(near + opp, text, re.I) and not re.search(near + pol, text, re.I):
            return True
    return bool(_ANY_GRADE.search(question) and _HIGH_GRADE.search(text) and not _ANY_GRADE.search(text))


def _focus_together(focus: frozenset[str], s: Scored, window: int = 8) -> bool:
    """In a long sentence "median" and "event-free survival" may belong to different results: a statistic
    asked for must stand within a few words of the rest of the asked-for phrase."""
    if s.cand.is_row or len(focus) < 2 or not focus & {"median", "mean", "averag"}:
        return True
    seq = index_terms(_NUM_WORD_UNIT.sub(lambda m: _NUMWORDS[m.group(1).lower()], s.cand.sentence.text))
    hits = [[i for i, x in enumerate(seq) if _has(t, frozenset({x}))] for t in focus]
    if any(not h for h in hits):
        return True  # named by the context (section, sentence before), not placed in this sentence
    return any(all(any(abs(j - i) <= window for j in h) for h in hits) for i in hits[0])


def support(q: Query, picked: Sequence[Scored], mentioned: set[str] | None = None) -> float:
    """How well the chosen evidence answers the question, in [0, 1] (refusal below a threshold)."""
    if not picked:
        return 0.0
    # Terms must be covered within one document, so a dose from one trial and a population from
    # another do not add up to an answer; a question naming several documents may combine them.
    by_doc: dict[str, set[str]] = {}
    for s in picked:
        by_doc.setdefault(s.cand.unit.doc, set()).update(s.covered)
    if mentioned and len(mentioned) > 1:
        used = set(by_doc)
    elif mentioned and next(iter(mentioned)) in by_doc:
        used = {next(iter(mentioned))}  # the study the question names must answer it
    else:
        used = {max(by_doc, key=lambda d: sum(q.weights.get(t, 0.0) for t in by_doc[d] if t in q.core))}
    covered = set().union(*(by_doc[d] for d in used))
    # Support is judged on the question's own terms; a follow-up's earlier turn only steers retrieval.
    core_total = sum(w for t, w in q.weights.items() if t in q.core) or 1.0
    cov = sum(w for t, w in q.weights.items() if t in q.core and t in covered) / core_total
    sim = max(s.sim for s in picked)
    value = 0.6 * cov + 0.4 * max(0.0, sim)
    # A rare word the corpus does use, yet the evidence does not, means the evidence is about something
    # else (a dose asked for a population that was not dosed); two of them are a strong sign.
    misses = [t for t, w in q.weights.items() if t in q.core and t not in covered and w >= 3.5]
    if len(misses) >= 2:
        value *= 0.6
    texts = " ".join(s.cand.unit.text if s.cand.is_row else s.cand.sentence.text for s in picked)
    # A figure for the study the question names must come from that study's document.
    about = set(mentioned or ()) | q.named
    if mentioned and not any(s.cand.unit.doc in about for s in picked):
        value *= 0.4
    elif mentioned and len(mentioned) == 1 and picked[0].cand.unit.doc not in about:
        value *= 0.7  # led by another study's figure
    # Time points and thresholds in the question ("3-year", "under 35") must be in the evidence.
    if q.numbers and not q.numbers <= set(numbers(texts)):
        value *= 0.6
    have_points = _time_points(texts)
    if any(p not in have_points for p in _time_points(q.text)):
        value *= 0.5
    # The statistic asked for (a median, not the mean that was reported) must be the one given.
    lead_text = picked[0].cand.unit.text if picked[0].cand.is_row else picked[0].cand.sentence.text
    for stat in {m.lower() for m in _STATISTIC.findall(q.text)}:
        if stat == "mean" and (_MEAN_VERB.search(q.text) or "±" in lead_text):
            continue  # "what did X mean" asks for a meaning; "x ± y" is a mean
        if stat not in lead_text.lower():
            value *= 0.6
    # The thing asked for ("what dose", "the median age") must be named together in one item.
    if q.focus and not any(q.focus <= s.covered and _focus_together(q.focus, s) for s in picked
                           if s.cand.unit.doc in used):
        value *= 0.5
    lead = picked[0].cand
    before = lead.unit.lead if lead.position == 0 else lead.unit.sentences[lead.position - 1].text
    lead_ctx = lead_text if lead.is_row else f"{before} {lead_text}"  # as scored: with the sentence before
    if _qualifier_conflict(q.text, lead_ctx):
        value *= 0.5
    if q.wants_percent and not _PERCENT.search(texts):
        value *= 0.5
    if _CONDUCT.search(lead_text) and not _CONDUCT_Q.search(q.text):
        value *= 0.6  # a follow-up time or a planning assumption is not the result asked for
    # The evidence must hold the kind of thing asked for: a number, a time, a price.
    if q.wants_number and not any(s.has_number for s in picked):
        value *= 0.4
    if q.wants_time and not any(_DATEISH.search(s.cand.sentence.text) for s in picked):
        value *= 0.4
    if q.wants_money and not any(_MONEY.search(s.cand.sentence.text) for s in picked):
        value *= 0.4
    return max(0.0, min(1.0, value))

"""Answer composition: evidence sentences and readable table rows, each followed by its [n] marker."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from citeqa.answer import features as F
from citeqa.answer.evidence import Candidate, Scored, row_label, table_group
from citeqa.index import Index
from citeqa.ingest.structure import CAPTION
from citeqa.textutil import index_terms, numbers, stem
from citeqa.types import AnswerSentence, Citation, Sentence, Unit

_PAREN_DIGITS = re.compile(r"\s*\([^()]*\d[^()]*\)")


@dataclass
class Draft:
    """Citations in order of first use, deduplicated by span."""

    index: Index
    citations: list[Citation]

    def cite(self, doc: str, unit: Unit, sent: Sentence, score: float, text: str) -> int:
        return self.cite_span(doc, sent.start, sent.end, unit.section, score, text)

    def cite_span(self, doc: str, start: int, end: int, section: str, score: float, text: str) -> int:
        for c in self.citations:
            if (c.doc, c.start, c.end) == (doc, start, end):
                return c.n
        n = len(self.citations) + 1
        self.citations.append(Citation(
            n=n, doc=doc, title=self.index.meta(doc).title, section=section, start=start, end=end,
            quote=self.index.quote(doc, start, end), score=round(score, 4), text=text,
        ))
        return n


def row_cells_text(unit: Unit, grouped: bool = True) -> str:
    """Clean text of exactly the row's span: label and values (what the citation quotes)."""
    label = unit.sentences[0].text.split(" — ")
    values = [v for _, v in unit.cells]
    name = row_label(unit, grouped)
    return " ".join([name, *values]) if values else (label[-1] if label else unit.text)


def _short_header(h: str) -> str:
    return " ".join(_PAREN_DIGITS.sub("", h).split())


def _lower(header: str) -> str:
    """A column header in running text: lower case, but acronyms stay ("CR rate", "median OS")."""
    return " ".join(w if sum(c.isupper() for c in w) >= 2 else w.lower() for w in header.split())


def render_row(unit: Unit, grouped: bool = True) -> str:
    """'Neutropenia: Blinatumomab Group 101 (37.8); Chemotherapy Group 63 (57.8)' from the row's cells."""
    groups: dict[str, list[str]] = {}
    for h, v in unit.cells:
        short = _short_header(h)
        parent, sep, sub = short.partition(" Group ")
        key, val = (f"{parent} Group", f"{sub} {v}") if sep else (short, v)
        groups.setdefault(key, []).append(val)
    body = "; ".join(f"{_lower(k)} {', '.join(vs)}" for k, vs in groups.items())
    label = row_label(unit, grouped)
    return f"{label}: {body}" if body else label


def sentence_text(index: Index, s: Scored) -> str:
    c = s.cand
    if c.is_row:
        return render_row(c.unit, table_group(index, c.unit) is not None)
    return c.sentence.text


def compose(index: Index, picked: Sequence[Scored], corroborates: Mapping[tuple[str, int, int], Scored] | None = None,
            near: Mapping[tuple[int, int], float] | None = None, near_ratio: float = 0.0
            ) -> tuple[str, list[Citation], list[AnswerSentence]]:
    """The answer text: each picked item in order with its markers; an item that corroborates an
    earlier primary report (``corroborates``) is introduced as such. ``near`` maps (unit id, sentence start)
    to the evidence probability of the pool's other sentences: one next to a quoted sentence with at least
    ``near_ratio`` of its probability is quoted with it, in the same passage and citation."""
    corroborates = corroborates or {}
    near = near or {}
    draft = Draft(index, [])
    parts: list[AnswerSentence] = []
    # A sentence starting in lower case whose beginning cannot be found (cut at a table, or a split
    # error) is never quoted as an answer sentence, unless nothing else is left.
    whole = [s for s in picked if s.cand.is_row or not s.cand.sentence.text[:1].islower()
             or _fragments_before(index, s.cand.unit, s.cand)]
    picked_keys = {p.cand.key for p in picked}
    absorbed: set[tuple[str, int, int]] = set()  # sentences already quoted in an earlier item's passage
    for s in whole or picked:
        c = s.cand
        unit = c.unit
        if c.key in absorbed:
            continue
        absorbed.add(c.key)
        if c.is_row:
            grp = table_group(index, unit)
            prefix = ""
            if grp is not None:
                # The group heading ("Age — yr") names what the row's figures are, so the answer reads it;
                # it is not cited apart: the row is the evidence, and its table shows the heading above it.
                prefix = f"{grp.sentences[0].text.split(' | rows: ')[0].split(': ', 1)[-1]} — "
            n = draft.cite(unit.doc, unit, c.sentence, s.score, prefix + row_cells_text(unit, grp is not None))
            markers = [n]
            text = f"{prefix}{render_row(unit, grp is not None)} [{n}]."
        else:
            # A sentence cut by a page break is shown whole: its fragments are joined and cited together.
            frags = [*_fragments_before(index, unit, c), (unit, c.sentence), *_fragments_after(index, unit, c)]
            # A sentence that opens on a pronoun ("They promote viral clearance …") is read with the sentence
            # it points back to, one passage cited as one: the answer is often what the pronoun stands for.
            ante = _antecedent(unit, c)
            if ante is not None and (unit.doc, ante.start, ante.end) not in picked_keys:
                both = Sentence(ante.start, c.sentence.end, f"{ante.text.strip()} {c.sentence.text.strip()}")
                frags = [(unit, both), *frags[1:]]
            # ... and with a sentence next to it that the evidence model also rates (a finding stated, then its
            # figures; a claim, then its reason), or that is itself a picked item not yet quoted: context a
            # reader needs, in the same passage and citation.
            floor = near_ratio * s.score if near_ratio > 0 else float("inf")
            before = _beside(index, unit, c.sentence, -1) if ante is None and frags[0][1] is c.sentence else None
            if before is not None and _joins(near, picked_keys, absorbed, *before, floor) and not before[1].continues \
                    and not _items(before[1], c.sentence):
                joined = f"{before[1].text.strip()} {c.sentence.text.strip()}"
                frags[0] = (unit, Sentence(before[1].start, c.sentence.end, joined))
                absorbed.add((unit.doc, before[1].start, before[1].end))
            # ... and with the next one when that one opens on a pronoun standing for it ("LAB is a more
            # attractive delivery system … It is considered safe …": the reason follows).
            last_u, last = frags[-1]
            nxt = _follower(last_u, last)
            if nxt is not None and (last_u.doc, nxt.start, nxt.end) in absorbed:
                nxt = None
            if nxt is None:
                after = _beside(index, last_u, last, +1)
                if after is not None and _joins(near, picked_keys, absorbed, *after, floor) \
                        and not after[1].text[:1].islower() and not _items(last, after[1]):
                    nxt = after[1]
            if nxt is not None:
                frags[-1] = (last_u, Sentence(last.start, nxt.end, f"{last.text.strip()} {nxt.text.strip()}"))
                absorbed.add((last_u.doc, nxt.start, nxt.end))
            markers = [draft.cite(unit.doc, u, sent, s.score, sent.text) for u, sent in frags]
            body = ""
            for k, (u, sent) in enumerate(frags):
                # The cleaned text may have lost the line-end hyphen that the stored quote still shows.
                cut = index.quote(u.doc, sent.start, sent.end).rstrip().endswith("-")
                piece = _unlabelled(sent.text.strip()) if k == 0 else sent.text.strip()
                body = _join(body, piece, lambda w: _used_twice(index, w))
                body = body.rstrip("-") + "-" if cut else body
            text = f"{body} [{', '.join(map(str, dict.fromkeys(markers)))}]"
        if c.key in corroborates:
            text = f"Also reported: {text}"
        parts.append(AnswerSentence(text=text, citations=tuple(markers)))
    return " ".join(p.text for p in parts), draft.citations, parts


# Pronouns and determiners that open a sentence by pointing back at the one before ("They", "These cells",
# "Its function"); closed-class English words, not any corpus's vocabulary.
# An opening adverbial may come first ("Importantly, they …", "In addition, these …").
_POINTS_BACK = re.compile(r"^\W*(?:[A-Z]\w*(?: \w+)?,\s+)?(?i:they|them|their|these|those|this|it|its|such|both|he|"
                          r"she|his|her)\b(?! (?:is|was) (?:\w+ )?(?:that|to|possible|likely|unclear|known|important|"
                          r"notable|worth)\b)")


# A list item ("5. We recommend …", "- Check serum sodium …") states one thing of its own.
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-•*▪])\s+\S")


def _items(a: Sentence, b: Sentence) -> bool:
    """Two items of one list: each is quoted alone, however close the evidence model rates its neighbour."""
    return bool(_LIST_ITEM.match(a.text) and _LIST_ITEM.match(b.text))


def _antecedent(unit: Unit, c: Candidate) -> Sentence | None:
    """The sentence before ``c`` in its chunk when ``c`` opens on a word that points back to it."""
    if c.position == 0 or not _POINTS_BACK.match(c.sentence.text):
        return None
    prev = unit.sentences[c.position - 1]
    # not the start of ``c`` cut by a page break (that is joined, not prepended), nor a heading scrap
    return None if prev.continues or _split_after(prev, c.sentence) or len(prev.text.split()) < 4 else prev


def _joins(near: Mapping[tuple[int, int], float], picked: set[tuple[str, int, int]],
           absorbed: set[tuple[str, int, int]], unit: Unit, sent: Sentence, floor: float) -> bool:
    """``sent``, next to a quoted sentence, joins its passage: not quoted already, and either picked itself or
    rated at least ``floor`` by the evidence model."""
    key = (unit.doc, sent.start, sent.end)
    return key not in absorbed and (key in picked or near.get((unit.id, sent.start), 0.0) >= floor)


def _beside(index: Index, unit: Unit, sent: Sentence, step: int) -> tuple[Unit, Sentence] | None:
    """The sentence right before (step -1) or after (+1) ``sent`` in running text: in its chunk, or across
    the chunk boundary when only whitespace lies between (PDF chunks hold a sentence or two)."""
    inside = [x for x in unit.sentences if (x.end <= sent.start if step < 0 else x.start >= sent.end)]
    if inside:
        return unit, (inside[-1] if step < 0 else inside[0])
    k = unit.id + step
    if not 0 <= k < len(index.units):
        return None
    other = index.units[k]
    if other.doc != unit.doc or other.kind == "row" or other.section != unit.section or not other.sentences:
        return None
    edge = other.sentences[-1] if step < 0 else other.sentences[0]
    lo, hi = (edge.end, sent.start) if step < 0 else (sent.end, edge.start)
    return (other, edge) if lo <= hi and not index.quote(unit.doc, lo, hi).strip() else None


def _follower(unit: Unit, sent: Sentence) -> Sentence | None:
    """The sentence after ``sent`` in its chunk when it opens on a word that points back to ``sent``."""
    nxt = next((x for x in unit.sentences if x.start >= sent.end), None)
    return nxt if nxt is not None and _POINTS_BACK.match(nxt.text) and not nxt.text[:1].islower() else None


def _unlabelled(text: str) -> str:
    """A sentence without the section label a structured abstract opens its paragraph with ("CONCLUSIONS:
    This study suggests …"): the answer reads on, the citation still quotes the label."""
    m = F.INLINE_LABEL.match(text)
    if m and F.section_role(m.group(1)) not in ("other", "front") and len(text) > m.end() + 20:
        return text[m.end():][:1].upper() + text[m.end() + 1:]
    return text


def _used_twice(index: Index, term: str) -> bool:
    """A word in at least two units: a broken fragment ("previ") occurs only where it was broken."""
    tid = index.snap.vocab.get(term)
    return tid is not None and index.snap.bm25 is not None and index.snap.bm25.df(tid) >= 2


def _join(body: str, piece: str, is_word: Callable[[str], bool]) -> str:
    """Join page-break fragments: "previ-" + "ous" -> "previous"; a word cut with no hyphen ("previ" +
    "ous") is joined when only the whole is a word the corpus uses; else with a space."""
    if body.endswith("-") and piece[:1].islower():
        return body[:-1] + piece
    head = re.search(r"([^\W\d_]+)$", body)
    tail = re.match(r"([^\W\d_]+)", piece)
    if head and tail and piece[:1].islower():
        whole = stem((head.group(1) + tail.group(1)).lower())
        if is_word(whole) and not (is_word(stem(head.group(1).lower())) and is_word(stem(tail.group(1).lower()))):
            return body + piece
    return f"{body} {piece}".strip()


# What a page lays out between two halves of a sentence: table rows, figure and table captions with
# their legends (the ingest gives each caption a section of its own, "RESULTS > Table 3"), and panel
# labels ("e", "Control") extracted from inside a figure.
_FLOAT_REACH = 80  # units: a long table or a figure with many panels can stand between the halves
_MIN_WORDS = 4


def _tiny(unit: Unit) -> bool:
    return sum(len(s.text.split()) for s in unit.sentences) < _MIN_WORDS


def _laid_between(unit: Unit, section: str) -> bool:
    """``unit`` stands between two halves of a sentence of ``section`` (a legend's own halves do not)."""
    floating = unit.section != section and any(CAPTION.match(part) for part in unit.section.split(" > "))
    return unit.kind != "chunk" or _tiny(unit) or floating


def _running_text(index: Index, unit: Unit, step: int) -> Unit | None:
    """The nearest unit of the same document's running text before (step -1) or after (+1) ``unit``."""
    i = unit.id + step
    for _ in range(_FLOAT_REACH):
        if not 0 <= i < len(index.units) or index.units[i].doc != unit.doc:
            return None
        if not _laid_between(index.units[i], unit.section):
            return index.units[i]
        i += step
    return None


_CLOSED = re.compile(r"[.!?:][\"'”’)\]]*$")


def _left_open(sent: Sentence) -> bool:
    """A sentence that stops mid-way: the ingest saw it run on past a page break, or it ends with no
    closing punctuation (plain text whose sentence a table interrupts)."""
    return sent.continues or (not _CLOSED.search(sent.text.rstrip()) and len(sent.text.split()) >= _MIN_WORDS)


def _is_rest(sent: Sentence) -> bool:
    """Begins like the rest of a sentence: a lower-case word ("categorized as ..."), not a term that is
    written in lower case at a sentence start ("mRNA", "p53", "iPSCs")."""
    first = sent.text.split(maxsplit=1)[0].rstrip(",;:") if sent.text.strip() else ""
    return first.isalpha() and first.islower()


def _split_after(sent: Sentence, nxt: Sentence) -> bool:
    """``nxt`` is the rest of ``sent``: a sentence too long for the model's window is cut into pieces at
    a comma or space (``ingest.sentences.split_long``); the piece ends open and the next one follows at
    once, in lower case."""
    return not _CLOSED.search(sent.text.rstrip()) and 0 <= nxt.start - sent.end <= 2 and nxt.text[:1].islower()


def _fragments_after(index: Index, unit: Unit, c: Candidate) -> list[tuple[Unit, Sentence]]:
    """The rest of ``c`` when it stops mid-way: the next sentence of its chunk, or the first of the next
    chunk of running text (past a page break, a table or a figure)."""
    if c.position + 1 < len(unit.sentences):
        nxt = unit.sentences[c.position + 1]
        return [(unit, nxt)] if c.sentence.continues or _split_after(c.sentence, nxt) else []
    if c.is_row or _tiny(unit) or not _left_open(c.sentence):
        return []
    other = _running_text(index, unit, +1)
    if other is not None and other.sentences[0].start >= c.sentence.end and _is_rest(other.sentences[0]):
        return [(other, other.sentences[0])]
    return []


def _fragments_before(index: Index, unit: Unit, c: Candidate) -> list[tuple[Unit, Sentence]]:
    """The start of a sentence whose continuation ``c`` is (it begins in lower case after a page break,
    a table or a figure)."""
    if not c.sentence.text[:1].islower():
        return []
    if c.position > 0:
        prev = unit.sentences[c.position - 1]
        return [(unit, prev)] if prev.continues or _split_after(prev, c.sentence) else []
    other = _running_text(index, unit, -1)
    if other is None:
        return []
    last = other.sentences[-1]
    ok = last.end <= c.sentence.start and (_left_open(last) and _is_rest(c.sentence) or _split_after(last, c.sentence))
    return [(other, last)] if ok else []


def conflicts(index: Index, picked: Sequence[Scored], pool: Sequence[Scored], asked: frozenset[str] = frozenset(),
              counted: str = "") -> list[tuple[Scored, Scored, str]]:
    """Pairs of strong evidence from different documents that give different figures for the same measure
    of the question (``asked``: the question's terms; ``counted``: what it counts, "how many patients")."""
    if not picked:
        return []
    # Wider than the evidence quoted, by rank rather than score: a planted or outlying figure that repeats
    # the question's words can outscore, many times over, the report it contradicts.
    strong = list(pool[:6])
    subject = {s.cand.unit.doc: _doc_terms(index, s.cand.unit.doc) for s in strong}
    for a_i, a in enumerate(strong):
        for b in strong[a_i + 1 :]:
            if a.cand.unit.doc == b.cand.unit.doc or not (a in picked or b in picked):
                continue
            what = _differ(sentence_text(index, a), sentence_text(index, b), asked,
                           subject[a.cand.unit.doc], subject[b.cand.unit.doc], counted)
            if what:
                return [(a, b, what)]  # the best-ranked disagreement; further pairs are mostly repeats
    return []


# Figures that say nothing about a result: years, P values, confidence bounds, table pointers, codes.
_NOT_MEASURE = re.compile(r"\b(?:19|20)\d\d\b|\bP\s*[=<>≤≥]\s*0?\.\d+|\b(?:95%\s*)?(?:CI|confidence interval)[^;)]*|"
                          r"\b(?:tables?|fig(?:ure)?s?\.?|phase|grade|stage|day|week)\s+\d+|[A-Za-z]\d+", re.I)
_FIGURE = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s*(%|[^\W\d_]+)")


def figures(text: str) -> dict[str, set[str]]:
    """Unit word ("%", "month", "patient", stemmed) -> the figures given in it."""
    out: dict[str, set[str]] = {}
    for m in _FIGURE.finditer(_NOT_MEASURE.sub(" ", text)):
        unit = m.group(2) if m.group(2) == "%" else next(iter(index_terms(m.group(2))), "")
        if unit:
            out.setdefault(unit, set()).add(m.group(1).replace(",", ""))
    return out


def _unit_word(text: str, unit: str) -> str:
    """How ``text`` writes the (stemmed) unit: "patients", "months", "%"."""
    for m in _FIGURE.finditer(text):
        if m.group(2) == unit or next(iter(index_terms(m.group(2))), "") == unit:
            return "percentages" if unit == "%" else m.group(2).lower()
    return unit


def _doc_terms(index: Index, doc: str) -> frozenset[str]:
    """Terms of a document's title and study names: what its every sentence is about."""
    return frozenset(index_terms(index.alias_text(doc)))


def _differ(a: str, b: str, asked: frozenset[str], about_a: frozenset[str] = frozenset(),
            about_b: frozenset[str] = frozenset(), counted: str = "") -> str:
    """The measure both texts report with no figure in common ("" when they agree or measure different
    things). Same measure: the same unit, and either the question counts that unit (``counted``: "how many
    patients") or both texts name at least two of the question's words (what is measured, and of whom). A
    unit the question merely uses is not enough: "2-year survival" does not make two patients' ages
    ("1 to 30 years", "younger than 1 year") a disagreement."""
    fa, fb = figures(a), figures(b)
    na, nb = set(numbers(a)), set(numbers(b))
    wa, wb = set(index_terms(a)), set(index_terms(b))
    about = asked & wa & wb
    same_subject = asked & (wa | about_a) == asked & (wb | about_b)
    for unit in fa.keys() & fb.keys():
        if fa[unit] & nb or fb[unit] & na:
            continue  # the other text also gives this figure: they agree (or list both arms)
        # Without the question counting the unit, the two must speak of the same question words, in the
        # sentence or as its document's title or study name: "77% of ELIANA patients" and "2.4% of
        # patients" (another trial's report) share the measure, not whom.
        if (counted and unit == counted) or (len(about - {unit}) >= 2 and same_subject):
            return _unit_word(a, unit)
    return ""

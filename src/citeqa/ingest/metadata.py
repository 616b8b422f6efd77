"""Document metadata read from the document's own text: title, authors, venue, date, DOI, trial
registration ids and study acronyms.

A user's own documents have no catalog entry, yet citations need a title and question routing needs
the names a reader uses for a study ("the TOWER trial", "NCT02013167"). Every rule here is about the
shape of scholarly and news text in general (a "Key: value" header block, a journal citation line, a
registry's id format, an all-caps name used with "trial"/"study"), never about one corpus. The catalog
stays an optional override: ``merge_meta`` fills only the fields a catalog entry leaves blank.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace

from citeqa.abbrev import CLINICAL, find_abbreviations
from citeqa.ingest.bylines import DEGREE, is_author_line, name_parts
from citeqa.ingest.dates import DATES, dateline, parse_date
from citeqa.ingest.structure import MAJOR, Line, detect_furniture, split_lines
from citeqa.types import DocMeta

__all__ = [
    "Extracted", "extract_metadata", "find_acronyms", "find_doi", "find_trial_ids", "merge_meta",
]


@dataclass(frozen=True)
class Extracted:
    """What the text says about itself; empty strings where it says nothing."""

    title: str = ""
    authors: str = ""
    venue: str = ""
    date: str = ""
    year: str = ""
    doi: str = ""
    trial_ids: tuple[str, ...] = ()
    acronyms: tuple[str, ...] = ()
    # Acronym of the study a registration id belongs to ("TOWER" for NCT02013167), when the text
    # names both in one sentence: it marks the document as that study's own report.
    id_acronyms: tuple[tuple[str, str], ...] = ()

    @property
    def trial_id(self) -> str:
        """Catalog style: "NCT02013167 (TOWER)"; several ids joined with "; "."""
        names = dict(self.id_acronyms)
        return "; ".join(f"{i} ({names[i]})" if i in names else i for i in self.trial_ids)

    @property
    def aliases(self) -> str:
        return "; ".join(self.acronyms)


@dataclass(frozen=True)
class _Layout:
    """The lines of a document split into the parts the extractors look at."""

    lines: tuple[Line, ...]
    furniture: frozenset[int]
    head: tuple[int, ...]  # line indices before the first body paragraph (title, bylines, headers)
    references: frozenset[int]  # reference-list lines: they describe other works, not this one
    headers: tuple[tuple[str, str], ...]  # "Key: value" lines of the head, key lower-cased


# --- layout ---------------------------------------------------------------------------------------

_HEAD_MAX_LINES = 60
_BODY_WORDS = 40  # a line this long is running prose: the front matter has ended
_HEADER = re.compile(r"^\s*([A-Za-z][A-Za-z ()/-]{0,28}?)\s*:\s+(\S.*)$")
# Metadata keys of "Key: value" headers that exporters, clippers and repositories write.
_HEADER_KEYS = frozenset({
    "title", "author", "authors", "author(s)", "by", "byline", "date", "published", "publication date",
    "date published", "first published", "doi", "license", "licence", "copyright", "rights", "source",
    "journal", "venue", "publisher", "publication", "url", "link", "keywords", "credit", "funding",
    "correspondence", "email", "affiliation", "affiliations", "citation", "volume", "issue", "pages",
    "issn", "language", "type", "category", "tags", "id", "identifier",
})
_REF_HEADING = re.compile(r"^\W*(references|bibliography|literature cited|works cited|notes and references)\W*$",
                          re.I)
# "12. Smith AB, Jones C, ..." / "**12.** Smith AB": a numbered entry opening with an author's surname
# and initials.
_REF_ENTRY = re.compile(r"^\W{0,3}\d{1,3}\W{1,4}\s*[A-Z][\w'’-]+(?:\s[A-Z][\w'’-]+)?\s+[A-Z]{1,3}\b[,.]")


def _layout(text: str) -> _Layout:
    lines = tuple(split_lines(text))
    furniture = frozenset(detect_furniture(list(lines)))
    head: list[int] = []
    for i, ln in enumerate(lines[:_HEAD_MAX_LINES]):
        s = ln.stripped
        if not s or i in furniture:
            continue
        if len(s.split()) >= _BODY_WORDS and not is_author_line(s):
            break
        head.append(i)
    refs: set[int] = set()
    in_refs = False
    for i, ln in enumerate(lines):
        s = ln.stripped
        if _REF_HEADING.match(s.lstrip("#").strip()):
            in_refs = True
        elif in_refs and s.startswith("#") and not _REF_ENTRY.match(s):
            in_refs = False  # an appendix or other section after the list
        if in_refs or _REF_ENTRY.match(s):
            refs.add(i)
    headers = []
    for k, i in enumerate(head):
        m = _HEADER.match(lines[i].text)
        if m:
            headers.append((m.group(1).strip().lower(), m.group(2).strip()))
        elif (m := _LIST_KEY.match(lines[i].text)) and m.group(1).strip().lower() in _HEADER_KEYS:
            # YAML front matter lists a key's values on the lines below it ("author:" / "  - Jane Doe").
            items = []
            for j in head[k + 1:]:
                item = _LIST_ITEM.match(lines[j].text)
                if item is None:
                    break
                items.append(_unquote(item.group(1).strip()))
            if items:
                headers.append((m.group(1).strip().lower(), "; ".join(items)))
    return _Layout(lines, furniture, tuple(head), frozenset(refs), tuple(headers))


_LIST_KEY = re.compile(r"^\s*([A-Za-z][A-Za-z ()/-]{0,28}?)\s*:\s*$")
_LIST_ITEM = re.compile(r"^\s*-\s+(?:name\s*:\s*)?(\S.*)$")


def _unquote(v: str) -> str:
    return v[1:-1].strip() if len(v) > 1 and v[0] in "\"'“" and v[-1] in "\"'”" else v


def _header(lay: _Layout, *keys: str) -> str:
    for k, v in lay.headers:
        if k in keys:
            # YAML front matter quotes its values (title: "A review of …") and may list them inline
            # (author: [Jane Doe, John Roe]).
            if len(v) > 1 and v[0] == "[" and v[-1] == "]":
                return "; ".join(_unquote(p.strip()) for p in v[1:-1].split(",") if p.strip())
            return _unquote(v)
    return ""


def _body_text(lay: _Layout) -> str:
    """The text without reference-list lines and page furniture (offsets are not needed here)."""
    return "\n".join(ln.text for i, ln in enumerate(lay.lines) if i not in lay.references and i not in lay.furniture)


# --- line shapes ----------------------------------------------------------------------------------

_URL = re.compile(r"https?://|www\.\w", re.I)
_LICENCE = re.compile(r"\b(copyright|©|all rights reserved|licen[cs]e[ds]?|creative commons|cc[- ]by)\b", re.I)
# An identifier: "PMID 10173769", "arXiv:2101.00001", a hash; lines carrying one are catalogue labels.
_IDENT = re.compile(r"\b[A-Za-z]{2,}:?\s?\d{5,}\b|\b[0-9a-f]{24,}\b")
_CITATION = re.compile(
    r"(?P<venue>[A-Z][A-Za-z.&]*(?:\s+(?:[A-Z][A-Za-z.&]*|of|and|&))*)\s+(?P<year>(?:19|20)\d{2})\s*;\s*"
    r"(?P<vol>\d+)(?:\s*\(\s*[\w-]+\s*\))?\s*:\s*(?P<pages>[A-Za-z]?\d+(?:[-–][A-Za-z]?\d+)?)"
)
_BYLINE = re.compile(r"^[,;\s]*by\s+(.+)$", re.I)
# Nouns in a publication's name: a short line naming one above the title is the masthead (venue).
_PUBLICATION_NOUN = re.compile(
    r"\b(news|journal|times|review|gazette|bulletin|magazine|post|herald|weekly|daily|today|digest|letters|"
    r"reports|tribune|chronicle|newsletter|blog)\b", re.I)
_AUXILIARY = re.compile(r"\b(?:is|are|was|were|has|have|had|can|could|will|would|should|may|might|must|do|does|did)\b")


def _plain(s: str) -> str:
    """Line text without markdown heading marks and emphasis."""
    return " ".join(s.strip().lstrip("#").replace("**", "").replace("__", "").split())


def _is_header_line(s: str) -> bool:
    m = _HEADER.match(s)
    if not m:
        return False
    key, value = m.group(1).strip(), m.group(2).strip()
    # Known metadata keys, ALL-CAPS labels of structured abstracts, and "Key: <identifier>" lines.
    # A known key with a qualifier ("Date issued", "Date of issue", "Published online") is one too.
    words = key.lower().split()
    # (An ALL-CAPS label heads mixed-case text; a line all in capitals is a title set in capitals.)
    return (key.lower() in _HEADER_KEYS or (key.isupper() and not value.isupper())
            or (len(words) <= 3 and words[0] in _HEADER_KEYS)
            or bool(re.fullmatch(r"\S*\d\S*", value) and len(value) >= 8))


def _is_title_candidate(s: str) -> bool:
    words = s.split()
    if not 3 <= len(words) <= 40 or len(s) > 300 or not s[0].isupper() and not s[0].isdigit():
        return False
    letters = [c for c in s if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(words) < 6:
        return False  # running heads and section labels ("ORIGINAL ARTICLE"); a notice's title may be set in capitals
    if s.upper() in MAJOR:
        return False
    if _URL.search(s) or _LICENCE.search(s) or _IDENT.search(s) or _CITATION.search(s):
        return False
    if _is_header_line(s) or is_author_line(s) or _BYLINE.match(s):
        return False
    # Prose (captions, teasers, an abstract's opening line): ending like a sentence and long, or several
    # sentences, or with an auxiliary verb (titles are noun phrases; "X is claimed to ..." is a sentence).
    return not (re.search(r"[.!?]$", s) and (len(words) >= 20 or re.search(r"[.!?]\s+[A-Z]", s)
                                             or _AUXILIARY.search(s)))


# --- fields ---------------------------------------------------------------------------------------

def find_title(lay: _Layout) -> str:
    """A header's "Title:", else a markdown level-1 heading, else the first head line of five or more
    words that is not furniture (short lines above a title are mastheads and section labels), else the
    longest candidate."""
    if t := _header(lay, "title"):
        return t
    cands: list[tuple[int, str]] = []
    for i in lay.head:
        raw = lay.lines[i].stripped
        s = _plain(raw)
        if not _is_title_candidate(s):
            continue
        if re.match(r"^#\s", raw):
            return s
        cands.append((i, s))
    for _, s in cands:
        if len(s.split()) >= 5:
            return s
    return max((s for _, s in cands), key=lambda s: len(s.split()), default="")


def find_authors(lay: _Layout, title: str) -> str:
    """An "Authors:" header, a byline ("By NCI Staff"), or the name lines after the title."""
    if a := _header(lay, "authors", "author", "author(s)", "by", "byline"):
        return a
    names: list[str] = []
    for i in lay.head:
        s = _plain(lay.lines[i].stripped)
        if m := _BYLINE.match(s):
            return m.group(1).strip()
        if s != title and is_author_line(s):
            names += [p.strip(" .") for p in name_parts(DEGREE.sub("", s))]
        elif names:
            break  # the author block has ended
    return "; ".join(names)


def find_citation(lay: _Layout) -> re.Match[str] | None:
    """The document's own journal citation ("N Engl J Med 2017;376:836-47") in its front matter: the
    first one outside the reference list within the first part of the text."""
    limit = max(60, len(lay.lines) // 5)
    for i, ln in enumerate(lay.lines[:limit]):
        if i in lay.references or i in lay.furniture:
            continue
        if m := _CITATION.search(ln.text):
            return m
    return None


def find_date(lay: _Layout) -> str:
    """A date header, a date written in the front matter, a "(2017)" ending a label line, or the year
    of a copyright notice outside the reference list."""
    if d := _header(lay, "date", "published", "publication date", "date published", "first published"):
        return parse_date(d)
    for i in lay.head:
        s = lay.lines[i].stripped
        if _is_header_line(s) and not _header(lay, "date"):
            continue
        for rx in DATES:
            if rx.search(s) and len(s.split()) <= 12:  # a dateline, not a sentence mentioning a date
                return parse_date(s)
        if m := re.search(r"\(((?:19|20)\d{2})\)\s*$", s):
            return m.group(1)
        if d := dateline(s):
            return d

    # The first paragraph of the body may open with a dateline.
    after_head = (ln.stripped for ln in lay.lines[(lay.head[-1] + 1 if lay.head else 0):] if ln.stripped)
    if d := dateline(next(after_head, "")):
        return d
    for i, ln in enumerate(lay.lines):
        if i not in lay.references and (m := re.search(r"(?:©|\bcopyright\b)\s*(?:\(c\)\s*)?((?:19|20)\d{2})\b",
                                                       ln.text, re.I)):
            return m.group(1)
    return ""


def find_venue(lay: _Layout, title: str, citation: re.Match[str] | None) -> str:
    """A journal/source header, the document's citation line, or a masthead line above the title."""
    if v := _header(lay, "journal", "venue", "publication", "publisher"):
        return v
    if citation:
        return citation.group(0).strip()
    if not title:
        return ""
    for i in lay.head:
        s = _plain(lay.lines[i].stripped)
        if s == title:
            break
        if len(s.split()) <= 5 and _PUBLICATION_NOUN.search(s) and not s.isupper() and not _is_header_line(s):
            return s
    return ""


_DOI = re.compile(r"\b10\.\d{4,9}/(?:[^\s\"'<>()\[\]]|\([^\s()]*\))+")
_DOI_LABEL = re.compile(r"(?:\bdoi\s*:?\s*|doi\.org/)$", re.I)


def find_doi(text: str, lay: _Layout | None = None) -> str:
    """The document's own DOI: a "DOI:" header, else the first DOI outside the reference list in the first
    part of the text, a labelled one ("DOI:", "doi.org/") before a bare one."""
    lay = lay or _layout(text)
    if d := _header(lay, "doi"):
        m = _DOI.search(d)
        return m.group(0).rstrip(".,;") if m else ""
    front = [ln.text for i, ln in enumerate(lay.lines) if i not in lay.references][: max(80, len(lay.lines) // 5)]
    bare = ""
    for line in front:
        for m in _DOI.finditer(line):
            doi = m.group(0).rstrip(".,;")
            if _DOI_LABEL.search(line[: m.start()]):
                return doi
            bare = bare or doi
    return bare


# Trial registries' id formats (WHO ICTRP primary registries and the large national ones).
_REGISTRY_IDS = re.compile(
    r"\b(?:NCT\d{8}|ISRCTN\d{8}|ACTRN\d{14}|DRKS\d{8}|ChiCTR(?:-[A-Z]{2,4}-)?\d{8,10}|CTRI/\d{4}/\d{2,3}/\d{6}"
    r"|EudraCT(?:\s+(?:number|no\.?|identifier))?[:\s]+\d{4}-\d{6}-\d{2}|\d{4}-\d{6}-\d{2}-\d{2}"
    r"|UMIN\d{9}|JPRN-\w+|NTR\d{3,5}|NL\d{4,6}|IRCT\d{8,}N\d+|KCT\d{7}|PACTR\d{15}|TCTR\d{11}"
    r"|SLCTR/\d{4}/\d{3}|RBR-\w{6,8}|PER-\d{3}-\d{2}|LBCTR\d{10}|ITMCTR\d+|CRIS-KCT\d+|jRCT\w\d+)"
)
# A cooperative-group protocol number used as the study's name: "Group Study ALL1331", "Trial E1910".
_PROTOCOL_ID = re.compile(r"\b(?:Study|Trial|Protocol)\s+([A-Z]{1,6}\d{3,}[A-Z]?)\b")
_REGISTRATION_CUE = re.compile(r"regist|identifier|number|clinicaltrials|trial id", re.I)
_MAX_OWN_IDS = 3


def find_trial_ids(text: str, lay: _Layout | None = None) -> tuple[str, ...]:
    """Registration ids and protocol numbers outside the reference list. A document naming more than a
    few is reviewing other trials: then only ids next to a registration cue are its own."""
    lay = lay or _layout(text)
    body = _body_text(lay)
    found: dict[str, bool] = {}
    for rx in (_REGISTRY_IDS, _PROTOCOL_ID):
        for m in rx.finditer(body):
            tid = m.group(m.lastindex or 0) if rx is _PROTOCOL_ID else re.sub(r"^EudraCT\D+", "", m.group(0))
            if rx is _PROTOCOL_ID and _REGISTRY_IDS.fullmatch(tid):
                continue  # "Trial NCT01234567" is a registration id, already seen
            # The cue must be in the id's own sentence: the sentence before may register another trial.
            sentence = re.split(r"(?<=[.!?])\s+", body[max(0, m.start() - 80): m.start()])[-1]
            cued = bool(_REGISTRATION_CUE.search(sentence))
            found[tid] = found.get(tid, False) or cued or rx is _PROTOCOL_ID
    if len(found) > _MAX_OWN_IDS:
        return tuple(t for t, cued in found.items() if cued)[:_MAX_OWN_IDS]
    return tuple(found)


# --- study acronyms -------------------------------------------------------------------------------

# All-caps names, optionally numbered ("TOWER", "HARBOR-2", "ALL1331"), and capitalised names with a
# hyphenated number ("Interfant-06"): the number marks a name, not an ordinary word.
_ACRONYM = re.compile(r"(?<![\w-])(?:[A-Z][A-Z0-9]{2,}(?:-\d{1,4}[A-Z]?)?|[A-Z][a-z]{2,}-\d{1,4})(?![\w-])")
_STUDY_NOUNS = (r"(?:trials?|study|studies|cohorts?|registry|registries|investigators|consortium|collaborators|"
                r"collaborative|program(?:me)?|protocol|substudy|sub-study|extension|survey)")
# A capitalised name ending in a study noun, just before the parenthesis: "Copenhagen City Heart Study".
_NAMED_STUDY = re.compile(
    r"(?:\b[A-Z][\w'’-]*\s+(?:(?:of|on|in|for|and|the|with)\s+)?){1,}(?:Trials?|Study|Studies|Cohorts?|Registry|"
    r"Registries|Consortium|Collaborative|Program(?:me)?|Protocol|Survey)\s*$")
_ROMAN = re.compile(r"^[IVXLC]+$")
_MIN_USES = 2
_PHASE = re.compile(r"\bphase\s+(?:[1-4]|I{1,3}V?|IV)[ab]?\s*$", re.I)


def _cue(body: str, start: int, end: int) -> int:
    """How strongly this occurrence uses the token as a study's name: 2 when it names the study beside
    its registration or as the short form of a capitalised study name, 1 beside a study noun, else 0."""
    after, before = body[end: end + 60], body[max(0, start - 100): start]
    # "TOWER ClinicalTrials.gov number, NCT02013167"
    if re.match(r"[\s,:;]+\(?(?:\S+\s+){0,3}?" + _REGISTRY_IDS.pattern, after):
        return 2
    if before.endswith("(") and after.startswith(")"):
        clause = re.split(r"[.;:()]", before[:-1])[-1]
        if re.search(r"\b" + _STUDY_NOUNS + r"\b", clause, re.I):
            # "Copenhagen City Heart Study (CCHS)" defines a study's name; "a phase 3 study (TOWER)"
            # only points at one.
            return 2 if _NAMED_STUDY.search(clause) else 1
    if re.match(r"\)?\s+" + _STUDY_NOUNS + r"\b", after, re.I):
        return 1  # "TOWER trial", "TOWER investigators", "(SAKK) study"
    if re.search(r"\b(?:Study|Trial|Protocol)\s+$", before):
        return 1  # "Group Study ALL1331"
    return 0


def _ordinary_abbreviations(text: str) -> set[str]:
    """Abbreviations the text defines for common-noun terms ("minimal residual disease (MRD)",
    "randomized controlled trials (RCT)"), and the standard clinical ones: shorthand, not study names.
    A capitalised long form ("Swiss Group for Clinical Cancer Research (SAKK)") is a proper name."""
    defined = find_abbreviations([text])
    out = {a for a, long in defined.items() if not any(w[:1].isupper() for w in long.split()[1:])}
    return out | set(CLINICAL)


def find_acronyms(text: str, lay: _Layout | None = None) -> tuple[str, ...]:
    """Study names: tokens of acronym shape used at least twice, that are not ordinary abbreviations,
    roman numerals, units or section labels, and that the text uses as a study's name outside the
    reference list, beside its registration or defining it once, or beside a study noun twice."""
    lay = lay or _layout(text)
    prose = [(i, ln.text) for i, ln in enumerate(lay.lines)
             if ln.stripped and i not in lay.furniture and not _is_heading_label(ln.stripped)]
    uses: Counter[str] = Counter()
    cues: Counter[str] = Counter()
    strong: Counter[str] = Counter()
    own: Counter[str] = Counter()  # cued outside the reference list
    after_number: Counter[str] = Counter()
    for i, line in prose:
        for m in _ACRONYM.finditer(line):
            t = m.group(0)
            uses[t] += 1
            if re.search(r"\d\s*$", line[: m.start()]) and not _PHASE.search(line[: m.start()]):
                after_number[t] += 1  # "20 IU", "5 MBQ": a unit (not "Phase 3 HORIZON-7")
            if cue := _cue(line, m.start(), m.end()):
                cues[t] += 1
                strong[t] += cue == 2
                own[t] += i not in lay.references
    ordinary = _ordinary_abbreviations(text)
    out = []
    for t in own:
        if uses[t] < _MIN_USES or t in ordinary or _ROMAN.match(t) or after_number[t] * 2 >= uses[t]:
            continue
        # One "MRI study" or "PTC cohort" makes no name: a term used beside a study noun once, or
        # mostly without one, is a general term (an imaging method, a disease, a gene).
        if not strong[t] and (cues[t] < 2 or cues[t] * 5 < uses[t]):
            continue
        out.append(t)
    return tuple(sorted(out, key=lambda t: (-cues[t], t)))


def _is_heading_label(s: str) -> bool:
    """ALL-CAPS heading lines ("RESULTS", "TRIAL DESIGN") and structured-abstract labels."""
    s = _plain(s)
    letters = [c for c in s if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters) and len(s.split()) <= 8


def _acronym_of_ids(text: str, lay: _Layout, ids: tuple[str, ...], acronyms: tuple[str, ...]
                    ) -> tuple[tuple[str, str], ...]:
    """(id, acronym) where one sentence outside the references names both: the document's own study."""
    body = _body_text(lay)
    pairs = []
    for tid in ids:
        for m in re.finditer(re.escape(tid), body):
            sentence = re.split(r"(?<=[.!?])\s+", body[max(0, m.start() - 200): m.start()])[-1]
            hit = next((a for a in acronyms if re.search(r"(?<![\w-])" + re.escape(a) + r"(?![\w-])", sentence)),
                       None)
            if hit:
                pairs.append((tid, hit))
                break
    return tuple(pairs)


# --- entry points ---------------------------------------------------------------------------------

def extract_metadata(text: str) -> Extracted:
    lay = _layout(text)
    title = find_title(lay)
    citation = find_citation(lay)
    date = find_date(lay)
    if not date and citation:
        date = citation.group("year")
    ids = find_trial_ids(text, lay)
    acronyms = find_acronyms(text, lay)
    return Extracted(
        title=title,
        authors=find_authors(lay, title),
        venue=find_venue(lay, title, citation),
        date=date,
        year=date[:4],
        doi=find_doi(text, lay),
        trial_ids=ids,
        acronyms=acronyms,
        id_acronyms=_acronym_of_ids(text, lay, ids, acronyms),
    )


def merge_meta(name: str, text: str, catalog: DocMeta | None, fallback_title: str) -> DocMeta:
    """The catalog entry where it says something, the text's own metadata where it is blank."""
    ex = extract_metadata(text)
    found = DocMeta(
        doc=name, title=ex.title or fallback_title, venue=ex.venue, date=ex.date, doi=ex.doi,
        trial_id=ex.trial_id, aliases=ex.aliases, authors=ex.authors, year=ex.year,
    )
    if catalog is None:
        return found
    # load_catalog names an entry without a title after its file: that is a blank title too.
    given = {k: v for k, v in vars(catalog).items() if v and not (k == "title" and v == name)}
    if "year" not in given and catalog.date[:4].isdigit():
        given["year"] = catalog.date[:4]
    return replace(found, **given)

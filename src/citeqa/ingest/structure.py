"""Document structure from plain text: page furniture, headings, paragraphs and tables.

Works on the decoded text line by line and never rewrites it: everything downstream refers to
``(start, end)`` offsets of the original text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from citeqa.ingest import aligned
from citeqa.ingest.clean import clean_inline, strip_heading_marks
from citeqa.ingest.mapped import Mapped


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    text: str  # without the line break

    @property
    def stripped(self) -> str:
        return self.text.strip()


@dataclass
class Paragraph:
    section: str
    segments: list[Line] = field(default_factory=list)

    @property
    def open(self) -> bool:
        """Ends mid-sentence (page or column break), so a later lower-case paragraph continues it."""
        for seg in reversed(self.segments):
            last = clean_inline(Mapped.of(seg.text)).text.strip()
            if last:
                return not re.search(r"[.!?:;\"”’)\]]$", last)
        return False


@dataclass
class Table:
    section: str
    caption: str
    caption_line: Line | None
    rows: list[Line]
    # Column headings read from the lines above the rows (PDF text that gives each heading its own line);
    # when set, every row of ``rows`` is data.
    header_lines: tuple[Line, ...] = ()
    # Character spans of the value columns of a table laid out with spaces (``aligned``); () otherwise.
    columns: tuple[tuple[int, int], ...] = ()


@dataclass
class Structure:
    paragraphs: list[Paragraph]
    tables: list[Table]
    sections: list[str]
    furniture: list[Line]
    barriers: list[int]  # offsets of lines that are not prose: a chunk never spans one


def split_lines(text: str) -> list[Line]:
    lines = []
    pos = 0
    for raw in text.split("\n"):
        body = raw[:-1] if raw.endswith("\r") else raw
        lines.append(Line(pos, pos + len(body), body))
        pos += len(raw) + 1
    return lines


# --- page furniture -------------------------------------------------------------------------------

# Shapes of boilerplate seen on journal PDFs and news sites (generic, not tied to one publisher).
_BOILERPLATE = [
    re.compile(p, re.I)
    for p in (
        r"^skip to (main )?content\b",
        r"^an official website of\b",
        r"^(email|share|print|tweet|facebook|twitter|linkedin|español|english|menu|search|home|subscribe)$",
        r"^(<\s*)?(older|newer|previous|next) (post|article|story)(\s*>)?$",
        r"^(featured|related|popular|recent) (posts?|articles?|stories)$",
        r"^get your free subscription\b",
        r"^(just )?enter your email\b",
        r"\bdownloaded from\b.*\b(for personal use only|all rights reserved)",
        r"^copyright ©.*\b(society|inc|ltd|all rights reserved)\b.*$",
        r"^if you would like to reproduce\b",
        r"^read more (about|on)\b",
        r"^advertisement$",
        r"^[a-z0-9]+(?:-[a-z0-9]+){3,}$",  # URL slugs left by web clippers
    )
]
_PAGE_NUMBER = re.compile(r"^\d{1,4}$")
_NAV_ARROW = re.compile(r"^<\s*\w.*|.*\w\s*>$")


def _norm(s: str) -> str:
    return re.sub(r"\d+", "#", s.strip().lower())


def _is_sentence_like(s: str) -> bool:
    return len(s.split()) >= 6 and bool(re.search(r"[.!?]\W*$", s))


def _over_paragraph(lines: list[Line], i: int) -> bool:
    """A short line after a blank one with running text right under it is a heading, though it repeats: a
    report's "Methods" and "Patients" stand over the abstract's part and again over the body's."""
    s = lines[i].stripped
    prev_blank = i == 0 or not lines[i - 1].stripped
    below = lines[i + 1].stripped if i + 1 < len(lines) else ""
    return is_major(s) or (prev_blank and len(below.split()) >= 6 and s[:1].isupper())


def detect_furniture(lines: list[Line]) -> set[int]:
    """Indices of lines that are page furniture: repeated running heads/feet, page numbers, site chrome.
    Table lines never are: two markdown tables of as many columns share their "|---|---|" rule line, and
    a repeated row ("| Total | ... |") is data."""
    counts = Counter(_norm(ln.text) for ln in lines if ln.stripped and not is_table_line(ln.text))
    bad: set[int] = set()
    for i, ln in enumerate(lines):
        s = ln.stripped
        if not s or is_table_line(ln.text):
            continue
        prev_blank = i == 0 or not lines[i - 1].stripped
        next_blank = i + 1 >= len(lines) or not lines[i + 1].stripped
        n = counts[_norm(s)]
        heading = s.startswith("#")
        if any(p.search(s) for p in _BOILERPLATE) or _PAGE_NUMBER.match(s) and prev_blank and next_blank:
            bad.add(i)
        elif not heading and n >= 3 and len(s) >= 8 and not _is_sentence_like(s):
            bad.add(i)  # running heads and feet repeat on every page
        elif (not heading and n >= 2 and len(s.split()) <= 3 and not re.search(r"[.!?]$", s)
              and not _over_paragraph(lines, i)):
            bad.add(i)  # repeated short chrome ("Email")
    # Pagination blocks: the link titles next to "< Older Post" / "Newer Post >" are navigation too.
    for i in sorted(bad):
        s = lines[i].stripped
        if re.search(r"(older|newer|previous|next) (post|article)", s, re.I):
            for j in (i - 2, i + 2) if s.endswith(">") else (i + 2,):
                alone = j + 1 >= len(lines) or not lines[j + 1].stripped
                if 0 <= j < len(lines) and lines[j].stripped and not _is_sentence_like(lines[j].stripped) and alone:
                    bad.add(j)
    return bad


# --- headings -------------------------------------------------------------------------------------

MAJOR = {
    "ABSTRACT", "BACKGROUND", "INTRODUCTION", "METHODS", "MATERIALS AND METHODS", "RESULTS", "DISCUSSION",
    "CONCLUSION", "CONCLUSIONS", "REFERENCES", "APPENDIX", "ACKNOWLEDGMENTS", "ACKNOWLEDGEMENTS", "SUMMARY",
}
# The article's own sections by name, as journals word them ("RESULTS AND DISCUSSION", "STAR+METHODS").
MAJOR_HEADING = re.compile(r"^(?:\d{1,2}\.?\s+)?(abstract|summary|introduction|background|results?|discussion|"
                           r"conclusions?|methods|materials and methods|star\W*methods|experimental procedures|"
                           r"references|acknowledge?ments|funding|author contributions|data availability|"
                           r"declaration of interests|competing interests|supplementary (?:information|material)s?|"
                           r"results and discussion|method details|key resources table|limitations)[.:]?$", re.I)


def is_major(text: str) -> bool:
    """A top-level section heading: capitalised, nothing after the name but a full stop or colon (a line
    of running text reading "methods)" or "Materials and Methods):" is not one)."""
    t = text.strip()
    if re.match(r"About [A-Z]", t) and len(t.split()) <= 6:
        return True  # a press release's "About Orvatinib", "About Nordvik Therapeutics": a part of its own
    return t.upper() in MAJOR or bool(t[:1].isupper() or t[:1].isdigit()) and bool(MAJOR_HEADING.match(t))


# A top-level numbered heading ("2 DOSAGE AND ADMINISTRATION", "3. Results"); "2.1 Recommended Dosage" is a part.
_TOP_NUMBER = re.compile(r"^\d{1,2}\.?\s+[A-Z][^,.;:]*$")  # not a reference "2. Schwitalla, S. et al."
# One- or two-word headings of a plain-text report besides the article's own sections (MAJOR_HEADING).
_SHORT_HEADING = re.compile(r"^(?:about \S+|(?:study|trial) design|design|participants|patients|outcomes|safety|"
                            r"efficacy|key (?:points|findings))$", re.I)
ABSTRACT_PARTS = {"BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS", "CONCLUSION", "OBJECTIVE", "INTERPRETATION"}
_MD = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_FIGURE = re.compile(r"^(figure|fig\.)\s*\d+", re.I)
_TABLE_CAPTION_LINE = re.compile(r"^table\s+(\d+)\.?\s*(.*)$", re.I)


def _table_caption(s: str) -> re.Match[str] | None:
    """"Table 2. Outcomes", "Table 2: Outcomes", "Table 2 Outcomes"; not "Table 2 shows the outcomes at one
    year." (a sentence about the table: the word after the number is in lower case)."""
    m = _TABLE_CAPTION_LINE.match(s)
    return None if m is None or m.group(2)[:1].islower() else m
# The first paragraph under a table that starts its notes: a footnote mark or a note's usual opening.
_NOTE_START = re.compile(r"^\\?(?:[*†‡§¶#]|\(?[a-z]\)\s|[a-z]\s|(?:notes?|abbreviations|source|data|values|"
                         r"p values)\b)", re.I)


# A numbered heading: "2.1 Data collection", "II. Methods", "A. Cell lines".
NUMBERED_HEADING = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?|[IVX]{1,4}\.|[A-H]\.)\s+[A-Z]")
_AXIS_TOKEN = re.compile(r"^(?:[-−+]?[\d.,%±]+|\S)$")


def is_figure_label(t: str) -> bool:
    """Text set inside a figure (axis ticks, panel letters, formulae: "CD8 b 20 15", "E 75 50 25 0",
    "Np = N0 e(k p− ks )t") rather than a heading: half its tokens or more are numbers or single
    characters (two, or one number), or it has an equals sign. A heading's own leading number ("2 Methods")
    does not count."""
    toks = t.split()
    if "=" in t:
        return True
    if len(toks) > 1 and NUMBERED_HEADING.match(t) and sum(bool(_AXIS_TOKEN.match(w)) for w in toks) == 1:
        toks = toks[1:]
    axis = [w for w in toks if _AXIS_TOKEN.match(w)]
    # One capital letter alone is a name's part ("T cells"), a number alone is not ("CD4 0").
    if len(axis) == len(toks):
        return True  # a panel letter or a tick label alone ("H", "25")
    return 2 * len(axis) >= len(toks) and (len(axis) >= 2 or any(c.isdigit() for c in "".join(axis)))


def heading_text(ln: Line) -> str | None:
    """Return the heading's text when the line is a heading, else None."""
    s = ln.stripped
    m = _MD.match(ln.text)
    if m:
        t = " ".join(clean_inline(strip_heading_marks(Mapped.of(ln.text))).text.split())
        return t.rstrip(".").strip() or None
    if "\t" in ln.text or len(s) > 90:
        return None
    words = s.split()
    if re.search(r"[.,;:!?]$", s) or not s[0].isupper() or len(words) > 12 or is_figure_label(s):
        return None
    letters = [c for c in s if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(words) <= 8:
        return " ".join(words)  # ALL-CAPS heading
    if len(words) >= 3 and not re.search(r"[:;,]", s):
        return " ".join(words)  # title-like line standing alone
    if is_major(s) or _SHORT_HEADING.match(s):
        return " ".join(words)  # "Results", "Study design", a press release's "About Orvatinib"
    return None


# Top-level sections that hold no parts of their own: a heading as high as theirs after them is the next
# section, unlike under "METHODS" or "RESULTS".
_NO_PARTS = frozenset({"INTRODUCTION", "BACKGROUND", "SUMMARY"})


class _Sections:
    """Tracks the two-level section path (major > minor) as headings arrive."""

    def __init__(self) -> None:
        self.major = ""
        self.minor = ""
        self.in_abstract = False
        self.abstract_seen: set[str] = set()
        self.abstract_paras = 0
        self.unheaded = 0  # paragraphs of the abstract under no part heading
        self.major_level = 0  # markdown level of the heading that opened the major section (0: none)
        self.all: list[str] = []

    @property
    def path(self) -> str:
        return f"{self.major} > {self.minor}" if self.major and self.minor else self.major or self.minor

    def heading(self, text: str, level: int = 0) -> None:
        """``level``: the markdown heading level (0 for plain text)."""
        key = text.upper().strip()
        # A structured abstract's parts follow its heading directly; after an unstructured abstract
        # (a paragraph under no part heading), "Results" is the article's own section.
        if (self.in_abstract and key in ABSTRACT_PARTS and key not in self.abstract_seen
                and (self.abstract_seen or not self.unheaded)):
            self.abstract_seen.add(key)
            self.minor, self.abstract_paras = text, 0
        elif (is_major(text) or self._sibling(level) or self._peer(text, level)
              or (self.in_abstract and self.unheaded and not self.abstract_seen) or bool(_TOP_NUMBER.match(text))):
            # An abstract written as one paragraph has no parts: the heading after it opens the body
            # (a case report's "Case presentation").
            self.in_abstract = key == "ABSTRACT"
            self.abstract_seen = set()
            self.unheaded = 0
            self.major, self.minor, self.major_level = text, "", level
        elif self.major:
            self.minor = text
        else:
            self.major, self.major_level = text, level
        self._note()

    def _sibling(self, level: int) -> bool:
        """A markdown heading as high as the section's own starts the next section when that section is
        an abstract or was itself opened by level alone; under "METHODS" a "## TRIAL DESIGN" at the same
        level is still a part of it (documents that write every heading at one level)."""
        if not (level and self.major_level and level <= self.major_level):
            return False
        # An introduction has no parts either: a review's "## Definitions" after it is a section of its own.
        return self.major.upper() in {"ABSTRACT", *_NO_PARTS} or not is_major(self.major)

    def _peer(self, text: str, level: int) -> bool:
        """Plain text: a heading in capitals after a section headed in capitals is the next section
        ("BACKGROUND", then "WHAT THE AGENCY REVIEWED", then "RECOMMENDATIONS"), unless that section is one
        of an article's that hold parts ("METHODS" > "STATISTICAL ANALYSIS"); introductions have none."""
        return (not level and text.isupper() and self.major.isupper()
                and (self.major in _NO_PARTS or not is_major(self.major)))

    def paragraph(self) -> str:
        # An abstract part holds one paragraph; unheaded text after the abstract is the introduction.
        if self.in_abstract and not self.minor:
            self.unheaded += 1
        if self.in_abstract and self.minor:
            self.abstract_paras += 1
            if self.abstract_paras > 1 and self.minor.upper() in {"CONCLUSIONS", "CONCLUSION", "INTERPRETATION"}:
                self.in_abstract = False
                self.major, self.minor = "INTRODUCTION", ""
                self._note()
        return self.path

    def _note(self) -> None:
        if self.path and self.path not in self.all:
            self.all.append(self.path)


# --- tables ---------------------------------------------------------------------------------------


# Markdown pipe tables: "| Trial | Patients |" rows, the "|---|---:|" rule under the header row.
PIPE_ROW = re.compile(r"^\s*\|(?:[^|\n]*\|){2,}\s*$")
_PIPE_RULE = re.compile(r"^\s*\|(?:\s*:?-+:?\s*\|)+\s*$")


def is_table_line(text: str) -> bool:
    return "\t" in text or bool(PIPE_ROW.match(text))


def _table_blocks(lines: list[Line], skip: set[int]) -> list[tuple[int, int]]:
    """Runs of consecutive tab-separated or pipe-table lines (at least two)."""
    blocks = []
    i = 0
    while i < len(lines):
        if i not in skip and is_table_line(lines[i].text) and lines[i].stripped:
            j = i
            while j < len(lines) and j not in skip and is_table_line(lines[j].text) and lines[j].stripped:
                j += 1
            if j - i >= 2:
                blocks.append((i, j))
            i = j
        else:
            i += 1
    return blocks


_NUMERIC_CELL = re.compile(r"[-–—]|n/?a|[<>≤≥~±]?\s?[-−]?\d[\d.,]*\s?%?(?:\s?\([^()]*\))?", re.I)
_REACH = 16  # non-blank lines above a table searched for its caption or headings


def _data_row(ln: Line) -> bool:
    """A row of figures (every cell but the label a number or a dash): data, not column headings."""
    cells = [c.strip() for c in ln.text.split("\t")[1:]]
    return bool(cells) and all(_NUMERIC_CELL.fullmatch(c) for c in cells if c) and any(any(ch.isdigit() for ch in c)
                                                                                      for c in cells)


def _above(lines: list[Line], i: int) -> list[int]:
    """Indices of the non-blank lines above line ``i``, nearest first."""
    out: list[int] = []
    j = i - 1
    while j >= 0 and len(out) < _REACH:
        if lines[j].stripped:
            out.append(j)
        j -= 1
    return out


def _caption_above(lines: list[Line], i: int, claimed: set[int]) -> int | None:
    """The "Table N ..." line right above line ``i`` (blank lines apart), unless a table took it."""
    j = next(iter(_above(lines, i)), None)
    return j if j is not None and j not in claimed and _table_caption(_plain(lines[j].stripped)) else None


def _plain(s: str) -> str:
    """A line without its markdown emphasis ("**Table 2.** Outcomes" -> "Table 2. Outcomes")."""
    return clean_inline(Mapped.of(s)).text.strip()


def _headings_before(lines: list[Line], i: int, columns: int) -> tuple[Line, ...]:
    """Column headings that PDF extraction put one per line above the rows: exactly one short line per
    column, right above the block."""
    heads: list[Line] = []
    for j in _above(lines, i):
        t = lines[j].stripped
        if "\t" in lines[j].text or len(t.split()) > 4 or t.endswith((".", ":")) or len(heads) == columns:
            break
        heads.append(lines[j])
    return tuple(reversed(heads)) if len(heads) == columns else ()


# --- assembly -------------------------------------------------------------------------------------


# Figure and table captions ("Figure 2", "Table S1", "Extended Data Fig. 3"): in extracted PDF text each
# is its own paragraph; group 1 is the label.
CAPTION = re.compile(r"^((?:(?:supplementary|extended data|supporting)\s+)?(?:fig(?:ure)?s?\.?|table)\s*S?\d+)",
                      re.I)
# Where a caption begins, its label is followed by a title, a full stop, colon, bar or spaced dash, or
# nothing ("Figure 2. Survival", "Fig. 1 | Structure", "Table 1: Summary", "Figure 1 – Stiffness"). A line
# of running text that a line break starts with a reference is not a caption ("Figure 2C), is
# consistent", "Table 12 in Appendix D provides", "Fig. 2b).", "Figure 4—figure supplement 1A").
CAPTION_START = re.compile(r"^(?i:" + CAPTION.pattern[1:] + r")(?=\s*$|\s*[.:|]|\s+[–—-]\s|\s+[A-Z])")


def _over_text(line: str, nxt: str, headed: bool) -> bool:
    """A short line right above a paragraph line far longer than itself is that paragraph's heading
    ("Case presentation" over the case, a paragraph per line): a line wrapped inside a paragraph is about as
    long as the next one. One or two words may be a name above its affiliation in the front matter, so they
    count only once the document has shown a heading of its own (or when they are a section's usual name)."""
    words = line.rstrip(":").split()
    numbered = bool(NUMBERED_HEADING.match(line))  # "2.2 Dosage in Patients with Renal Impairment"
    if (not words or len(words) > (10 if numbered else 6) or len(line) > (80 if numbered else 60)
            or not (line[0].isupper() or numbered) or is_figure_label(line)):
        return False
    if re.search(r"[.,;!?]$", line):
        return False
    if numbered and NUMBERED_HEADING.match(nxt) and len(nxt) <= 80 and not nxt.endswith("."):
        return True  # "2 DOSAGE AND ADMINISTRATION" right over "2.1 Recommended Dosage"
    listed = bool(re.match(r"[-•*▪]\s+\S", nxt))  # "Learning points" over its bullets
    if not listed and (len(nxt) < max(60, (1.5 if numbered else 2.5) * len(line))
                       or not (nxt[0].isupper() or nxt[0].isdigit())):
        return False
    if len(words) <= 2 and not headed:
        return is_major(line.rstrip(":")) or bool(_SHORT_HEADING.match(line.rstrip(":")))
    return True


def parse_structure(text: str, captions: bool = False) -> Structure:
    """``captions``: a paragraph starting "Figure 2"/"Table 1" is a caption, a section of its own
    (``RESULTS > Figure 2``) that the text around it does not run into (set for PDF text)."""
    lines = split_lines(text)
    furniture = detect_furniture(lines)
    table_at = {a: b for a, b in _table_blocks(lines, furniture)}
    spaced: dict[int, tuple[tuple[int, int], ...]] = {}  # tables laid out with spaces: their columns
    for a, b, cols in aligned.blocks([ln.text for ln in lines], furniture):
        table_at[a] = b
        spaced[a] = cols
    sections = _Sections()
    paragraphs: list[Paragraph] = []
    tables: list[Table] = []
    barriers: list[int] = [lines[i].start for i in furniture]
    current: Paragraph | None = None  # paragraph being read (no blank line yet)
    pending: Paragraph | None = None  # last paragraph that ended mid-sentence
    table_no = 0
    claimed: set[int] = set()  # caption lines already given to a table
    footnotes: str | None = None  # after a table, paragraphs are its notes until the text resumes
    notes_open = False
    i = 0
    while i < len(lines):
        ln = lines[i]
        if i in furniture:
            current = None
            i += 1
            continue
        if i in table_at:
            end = table_at[i]
            rows = [r for r in lines[i:end] if not _PIPE_RULE.match(r.text)]
            table_no += 1
            cap_line = None
            caption = f"Table {table_no}"
            m = _table_caption(rows[0].stripped)
            if m:
                cap_line, rows = rows[0], rows[1:]
            else:
                # A "Table 2. Outcomes" line right above the rows (HTML's <caption>), or the paragraph above a
                # markdown table ("**Table 2.** Outcomes"), is the caption: it leaves the paragraph it was
                # read into.
                j = i - 1 if i and _table_caption(_plain(lines[i - 1].stripped)) else (
                    _caption_above(lines, i, claimed) if PIPE_ROW.match(rows[0].text) else None)
                if j is not None and j not in claimed:
                    claimed.add(j)
                    cap_line, m = lines[j], _table_caption(_plain(lines[j].stripped))
                    for p in paragraphs:
                        if p.segments and p.segments[-1] is cap_line:
                            p.segments.pop()
                    paragraphs = [p for p in paragraphs if p.segments]
                    pending = pending if pending in paragraphs else None
            heads = _headings_before(lines, i, len(rows[0].text.split("\t"))) if captions and _data_row(rows[0]) else ()
            above = _caption_above(lines, lines.index(heads[0]), claimed) if heads and not m else None
            if above is not None:
                # PDF text laid out as caption, one line per column heading, rows: the caption is this
                # table's. (Without headings in between, a caption just above may close the table
                # before it -- captions sit below tables in some journals -- so none is taken.)
                claimed.add(above)
                m = _table_caption(lines[above].stripped)
            if m:
                table_no = int(m.group(1))
                rest = clean_inline(Mapped.of(m.group(2).split("\t")[0])).text.strip().lstrip(":").rstrip("*.").strip()
                caption = f"Table {table_no}. {rest}" if rest else f"Table {table_no}"
            if heads:
                # The headings were read as one-word paragraphs: they belong to the table.
                paragraphs = [p for p in paragraphs if not any(seg in heads for seg in p.segments)]
                pending = pending if pending in paragraphs else None
                barriers.extend(h.start for h in heads)
            base = sections.major or sections.path
            tables.append(Table(f"{base} > {caption}" if base else caption, caption, cap_line, rows, heads,
                                spaced.get(i, ())))
            barriers.extend(r.start for r in lines[i:end])
            # Notes under a table ("* Plus-minus values are means") are its own; a markdown table is followed
            # by the text again.
            footnotes = None if PIPE_ROW.match(rows[-1].text) else tables[-1].section
            notes_open = False  # notes follow a table when the first paragraph after it reads like one
            current = None
            i = end
            continue
        if not ln.stripped:
            current = None
            i += 1
            continue
        h = heading_text(ln) if current is None else None
        runs_into = current is None and not captions and i + 1 < len(lines) and _over_text(
            ln.stripped, lines[i + 1].stripped, bool(sections.all))
        if h is not None and not _MD.match(ln.text) and i + 1 < len(lines) and lines[i + 1].stripped and not (
                is_major(h) and h.isupper()) and not runs_into:
            h = None  # a plain-text heading stands alone on its line, but "RESULTS" may run into its text
        if h is None and runs_into:
            h = " ".join(ln.stripped.rstrip(":").split())
        if h is not None:
            footnotes = None
            md = _MD.match(ln.text)
            sections.heading(h, len(md.group(1)) if md else 0)
            barriers.append(ln.start)
            i += 1
            continue
        if current is not None:
            current.segments.append(ln)
        else:
            first = ln.stripped[0]
            # A sentence goes on past a page break, table or figure: in lower case, or with a reference
            # to a figure or table that is not a caption ("… as shown in" / "Figure 2C), is …").
            if pending is not None and pending.open and (first.islower() or (
                    captions and CAPTION.match(ln.stripped) and not CAPTION_START.match(ln.stripped))):
                pending.segments.append(ln)  # continuation across a page break, table or figure
                current = pending
                footnotes = None
            elif footnotes is not None and (notes_open or _NOTE_START.match(ln.stripped)):
                notes_open = True
                current = Paragraph(footnotes)
                current.segments.append(ln)
                paragraphs.append(current)
                i += 1
                continue
            elif captions and (cap := CAPTION_START.match(ln.stripped)):
                label = " ".join(cap.group(1).replace(".", " ").split()).title().replace("Fig ", "Figure ")
                base = sections.major or sections.path
                current = Paragraph(f"{base} > {label}" if base else label)
                current.segments.append(ln)
                paragraphs.append(current)
                barriers.append(ln.start)
                i += 1
                continue
            else:
                footnotes = None  # the text goes on after a table with no notes
                current = Paragraph(sections.paragraph())
                current.segments.append(ln)
                paragraphs.append(current)
            if not _FIGURE.match(current.section.split(" > ")[-1]):
                pending = current
        i += 1
    barriers.sort()
    return Structure(paragraphs, tables, sections.all, [lines[i] for i in sorted(furniture)], barriers)

"""Author lists and affiliation addresses: read as a document's authors, and never quoted as evidence."""

from __future__ import annotations

import re

# Degrees after a name ("Hagop Kantarjian, M.D., Ph.D.").
DEGREE = re.compile(
    r"\b(?:M\.?D|Ph\.?D|M\.?B|B\.?S|M\.?S|M\.?P\.?H|R\.?N|D\.?O|Pharm\.?D|MBBS|MBChB|FRCP\w*|D\.?Phil|M\.?Sc|"
    r"B\.?Sc|B\.?A|M\.?A|Dr\.?P\.?H|M\.?Phil)\.?(?=[\s,;]|$)"
)
_NAME_WORD = re.compile(r"^(?:[A-Z][\w'’.-]*|[A-Z]\.|van|von|de|der|da|del|di|la|le|bin|al-\w+)$")


# Marks after a name in an author list: affiliation numbers ("Wu2", "Ren1,2") and footnote symbols
# ("Hayes†", "Zhang*", the private-use glyphs some PDFs map symbols to). Digits count only when attached
# to the name, so "Smith 2019, Jones 2020" stays a list of citations.
_NAME_MARK = re.compile(r"(?<=[^\W\d])\d{1,2}[*†‡§¶#\uf000-\uf8ff]*$|\s*[*†‡§¶#\uf000-\uf8ff]+$")


def name_parts(s: str) -> list[str]:
    """The comma-, semicolon- or "and"-separated parts of a line, marks removed ("2" of "Ren1,2" dropped)."""
    parts = [_NAME_MARK.sub("", p.strip()).strip() for p in re.split(r"[,;]|\band\b", s)]
    return [p for p in parts if p and not re.fullmatch(r"[\d\W]+", p)]


def _is_name(p: str) -> bool:
    return 1 <= len(p.split()) <= 4 and all(_NAME_WORD.match(w) for w in p.split())


def is_author_line(s: str) -> bool:
    """A list of personal names: degrees after the names, or several comma-separated capitalised names."""
    if len(DEGREE.findall(s)) >= 2:
        return True
    parts = name_parts(s)
    if len(parts) < 3 or any(re.search(r"\d", p) for p in parts):
        return False
    return sum(map(_is_name, parts)) >= 0.8 * len(parts)


_GROUP_AUTHOR = re.compile(r"^(?:for |on behalf of )?(?:the )?[\w'’ -]{0,60}\b(?:investigators|(?:study |research |"
                           r"collaborative )?group|consortium|collaborators|trialists|committee|network)$", re.I)


def is_name_list(s: str) -> bool:
    """Nothing but personal names, most of them with first and last name (an author list as a sentence of
    the text, degrees and marks allowed): never evidence. Lists of single capitalised words (genes,
    drugs) do not count."""
    # A group named after the people ("…; for the X Investigators", "and the Y Study Group") is part of
    # the byline, not a sentence.
    parts = [p for p in name_parts(DEGREE.sub("", s)) if not _GROUP_AUTHOR.match(p)]
    return (len(parts) >= 3 and all(map(_is_name, parts))
            and sum(len(p.split()) >= 2 for p in parts) * 2 >= len(parts))


_INSTITUTION = re.compile(r"\b(?:universit\w*|institut\w*|department|laborator\w*|hospital|school|college|"
                          r"cent(?:er|re)|faculty|academy|clinic|foundation)\b", re.I)
_AFFILIATION_WORD = re.compile(r"^(?:[A-Z0-9][\w'’.&/-]*|of|and|for|the|de|la|du|di|des|der|und|at|in|&)$")


def is_affiliation(s: str) -> bool:
    """An address line of an author's affiliation ("3. Key Laboratory of Critical Care Medicine,
    Department of …, Southeast University, Nanjing, China"): institutions and places, capitalised words
    and connectives only, no verb."""
    body = re.sub(r"^\W*\d{0,2}\W*", "", s).rstrip(" .;")
    words = body.replace(",", " ").split()
    return (body.count(",") >= 2 and bool(_INSTITUTION.search(body))
            and all(_AFFILIATION_WORD.match(w.strip("()")) for w in words if w.strip("()")))


# A news byline: "By Priya Natarajan, Health Correspondent · November 11, 2023", "By Sam Reporter and Jo
# Writer". Two capitalised words after "By" (not "By contrast", "By 2020", "By Week 12").
_NEWS_BYLINE = re.compile(r"^\W*(?i:by)\s+[A-Z][\w'’.-]*\s+(?:(?:van|von|de|da|del|di|la|le)\s+)*[A-Z][\w'’-]*")


def is_news_byline(s: str) -> bool:
    """A reporter's byline: "By" and a name, maybe a role and a date, and no sentence after it."""
    return bool(_NEWS_BYLINE.match(s)) and len(s.split()) <= 16 and not s.rstrip().endswith(("!", "?")) and (
        not re.search(r"\b(?:is|are|was|were|has|have|had|said|says|showed|found)\b", s))


def is_byline(s: str) -> bool:
    """An author list, an affiliation or a reporter's byline: front matter, never evidence for a question."""
    return is_name_list(s) or is_affiliation(s) or is_news_byline(s)

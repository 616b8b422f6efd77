"""Dates as documents write them: ISO ("2017-03-02", "2024-03-14T08:00:00Z"), "March 2, 2017", "2 March
2017", "March 2017", and a news or press-release dateline; each read as an ISO date of the precision given."""

from __future__ import annotations

import re

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = r"(?P<mon>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?)"
DATES = (
    # ISO, also with a time after it ("2024-03-14T08:00:00Z", as HTML meta tags write it)
    re.compile(r"\b(?P<y>(?:19|20)\d{2})-(?P<m>0[1-9]|1[0-2])(?:-(?P<d>[0-3]\d)(?!\d))?(?![\d-])"),
    re.compile(_MONTH + r"\s+(?P<d>[0-3]?\d),?\s+(?P<y>(?:19|20)\d{2})\b"),
    re.compile(r"\b(?P<d>[0-3]?\d)\s+" + _MONTH + r",?\s+(?P<y>(?:19|20)\d{2})\b"),
    re.compile(_MONTH + r",?\s+(?P<y>(?:19|20)\d{2})\b"),
)


def parse_date(s: str) -> str:
    """ISO date ("2017-03-02", "2017-03" or "2017") from the first date written in ``s``."""
    for rx in DATES:
        m = rx.search(s)
        if not m:
            continue
        g = m.groupdict()
        month = g.get("m") or (f"{_MONTHS.index(g['mon'][:3].lower()) + 1:02d}" if g.get("mon") else "")
        day = f"{int(g['d']):02d}" if g.get("d") else ""
        return "-".join(p for p in (g["y"], month, day) if p)
    m = re.search(r"\b(?:19|20)\d{2}\b", s)
    return m.group(0) if m else ""


# A news or press-release dateline opening the first paragraph: "CAMBRIDGE, Mass., March 3, 2025 /PRNewswire/ --".
_DATELINE = re.compile(r"^[A-Z][\w .,'’-]{1,60}?,\s+([A-Z][a-z]{2,8}\.? \d{1,2}, \d{4}|\d{1,2} [A-Z][a-z]{2,8} \d{4})"
                       r"\s*(?:/[^/\n]{1,40}/)?\s*(?:--|—|–)")


def dateline(s: str) -> str:
    m = _DATELINE.match(s)
    return parse_date(m.group(1)) if m and any(rx.search(m.group(1)) for rx in DATES) else ""

"""Plain-text tables whose columns are lined up with spaces.

A trial report saved as text, a registry export or an e-mailed summary often lays a table out in a fixed
width font with no tabs or bars:

    Outcome                      Early mobilisation (N=603)   Usual care (N=601)
    Delirium, no. (%)            85 (14.1)                    119 (19.8)

Read as prose, such lines run into one "sentence" with the paragraph after them. Here a cell is text with
single spaces inside and two or more spaces around it; a run of lines is a table when the cells after
each line's label fall into the same columns on every line. The columns come from where those cells sit
(their character spans overlap from line to line, whether the column is left- or right-aligned), so a row
with an empty cell keeps its other values under the right headings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CELL = re.compile(r"\S+(?: \S+)*")  # text with single spaces inside: two or more spaces end a cell
_MAX_WIDTH = 200  # wider lines are prose, not a fixed-width table
MIN_LINES = 3  # a heading line and two rows
_MAX_WORDS = 6  # a value cell longer than this is prose

Span = tuple[int, int]


def cells(text: str) -> list[Span]:
    """(start, end) of each cell of a line, label first."""
    return [(m.start(), m.end()) for m in _CELL.finditer(text)]


def _candidate(text: str) -> bool:
    """A line that could be a table row: no tab or bar (those tables are read elsewhere), at least a
    label and one more cell, not a line of prose."""
    if "\t" in text or "|" in text or not text.strip() or len(text) > _MAX_WIDTH:
        return False
    return len(cells(text)) >= 2


def _group(text: str) -> bool:
    """A label alone on its line inside a table ("Stage", "Race or ethnic group"): its rows follow."""
    found = cells(text)
    return len(found) == 1 and len(text.split()) <= _MAX_WORDS and not text.rstrip().endswith(".") and (
        "\t" not in text and "|" not in text)


def _merge(spans: Sequence[Span]) -> list[Span]:
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a < out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def columns(lines: Sequence[str]) -> tuple[Span, ...]:
    """The value columns of a run of lines (character spans), or () when the cells do not line up.

    The rows below the first decide (a heading may be wider than its values); every cell after a label
    must fall in exactly one column, every column must hold a cell of at least two rows, and the figures
    must be there: at least half of the rows have a digit among their values."""
    if len(lines) < MIN_LINES:
        return ()
    rows = [cells(t)[1:] for t in lines[1:]]
    valued = [(t, r) for t, r in zip(lines[1:], rows, strict=True) if r]  # group labels hold no values
    if len(valued) < MIN_LINES - 1:
        return ()
    if any(len(t[a:b].split()) > _MAX_WORDS for t, r in valued for a, b in r):
        return ()  # a value of many words is prose typed with two spaces after a full stop
    cols = _merge([c for r in rows for c in r])
    if max(cells(t)[0][1] for t, _ in valued) > cols[0][0]:
        return ()  # a label reaching into the first column: the cells do not line up
    if any(sum(1 for c in cols if a < c[1] and c[0] < b) != 1 for r in rows for a, b in r):
        return ()
    if any(sum(1 for r in rows if any(a < c[1] and c[0] < b for a, b in r)) < 2 for c in cols):
        return ()
    head = cells(lines[0])[1:]
    if any(not any(a < c[1] + 2 and c[0] - 2 < b for c in cols) for a, b in head):
        return ()  # a heading cell over no column: the first line is prose, not this table's header
    with_figures = sum(1 for t, r in valued if any(ch.isdigit() for a, b in r for ch in t[a:b]))
    if 2 * with_figures < len(valued):
        return ()
    return tuple(cols)


def blocks(lines: Sequence[str], skip: set[int]) -> list[tuple[int, int, tuple[Span, ...]]]:
    """Runs of consecutive lines ([i, j)) that form a space-aligned table, with their columns."""
    out = []
    i = 0
    while i < len(lines):
        if i in skip or not _candidate(lines[i]):
            i += 1
            continue
        j = i
        while j < len(lines) and j not in skip and (
            _candidate(lines[j]) or _group(lines[j]) and j + 1 < len(lines) and _candidate(lines[j + 1])
        ):
            j += 1
        cols = columns(lines[i:j])
        if cols:
            out.append((i, j, cols))
        i = j
    return out


def split(text: str, cols: Sequence[Span]) -> list[Span]:
    """A line's cells in column order: the label, then one span per column ((p, p) when empty)."""
    found = cells(text)
    if not found:
        return [(0, 0)] + [(c[0], c[0]) for c in cols]
    first = cols[0][0] if cols else len(text)
    label = [s for s in found if s[1] <= first] or [(0, 0)]
    out: list[Span] = [(label[0][0], label[-1][1])]
    for c in cols:
        inside = [s for s in found if s[0] < c[1] + 2 and c[0] - 2 < s[1] and s[1] > first]
        out.append((inside[0][0], inside[-1][1]) if inside else (c[0], c[0]))
    return out

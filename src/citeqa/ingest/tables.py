"""Tab-separated tables to citable rows.

Each row is embedded as a linearised sentence that carries the caption, its sub-group and the column
headers ("Table 3. Adverse Events — Neutropenia — Blinatumomab Group (N=267): 101 (37.8) — ..."),
while its citation span stays the row in the original file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from citeqa.ingest import aligned
from citeqa.ingest.clean import clean_inline
from citeqa.ingest.mapped import Mapped
from citeqa.ingest.structure import PIPE_ROW, Line, Table

SEP = " — "


@dataclass(frozen=True)
class Row:
    start: int
    end: int
    text: str  # linearised
    label: str
    group: str
    cells: tuple[tuple[str, str], ...]
    kind: str  # "header", "group", "data"
    ctx_start: int = -1  # passage span: the row with its neighbours, so a reader sees it in context
    ctx_end: int = -1


def _cells(ln: Line, columns: tuple[tuple[int, int], ...] = ()) -> list[tuple[int, int, str]]:
    """Cells of a line as (start, end, cleaned text): split at tabs, or at the bars of a markdown row, or
    under the columns of a table laid out with spaces."""
    if columns and "\t" not in ln.text:
        return [_cell(ln.start + a, ln.text[a:b]) for a, b in aligned.split(ln.text, columns)]
    out = []
    text, pos = ln.text, 0
    sep = "\t"
    if PIPE_ROW.match(text):
        sep = "|"
        pos = text.index("|") + 1
        text = text[pos:text.rindex("|")]
    for raw in text.split(sep):
        out.append(_cell(ln.start + pos, raw))
        pos += len(raw) + 1
    return out


def _cell(a: int, raw: str) -> tuple[int, int, str]:
    cleaned = clean_inline(Mapped(raw, tuple(range(a, a + len(raw))), tuple(range(a + 1, a + len(raw) + 1))))
    return a, a + len(raw), " ".join(cleaned.text.split())


def _span(ln: Line) -> tuple[int, int]:
    a = ln.start + (len(ln.text) - len(ln.text.lstrip()))
    b = ln.start + len(ln.text.rstrip())
    return a, b


def _is_group(values: list[str], label: str) -> bool:
    return bool(label) and not any(values)


def table_rows(table: Table) -> list[Row]:
    if not table.rows:
        return []
    if table.header_lines:
        header = [_cells(ln, table.columns)[0][2] for ln in table.header_lines]
        body = table.rows
        a, b = _span(table.header_lines[0])[0], _span(table.header_lines[-1])[1]
    else:
        header = [c[2] for c in _cells(table.rows[0], table.columns)]
        body = table.rows[1:]
        a, b = _span(table.rows[0])
    # Each body row's cells, read once (cleaning every cell is the costly part).
    cells_of = {ln.start: _cells(ln, table.columns) for ln in body}
    # Columns some row fills: the last non-empty cell of each row (rows end in empty cells too).
    width = max((max((k + 1 for k, c in enumerate(cells_of[ln.start]) if c[2]), default=0) for ln in body),
                default=len(header))
    while len(header) > max(1, width) and not header[-1]:
        header.pop()  # trailing empty cells no row fills are layout (a spanning heading's are columns)
    # Merge spanning header cells: blank cells continue the header on their left.
    filled: list[str] = []
    for h in header:
        filled.append(h or (filled[-1] if filled else ""))
    unit_note = ""
    while body:
        sub = [c[2] for c in cells_of[body[0].start]]
        if sub and not sub[0] and any(sub[1:]):
            nonempty = [s for s in sub[1:] if s]
            if len(nonempty) == 1:
                unit_note = nonempty[0]  # one unit line spanning all data columns
            else:
                for j, s in enumerate(sub):
                    if s and j < len(filled):
                        filled[j] = f"{filled[j]} {s}".strip()
            body = body[1:]
        else:
            break
    caption = table.caption + (f" ({unit_note})" if unit_note else "")
    first = filled[0] if filled else ""
    rows: list[Row] = []
    cols = "; ".join(h for h in filled[1:] if h)
    rows.append(Row(a, b, f"{caption}{SEP}columns: {first}; {cols}", first, "", (), "header"))
    group = ""
    group_idx = -1
    for ln in body:
        if not ln.stripped:
            continue
        cells = cells_of[ln.start]
        label = cells[0][2]
        values = [c[2] for c in cells[1:]]
        a, b = _span(ln)
        if _is_group(values, label):
            group = label
            group_idx = len(rows)
            rows.append(Row(a, b, f"{caption}{SEP}{first}: {label}", label, "", (), "group"))
            continue
        if "—" in label or "–" in label.split(" ")[0]:
            group = ""  # a variable with its own unit ("Male sex — no. (%)") closes the previous group
        pairs = tuple(
            (filled[j + 1] if j + 1 < len(filled) else f"column {j + 2}", v)
            for j, v in enumerate(values)
            if v
        )
        parts = [caption]
        if group:
            parts.append(group)
        parts.append(label or "(unlabelled)")
        parts.extend(f"{h}: {v}" for h, v in pairs)
        rows.append(Row(a, b, SEP.join(parts), label, group, pairs, "data"))
        if group and group_idx >= 0:
            g = rows[group_idx]
            rows[group_idx] = Row(g.start, g.end, _add_child(g.text, label), g.label, "", (), "group")
    # Context window: previous and next row (the header row stands alone).
    out = [rows[0]]
    for k in range(1, len(rows)):
        prev = rows[k - 1] if k > 1 else rows[k]
        nxt = rows[k + 1] if k + 1 < len(rows) else rows[k]
        out.append(replace(rows[k], ctx_start=prev.start, ctx_end=nxt.end))
    return out


def _add_child(text: str, child: str) -> str:
    head, _, kids = text.partition(" | rows: ")
    kids_list = [k for k in kids.split("; ") if k] + [child]
    return f"{head} | rows: {'; '.join(kids_list)}"

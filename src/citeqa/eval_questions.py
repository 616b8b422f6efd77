"""The evaluation question file: JSONL parsing into :class:`EvalItem` with line-numbered errors.

See :mod:`citeqa.evaluate` for the format. Unknown fields are ignored; ``evidence`` entries may carry
``start``/``end`` offsets (used when ``text[start:end] == quote``), and yes/no items a ``label``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------- question file


@dataclass(frozen=True)
class Evidence:
    doc: str
    quote: str
    start: int | None = None  # offsets as the question file gives them (checked against the text)
    end: int | None = None


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answer: str = ""
    must_contain: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    type: str = "untyped"
    history: tuple[tuple[str, str], ...] = ()
    line: int = 0
    label: str = ""  # yes_no items: the expected verdict ("yes", "no", "maybe")

    @property
    def unanswerable(self) -> bool:
        return self.type == "unanswerable" or (not self.must_contain and not self.evidence)


def _err(line: int, fld: str, msg: str) -> dict[str, Any]:
    return {"line": line, "field": fld, "error": msg}


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _parse_line(raw: str, line: int) -> tuple[EvalItem | None, list[dict[str, Any]]]:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        return None, [_err(line, "(json)", f"invalid JSON: {e.msg} at column {e.colno}")]
    if not isinstance(obj, dict):
        return None, [_err(line, "(json)", f"expected an object, got {type(obj).__name__}")]
    errs: list[dict[str, Any]] = []
    q = obj.get("question")
    if q is None:
        errs.append(_err(line, "question", "missing"))
    elif not isinstance(q, str) or not q.strip():
        errs.append(_err(line, "question", "must be a non-empty string"))
    item_id = obj.get("id", f"line{line}")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool):
        errs.append(_err(line, "id", "must be a string"))
    answer = obj.get("answer", "")
    if not isinstance(answer, str):
        errs.append(_err(line, "answer", "must be a string"))
    must = obj.get("must_contain", [])
    if not _is_str_list(must):
        errs.append(_err(line, "must_contain", "must be a list of strings"))
    label = obj.get("label", "")
    if not isinstance(label, str):
        errs.append(_err(line, "label", "must be a string"))
    typ = obj.get("type", "untyped")
    if not isinstance(typ, str) or not typ:
        errs.append(_err(line, "type", "must be a non-empty string"))
    evidence: list[Evidence] = []
    ev = obj.get("evidence", [])
    if not isinstance(ev, list):
        errs.append(_err(line, "evidence", "must be a list of {doc, quote}"))
    else:
        for i, entry in enumerate(ev):
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("doc"), str)
                or not isinstance(entry.get("quote"), str)
                or not entry["quote"]
            ):
                errs.append(_err(line, f"evidence[{i}]", "must be {doc: str, quote: non-empty str}"))
            else:
                start, end = entry.get("start"), entry.get("end")
                spans = isinstance(start, int) and isinstance(end, int) and 0 <= start < end
                evidence.append(Evidence(entry["doc"], entry["quote"], *((start, end) if spans else (None, None))))
    history: list[tuple[str, str]] = []
    hist = obj.get("history", [])
    if hist is None:
        hist = []
    if not isinstance(hist, list):
        errs.append(_err(line, "history", "must be a list of [user, assistant] pairs"))
    else:
        for i, turn in enumerate(hist):
            if not (_is_str_list(turn) and len(turn) == 2):
                errs.append(_err(line, f"history[{i}]", "must be a [user, assistant] pair of strings"))
            else:
                history.append((turn[0], turn[1]))
    if errs or not isinstance(q, str):
        return None, errs
    return (
        EvalItem(
            id=str(item_id),
            question=q,
            answer=answer,
            must_contain=tuple(must),
            evidence=tuple(evidence),
            type=typ,
            history=tuple(history),
            line=line,
            label=label.strip().lower(),
        ),
        [],
    )


def load_questions(path: str | Path) -> tuple[list[EvalItem], list[dict[str, Any]]]:
    """Parse a question file; returns (items, errors). Errors name the 1-based line and field."""
    items: list[EvalItem] = []
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            item, errs = _parse_line(raw, n)
            errors.extend(errs)
            if item is None:
                continue
            if item.id in seen:
                errors.append(_err(n, "id", f"duplicate id {item.id!r} (first on line {seen[item.id]})"))
                continue
            seen[item.id] = n
            items.append(item)
    return items, errors



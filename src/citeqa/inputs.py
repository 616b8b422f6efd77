"""Checking what users send (questions, history, top_k, JSON lines) before it reaches the assistant.

Every problem is a ``QuestionError`` whose message names the offending part ("--history", "line 3",
"history turn 2") and says what to send instead; nothing here lets a ``TypeError`` or
``UnicodeError`` escape as a traceback.
"""

from __future__ import annotations

import json
import re
from typing import Any

from citeqa.errors import QuestionError

MAX_TURN_QUESTION_CHARS = 2000  # a history turn's question is checked like a question
MAX_TURN_ANSWER_CHARS = 20_000
MAX_HISTORY_TURNS = 50
TOP_K_MAX = 100
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (from JSON ``"\\ud800"`` escapes, or undecodable bytes in command
    line arguments) replaced by U+FFFD, so it can be encoded, tokenised and printed."""
    return _SURROGATE.sub("\ufffd", text)


def question_text(value: Any, where: str = "the question") -> str:
    if not isinstance(value, str):
        raise QuestionError(f"{where} must be text, not {_kind(value)}.")
    return clean_text(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "true/false", type(None): "null", int: "a number",
            float: "a number"}.get(
        type(value), f"a {type(value).__name__}"
    )


def parse_history(raw: Any, where: str = "history") -> list[tuple[str, str]]:
    """A conversation as ``[(question, answer), ...]`` from a list of two-string pairs."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list | tuple):
        raise QuestionError(f"{where} must be a list of [question, answer] pairs, not {_kind(raw)}.")
    if len(raw) > MAX_HISTORY_TURNS:
        raise QuestionError(f"{where} has {len(raw)} turns; send at most the last {MAX_HISTORY_TURNS}.")
    out: list[tuple[str, str]] = []
    for n, pair in enumerate(raw, 1):
        turn = f"{where}: turn {n}"
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise QuestionError(f"{turn} must be a [question, answer] pair of two strings.")
        q, a = clean_text(pair[0]), clean_text(pair[1])
        size = len(" ".join(q.split()))
        if size > MAX_TURN_QUESTION_CHARS:
            raise QuestionError(
                f"{turn}: its question is {size:,} characters long; the limit is {MAX_TURN_QUESTION_CHARS:,}. "
                "Send the conversation's questions and answers only, not documents."
            )
        if len(a) > MAX_TURN_ANSWER_CHARS:
            raise QuestionError(
                f"{turn}: its answer is {len(a):,} characters long; the limit is {MAX_TURN_ANSWER_CHARS:,}."
            )
        out.append((q, a))
    return out


def history_from_json(text: str, where: str = "--history") -> list[tuple[str, str]]:
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise QuestionError(
            f"{where} is not valid JSON ({e}); give a list of [question, answer] pairs, "
            'e.g. \'[["What was the median OS?", "7.7 months [1]"]]\'.'
        ) from e
    return parse_history(raw, where)


def parse_top_k(value: Any, where: str = "top_k") -> int | None:
    """A passage count from 1 to ``TOP_K_MAX`` (None/empty: the default)."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        value = "true/false"
    try:
        k = int(value)
        if isinstance(value, float) and k != value:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise QuestionError(f"{where} must be a whole number from 1 to {TOP_K_MAX}; got {str(value)[:40]!r}.") \
            from None
    if not 1 <= k <= TOP_K_MAX:
        raise QuestionError(f"{where} must be from 1 to {TOP_K_MAX}; got {k}.")
    return k


def decode_line(raw: bytes, lineno: int) -> str:
    """One line of a JSONL file as text; invalid UTF-8 is an error naming the line and the byte."""
    try:
        return raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as e:
        raise QuestionError(
            f"line {lineno}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
            "save the file as UTF-8"
        ) from None

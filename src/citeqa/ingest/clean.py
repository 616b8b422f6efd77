"""Inline cleaning: markup and LaTeX rendered to readable text, reference numbers dropped.

Every rule works on a ``Mapped`` string so offsets into the original file survive.
"""

from __future__ import annotations

import html
import re

from citeqa.ingest.mapped import Mapped

LATEX_SYMBOLS = {
    "geq": "≥", "ge": "≥", "leq": "≤", "le": "≤", "pm": "±", "mu": "µ", "times": "×", "alpha": "α",
    "beta": "β", "gamma": "γ", "delta": "δ", "kappa": "κ", "lambda": "λ", "sigma": "σ", "chi": "χ",
    "S": "§", "dagger": "†", "ddagger": "‡", "approx": "≈", "sim": "~", "neq": "≠", "cdot": "·",
    "degree": "°", "circ": "°", "infty": "∞", "rightarrow": "→", "to": "→", "%": "%", "leq ": "≤",
}

_INLINE_MATH = re.compile(r"\$([^$\n]{1,80})\$")
# A unit split by conversion to LaTeX: "9 $\mu$ g per day" and "$\mu \mathrm{g}$" are "9 µg per day".
_UNIT_AFTER_MICRO = r"(?=(?:g|l|L|m|M|mol|s|V|A|W|Gy|Sv|Ci|U|IU|Pa|F|Hz|J|N)\b)"
_MICRO_THEN_UNIT = re.compile(r"\$\s*\\mu\s*\$ ?" + _UNIT_AFTER_MICRO)
# Font commands keep only their argument: "\mathrm{g}" is "g".
_FONT_CMD = re.compile(r"\\(?:mathrm|mathbf|mathit|mathsf|mathtt|textrm|textit|textbf|text|operatorname|rm|mbox)\b\s*")
_LATEX_CMD = re.compile(r"\\([A-Za-z]+|%)")
_SUP = re.compile(r"\s?<sup>\s*([^<]{0,40}?)\s*</sup>", re.I)
_SUB = re.compile(r"<sub>\s*([^<]{0,40}?)\s*</sub>", re.I)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]{0,200})?/?>")
_ENTITY = re.compile(r"&(?:#\d{1,6}|#x[0-9a-fA-F]{1,6}|[A-Za-z]{2,8});")
_BOLD = re.compile(r"(\*\*|__)(.+?)\1")
_ITALIC = re.compile(r"(?<![\w*\\])\*(?!\s)([^*\n]{1,200}?)(?<!\s)\*(?![\w*])")
_ESCAPED = re.compile(r"\\([*_#\[\]()])")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
# Reference numbers glued to a sentence end (".1-4 Still", "ALL.35 The"), never decimals.
_GLUED_REFS = re.compile(r"(?<=[A-Za-z%)\]])\.(\d{1,3}(?:[-–,]\d{1,3}){0,6})(?=\s+[A-Z(]|\s*$)")
# Broken words from PDF line wrapping ("hemato- logic").
_SOFT_HYPHEN = re.compile(r"(?<=[a-z])- (?=[a-z]{2,})")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_REF_LIST = re.compile(r"^\d{1,3}(?:[-–,]\d{1,3})*$")


def _render_math(m: re.Match[str]) -> str:
    body = _FONT_CMD.sub("", m.group(1))
    body = _LATEX_CMD.sub(lambda c: LATEX_SYMBOLS.get(c.group(1), c.group(1)), body)
    body = body.replace("{", "").replace("}", "").replace("^", "^").replace("~", " ")
    return re.sub(r"µ " + _UNIT_AFTER_MICRO, "µ", re.sub(r"\s+", " ", body).strip())


def _render_sup(m: re.Match[str]) -> str:
    body = m.group(1).strip()
    if _REF_LIST.match(body):
        return ""  # superscript citation numbers: noise for retrieval and reading
    return "^" + body  # exponents such as 10<sup>-9</sup>


def clean_inline(m: Mapped) -> Mapped:
    m = m.sub(_MICRO_THEN_UNIT, "µ")
    m = m.sub(_INLINE_MATH, _render_math)
    m = m.sub(_SUP, _render_sup)
    m = m.sub(_SUB, lambda x: x.group(1))
    m = m.sub(_TAG, "")
    m = m.sub(_ENTITY, lambda x: html.unescape(x.group(0)))
    m = m.sub(_BOLD, lambda x: x.group(2))
    m = m.sub(_ITALIC, lambda x: x.group(1))
    m = m.sub(_ESCAPED, lambda x: x.group(1))
    m = m.sub(_LATEX_CMD, lambda c: LATEX_SYMBOLS.get(c.group(1), c.group(0)))
    m = m.sub(_GLUED_REFS, ".")
    m = m.sub(_SOFT_HYPHEN, "")
    m = m.sub(_SPACES, " ")
    return m


def strip_heading_marks(m: Mapped) -> Mapped:
    return m.sub(_MD_HEADING, "")

"""Text that remembers where each character came from.

Cleaning (dropping markup, rendering LaTeX, removing reference numbers) changes the text a reader sees,
but a citation must point at the original file. Every character of a ``Mapped`` string carries the
original ``[start, end)`` it was derived from, so a span of clean text maps back to an exact span of the
file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Mapped:
    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def of(cls, text: str, offset: int = 0) -> Mapped:
        return cls(text, tuple(range(offset, offset + len(text))), tuple(range(offset + 1, offset + len(text) + 1)))

    @classmethod
    def join(cls, parts: list[Mapped], sep: str = " ") -> Mapped:
        """Concatenate; separators map to the gap between neighbours."""
        text: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for i, p in enumerate(parts):
            if i and sep and p.text and text:
                gap_at = ends[-1]
                text.append(sep)
                starts.extend([gap_at] * len(sep))
                ends.extend([gap_at] * len(sep))
            text.append(p.text)
            starts.extend(p.starts)
            ends.extend(p.ends)
        return cls("".join(text), tuple(starts), tuple(ends))

    def __len__(self) -> int:
        return len(self.text)

    def slice(self, a: int, b: int) -> Mapped:
        return Mapped(self.text[a:b], self.starts[a:b], self.ends[a:b])

    def span(self, a: int, b: int) -> tuple[int, int]:
        """Original ``[start, end)`` of clean characters ``[a, b)``."""
        if b <= a:
            raise ValueError("empty span")
        return self.starts[a], self.ends[b - 1]

    def sub(self, pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str]) -> Mapped:
        """``re.sub`` that keeps the map: replacement characters map to the whole match."""
        out: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        pos = 0
        for m in pattern.finditer(self.text):
            a, b = m.span()
            out.append(self.text[pos:a])
            starts.extend(self.starts[pos:a])
            ends.extend(self.ends[pos:a])
            r = repl(m) if callable(repl) else m.expand(repl)
            if r:
                if a == b:  # pure insertion: anchor at the neighbouring character
                    s0 = self.starts[a] if a < len(self.text) else (self.ends[a - 1] if a else 0)
                    ms, me = s0, s0
                else:
                    ms, me = self.starts[a], self.ends[b - 1]
                # Keep identity mapping where the replacement preserves the matched text's edges.
                out.append(r)
                starts.extend([ms] * len(r))
                ends.extend([me] * len(r))
            pos = b
        out.append(self.text[pos:])
        starts.extend(self.starts[pos:])
        ends.extend(self.ends[pos:])
        return Mapped("".join(out), tuple(starts), tuple(ends))

    def strip_span(self, a: int, b: int) -> tuple[int, int]:
        """Shrink clean ``[a, b)`` to exclude surrounding whitespace."""
        while a < b and self.text[a].isspace():
            a += 1
        while b > a and self.text[b - 1].isspace():
            b -= 1
        return a, b

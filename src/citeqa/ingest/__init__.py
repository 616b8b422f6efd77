"""Ingestion: load, clean, find sections and tables, split into sentences with exact offsets."""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from citeqa.config import Settings
from citeqa.errors import IngestError
from citeqa.ingest.loaders import SUPPORTED, load_document
from citeqa.ingest.metadata import merge_meta
from citeqa.ingest.pdf_meta import pdf_meta
from citeqa.ingest.structure import parse_structure
from citeqa.ingest.units import Sizer, build_units
from citeqa.types import DocMeta, ParsedDoc

if TYPE_CHECKING:
    from citeqa.ingest.pdf import PdfText

__all__ = ["SUPPORTED", "expand_paths", "load_catalog", "parse_document", "parse_text", "sizer_for"]


def load_catalog(paths: Iterable[Path], catalog_name: str) -> dict[str, DocMeta]:
    """Catalog entries (title, venue, date, kind, DOI) from ``catalog.toml`` files beside the documents."""
    out: dict[str, DocMeta] = {}
    for d in sorted({p.parent if p.is_file() else p for p in paths}):
        f = d / catalog_name
        if not f.is_file():
            continue
        try:
            data = tomllib.loads(f.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise IngestError(str(f), f"catalog is not valid TOML ({e})") from e
        for name, entry in data.items():
            if not isinstance(entry, dict):
                raise IngestError(str(f), f"catalog entry '{name}' must be a table")
            fields = {k: str(v) for k, v in entry.items() if k in DocMeta.__dataclass_fields__ and k != "doc"}
            out[name] = DocMeta(doc=name, **{"title": name, **fields})
    return out


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files to index: directories are walked (non-recursively hidden files skipped, catalog excluded)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(
                f for f in sorted(p.iterdir())
                if f.is_file() and not f.name.startswith(".") and f.suffix.lower() != ".toml"
            )
        else:
            files.append(p)
    return files


def sizer_for(settings: Settings) -> Sizer:
    return Sizer(settings.tiktoken_encoding, settings.max_wordpieces)


def parse_text(
    name: str, text: str, raw: bytes, meta: DocMeta | None, settings: Settings,
    next_id: Callable[[], int] | None = None, pdf: PdfText | None = None,
) -> ParsedDoc:
    st = parse_structure(text, captions=pdf is not None)
    if pdf is not None:  # what the PDF says of itself, under whatever a catalog entry says
        meta = pdf_meta(name, pdf, meta)
    # The text's own title, authors, date, DOI, trial ids and study names; a catalog entry overrides
    # them field by field. Routing a question that names a study needs them without a catalog.
    meta = merge_meta(name, text, meta, _guess_title(text, name))
    counter = next_id or itertools.count().__next__
    units = build_units(
        name, text, st, sizer_for(settings), settings.chunk_tokens, settings.chunk_overlap_sentences, counter
    )
    if not units:
        raise IngestError(name, "no citable text found after cleaning")
    h = hashlib.sha256(raw)
    h.update(json.dumps(asdict(meta), sort_keys=True).encode())
    return ParsedDoc(
        meta=meta,
        text=text,
        content_hash=h.hexdigest(),
        units=tuple(units),
        sections=tuple(st.sections),
        tables=len(st.tables),
        furniture=tuple((ln.start, ln.end) for ln in st.furniture),
        pages=pdf.pages if pdf is not None else None,
        pdf=raw if pdf is not None else b"",
    )


def parse_document(path: Path, catalog: dict[str, DocMeta], settings: Settings,
                   next_id: Callable[[], int] | None = None) -> ParsedDoc:
    loaded = load_document(path)
    return parse_text(path.name, loaded.text, loaded.raw, catalog.get(path.name), settings, next_id, loaded.pdf)


def _guess_title(text: str, name: str) -> str:
    for line in text.splitlines():
        s = line.strip().lstrip("#").strip()
        if 3 <= len(s) <= 150 and len(s.split()) >= 2:
            return s
    return Path(name).stem

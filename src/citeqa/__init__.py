"""citeqa: offline literature question answering with exact, highlighted citations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from citeqa.config import PROJECT_ROOT, Settings
from citeqa.errors import CiteqaError
from citeqa.types import Answer, Citation

if TYPE_CHECKING:
    from citeqa.assistant import Assistant
    from citeqa.index import Index, IndexReport
    from citeqa.pages import render_page

__all__ = ["PROJECT_ROOT", "Answer", "Assistant", "Citation", "CiteqaError", "Index", "IndexReport", "Settings",
           "render_page"]


def __getattr__(name: str) -> Any:
    # Heavy modules (torch, faiss) load on first use so `citeqa --help` stays instant.
    if name in {"Index", "IndexReport"}:
        from citeqa import index

        return getattr(index, name)
    if name == "render_page":  # a PDF page rendered with a citation's boxes highlighted
        from citeqa.pages import render_page

        return render_page
    if name == "Assistant":
        from citeqa.assistant import Assistant

        return Assistant
    raise AttributeError(name)

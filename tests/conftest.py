"""Shared test fixtures, by area: fakes, the real seed index, evaluation, LLM server."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

# Nothing in the test suite may reach the network (the packaged model is on disk).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = PROJECT_ROOT / "seeds"
SEED_FILES = sorted(p for p in SEEDS_DIR.iterdir() if p.suffix == ".txt")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Stop a server started by a test: terminate, and kill it if it has not exited within ``timeout`` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def read_loader_text(path: Path) -> str:
    """A text file decoded the way the loader decodes it (UTF-8, no newline translation)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        return f.read()


# --- fakes (isolate unit tests from the real model; never used by end-to-end tests) --------------------


class HashEmbedder:
    """Deterministic stand-in for MiniLM: a signed bag of hashed tokens, L2-normalised.

    Same text -> same vector in every process (blake2b, not Python's salted ``hash``). Texts sharing
    words get similar vectors, so dense search still behaves sensibly. Records every batch it encodes.
    """

    name = "hash-embedder"
    version = "1"
    dim = 384

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    @property
    def encoded(self) -> list[str]:
        return [t for call in self.calls for t in call]

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        texts = list(texts)
        self.calls.append(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[i]))
            if norm:
                out[i] /= norm
            else:
                out[i, 0] = 1.0
        if progress:
            for a in range(0, len(texts), batch_size):
                progress(min(batch_size, len(texts) - a))
        return out


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


class ScriptedChatModel(BaseChatModel):
    """A LangChain chat model whose reply is ``script(prompt_text)``; records prompts, streams in chunks.

    ``fail_after_chunks`` makes the stream break like a dropped connection after that many chunks.
    """

    script: Any
    fail_after_chunks: int | None = None
    prompts: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "citeqa-test-scripted"

    def _reply(self, messages: list[BaseMessage]) -> str:
        prompt = "\n".join(str(m.content) for m in messages)
        self.prompts.append(prompt)
        return str(self.script(prompt))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **_: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._reply(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                **_: Any) -> Iterator[ChatGenerationChunk]:
        text = self._reply(messages)
        for k, i in enumerate(range(0, len(text), 7)):
            if self.fail_after_chunks is not None and k >= self.fail_after_chunks:
                raise ConnectionError("scripted failure: connection reset")
            yield ChatGenerationChunk(message=AIMessageChunk(content=text[i : i + 7]))


@pytest.fixture
def scripted_llm(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ScriptedChatModel]:
    """``install(script, fail_after_chunks=None)``: LLM answer modes get a ScriptedChatModel."""
    import citeqa.answer.llm as llm

    def install(script: Any, fail_after_chunks: int | None = None) -> ScriptedChatModel:
        fn = script if callable(script) else (lambda _prompt: script)
        model = ScriptedChatModel(script=fn, fail_after_chunks=fail_after_chunks)
        monkeypatch.setattr(llm, "make_chat_model", lambda settings: model)
        return model

    return install


# --- the real seed index (built once per session with the packaged MiniLM model) -----------------------


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """``(index, settings)``: the real index of seeds/ in a temp dir (``Settings(index_dir=tmp)``)."""
    from citeqa import Index, Settings

    settings = Settings(index_dir=tmp_path_factory.mktemp("seed_index"), seeds_dir=SEEDS_DIR)
    index = Index.build([SEEDS_DIR], settings)
    report = index.last_report
    assert report is not None and not report.errors, report
    return index, settings


@pytest.fixture(scope="session")
def assistant(seed_index: tuple[Any, Any]) -> Any:
    """The real, extractive Assistant over the shared seed index."""
    from citeqa import Assistant

    index, settings = seed_index
    return Assistant(index, settings)


@pytest.fixture
def library(tmp_path: Path) -> Callable[[dict[str, str]], tuple[Any, Any]]:
    """``library({"name.txt": text, ...})``: ``(index, assistant)``, the real index of those documents written
    to a temp folder, and the real extractive Assistant over it."""
    from citeqa import Assistant, Index, Settings

    def build(files: dict[str, str]) -> tuple[Any, Any]:
        docs = tmp_path / "docs"
        docs.mkdir(exist_ok=True)
        for name, text in files.items():
            (docs / name).write_text(text, encoding="utf-8")
        settings = Settings(index_dir=tmp_path / "index", seeds_dir=docs)
        index = Index.build([docs], settings)
        return index, Assistant(index, settings)

    return build


def assert_quotes_exact(index: Any, answer: Any) -> None:
    """Every citation quotes the document's text at its span."""
    for c in answer.citations:
        assert c.quote == index.quote(c.doc, c.start, c.end)


# --- eval fixtures ---------------------------------------------------------------------------------
# A scripted fake answerer for tests/test_evaluate.py: the real Assistant is not needed to test scoring.

EVAL_DOCS = {
    "a.txt": (
        "Trial A\n\nResults\nThe median overall survival was 7.7 months with blinatumomab\n"
        "and 4.0 months with chemotherapy. Fatal adverse events occurred in 3% and 7%, respectively.\n"
        "Grade \u22653 neutropenia was seen in 37.8% of patients.\n"
    ),
    "b.txt": "News B\n\nThe drug was approved in 2017 after a phase 2 trial of 189 patients.\n",
}


class EvalFakeIndex:
    def __init__(self, docs: dict[str, str]) -> None:
        self.docs = docs

    def doc_text(self, doc: str) -> str:
        return self.docs[doc]


@dataclass
class EvalFakeSettings:
    refusal_threshold: float = 0.45


@dataclass
class EvalScript:
    """What the fake answers to one question. Spans are (doc, start, end) or (doc, quote)."""

    text: str
    refused: bool = False
    passages: list[tuple] = field(default_factory=list)
    citations: list[tuple] = field(default_factory=list)
    support: float = 0.8
    bad_quote: bool = False  # make citation quotes differ from the document text


class EvalFakeAssistant:
    def __init__(self, script: dict[str, EvalScript], docs: dict[str, str] | None = None) -> None:
        self.index = EvalFakeIndex(docs or EVAL_DOCS)
        self.settings = EvalFakeSettings()
        self.script = script
        self.asked: list[tuple[str, tuple]] = []

    def _span(self, spec: tuple) -> tuple[str, int, int]:
        if len(spec) == 3:
            return spec  # type: ignore[return-value]
        doc, quote = spec
        start = self.index.docs[doc].index(quote)
        return doc, start, start + len(quote)

    def ask(self, question: str, history: Any = ()) -> Any:
        from citeqa.types import Answer, Citation

        self.asked.append((question, tuple(history)))
        s = self.script.get(question) or EvalScript(
            "I could not find this in the sources.", refused=True, support=0.1
        )
        passages = []
        for doc, start, end in map(self._span, s.passages):
            q = self.index.docs[doc][start:end]
            passages.append({"doc": doc, "title": doc, "section": "", "start": start, "end": end, "quote": q,
                             "text": q, "kind": "chunk", "score": 0.5})
        cites = []
        for n, (doc, start, end) in enumerate(map(self._span, s.citations), start=1):
            q = self.index.docs[doc][start:end]
            cites.append(Citation(n=n, doc=doc, title=doc, section="", start=start, end=end,
                                  quote=q.upper() if s.bad_quote else q, text=q))
        return Answer(question=question, text=s.text, citations=cites, passages=passages, refused=s.refused,
                      support=s.support, timings_ms={"retrieve": 5.0, "answer": 2.0, "total": 7.5})


@pytest.fixture
def eval_docs() -> dict[str, str]:
    return dict(EVAL_DOCS)


@pytest.fixture
def fake_answerer() -> type[EvalFakeAssistant]:
    """Factory: fake_answerer({question: EvalScript(...)}) -> object with .ask() and .index.doc_text()."""
    return EvalFakeAssistant


@pytest.fixture
def eval_script() -> type[EvalScript]:
    return EvalScript


# --- LLM server fixtures (citeqa.answer.llm; tests/test_llm_server.py, test_assistant.py) ----------

LLM_SERVER_START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # e.g. http://127.0.0.1:PORT/v1
    gguf: Path
    startup_s: float
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A real `llama_cpp.server` on a free loopback port serving the packaged SmolLM2 135M GGUF."""
    from citeqa.answer.llm import packaged_gguf_path
    from citeqa.errors import ConfigError

    pytest.importorskip("llama_cpp.server.app", reason='needs llama-cpp-python[server] (".[llm]")')
    try:
        gguf = packaged_gguf_path()
    except ConfigError as exc:
        pytest.skip(str(exc))
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
    ]  # fmt: skip
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{tail}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base}/models", timeout=2) as resp,
            ):
                if resp.status == 200:
                    break
            if time.monotonic() - t0 > LLM_SERVER_START_TIMEOUT_S:
                pytest.fail(f"llama_cpp.server not ready in {LLM_SERVER_START_TIMEOUT_S:g} s")
            time.sleep(0.25)
        yield LlamaServer(base, gguf, time.monotonic() - t0, log)
    finally:
        stop_process(proc, timeout=10)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections but never answers (the kernel does the handshake)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused at once)."""
    return _free_port()

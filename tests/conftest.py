"""Shared test fixtures (sections per area)."""

from __future__ import annotations

# --- eval fixtures
# A scripted fake answerer for tests/test_evaluate.py: the real Assistant is not needed to test scoring.
from dataclasses import dataclass as _eval_dataclass  # noqa: E402
from dataclasses import field as _eval_field  # noqa: E402
from typing import Any as _EvalAny  # noqa: E402

import pytest as _eval_pytest  # noqa: E402

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


@_eval_dataclass
class EvalFakeSettings:
    refusal_threshold: float = 0.45


@_eval_dataclass
class EvalScript:
    """What the fake answers to one question. Spans are (doc, start, end) or (doc, quote)."""

    text: str
    refused: bool = False
    passages: list[tuple] = _eval_field(default_factory=list)
    citations: list[tuple] = _eval_field(default_factory=list)
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

    def ask(self, question: str, history: _EvalAny = ()) -> _EvalAny:
        from citeqa.types import Answer, Citation

        self.asked.append((question, tuple(history)))
        s = self.script.get(question) or EvalScript("I could not find this in the sources.", refused=True,
                                                   support=0.1)
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


@_eval_pytest.fixture
def eval_docs() -> dict[str, str]:
    return dict(EVAL_DOCS)


@_eval_pytest.fixture
def fake_answerer():
    """Factory: fake_answerer({question: EvalScript(...)}) -> object with .ask() and .index.doc_text()."""
    return EvalFakeAssistant


@_eval_pytest.fixture
def eval_script():
    return EvalScript


# --- LLM server fixtures (citeqa.answer.llm; used by tests/test_llm_server.py) ---------------------------

import contextlib as _llm_contextlib  # noqa: E402
import socket as _llm_socket  # noqa: E402
import subprocess as _llm_subprocess  # noqa: E402
import sys as _llm_sys  # noqa: E402
import time as _llm_time  # noqa: E402
import urllib.request as _llm_urllib  # noqa: E402
from collections.abc import Iterator as _LlmIterator  # noqa: E402
from dataclasses import dataclass as _llm_dataclass  # noqa: E402
from pathlib import Path as _LlmPath  # noqa: E402

import pytest as _llm_pytest  # noqa: E402

LLM_SERVER_START_TIMEOUT_S = 120.0


@_llm_dataclass(frozen=True)
class LlamaServer:
    base_url: str  # e.g. http://127.0.0.1:PORT/v1
    gguf: _LlmPath
    startup_s: float
    log: _LlmPath


def _llm_free_port() -> int:
    with _llm_socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@_llm_pytest.fixture(scope="session")
def llama_server(tmp_path_factory: _llm_pytest.TempPathFactory) -> _LlmIterator[LlamaServer]:
    """A real `llama_cpp.server` on a free loopback port serving the packaged SmolLM2 135M GGUF."""
    from citeqa.answer.llm import packaged_gguf_path
    from citeqa.errors import ConfigError

    _llm_pytest.importorskip("llama_cpp.server.app", reason='needs llama-cpp-python[server] (".[llm]")')
    try:
        gguf = packaged_gguf_path()
    except ConfigError as exc:
        _llm_pytest.skip(str(exc))
    port = _llm_free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = [
        _llm_sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
    ]  # fmt: skip
    t0 = _llm_time.monotonic()
    with log.open("wb") as out:
        proc = _llm_subprocess.Popen(cmd, stdout=out, stderr=_llm_subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                _llm_pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{tail}")
            with (
                _llm_contextlib.suppress(OSError),
                _llm_urllib.urlopen(f"{base}/models", timeout=2) as resp,
            ):
                if resp.status == 200:
                    break
            if _llm_time.monotonic() - t0 > LLM_SERVER_START_TIMEOUT_S:
                _llm_pytest.fail(f"llama_cpp.server not ready in {LLM_SERVER_START_TIMEOUT_S:g} s")
            _llm_time.sleep(0.25)
        yield LlamaServer(base, gguf, _llm_time.monotonic() - t0, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except _llm_subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@_llm_pytest.fixture
def silent_port() -> _LlmIterator[int]:
    """A loopback port that accepts connections but never answers (the kernel does the handshake)."""
    with _llm_socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


@_llm_pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused at once)."""
    return _llm_free_port()


# --- end LLM server fixtures ---------------------------------------------------------------------------

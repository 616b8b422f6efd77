"""Hostile input: surrogates, invalid UTF-8, malformed history/top_k/JSONL, overlong history turns, UI
logins, bounded answer exports. Each gives a CiteqaError message naming the offending part, never a
traceback, and a batch goes on past a bad line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the `ui` package lives at the repo root

from citeqa.errors import ConfigError, QuestionError  # noqa: E402
from citeqa.inputs import clean_text, history_from_json, parse_history, parse_top_k  # noqa: E402
from conftest import PROJECT_ROOT  # noqa: E402
from test_reliability import OS_QUESTION, ask_jsonl, citeqa, env_for  # noqa: E402


def test_cli_questions_with_surrogates_and_bad_bytes(seed_index: tuple[Any, Any]) -> None:
    _, settings = seed_index
    r = subprocess.run(
        [sys.executable.encode(), b"-m", b"citeqa.cli", b"ask", b"--json",
         b"What was the median overall survival \xff\xfe with blinatumomab in the TOWER trial?"],
        env=env_for(settings.index_dir), cwd=PROJECT_ROOT, capture_output=True, timeout=300, check=False,
    )
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    assert "7.7" in json.loads(r.stdout)["answer"]


def test_ask_jsonl_goes_past_every_kind_of_bad_line(seed_index: tuple[Any, Any]) -> None:
    _, settings = seed_index
    lines = [
        json.dumps({"id": "surrogate", "question": "What was the median overall survival \ud800 with "
                    "blinatumomab in the TOWER trial?"}).encode(),  # a "\\ud800" escape
        b'{"id": "latin1", "question": "caf\xe9 question"}',  # not UTF-8
        b"[[",
        json.dumps({"id": "long-turn", "question": "And with chemotherapy?",
                    "history": [["x" * 100_000, "7.7 months"]]}).encode(),
        json.dumps({"id": "bad-history", "question": "And?", "history": "[["}).encode(),
        json.dumps({"id": "last", "question": OS_QUESTION}).encode(),
    ]
    r = ask_jsonl(settings.index_dir, lines)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert [o["id"] for o in out] == ["surrogate", 2, 3, "long-turn", "bad-history", "last"]
    assert "error" not in out[0] and "7.7" in out[0]["answer"]
    assert out[1]["error"].startswith("line 2: not valid UTF-8 (byte 0xe9")
    assert out[2]["error"].startswith("line 3: ") and "JSON" in out[2]["error"]
    assert "turn 1: its question is 100,000 characters long" in out[3]["error"]
    assert "the question is" not in out[3]["error"].lower()
    assert "line 5" in out[4]["error"] and "history" in out[4]["error"]
    assert "error" not in out[5] and "7.7" in out[5]["answer"]
    assert all(f"line {n}" in r.stderr for n in (2, 3, 4, 5))


def test_cli_history_and_jsonl_file_errors_are_messages(tmp_path: Path) -> None:
    r = citeqa(tmp_path / "index", "ask", "--history", "[[", "And with chemotherapy?")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "--history is not valid JSON" in r.stderr and "[question, answer]" in r.stderr
    r = citeqa(tmp_path / "index", "ask", "--history", '[["q"]]', "And?")
    assert r.returncode == 1 and "--history: turn 1 must be a [question, answer] pair" in r.stderr
    r = citeqa(tmp_path / "index", "ask", "--jsonl", str(tmp_path / "nope.jsonl"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "nope.jsonl: cannot be read (No such file or directory)" in r.stderr


def test_input_checks_name_what_is_wrong() -> None:
    assert clean_text("a\ud800b\udcffc") == "a\ufffdb\ufffdc"
    assert clean_text("plain é 😀") == "plain é 😀"
    for bad, words in [("abc", "whole number"), ("0", "from 1 to 100"), (1000, "from 1 to 100"),
                       (2.5, "whole number"), (True, "whole number"), ([1], "whole number")]:
        with pytest.raises(QuestionError, match=words):
            parse_top_k(bad)
    assert parse_top_k("7") == 7 and parse_top_k(None) is None
    for bad, words in [("text", "list of"), ([["q"]], "turn 1"), ([["q", 5]], "turn 1"),
                       ([["q", "a"], ["y" * 3000, "a"]], "turn 2: its question is 3,000"),
                       ([["q", "a" * 30_000]], "its answer is 30,000")]:
        with pytest.raises(QuestionError, match=words):
            parse_history(bad, "history")
    assert parse_history([["q\ud800", "a"]]) == [("q\ufffd", "a")]
    with pytest.raises(QuestionError, match="--history is not valid JSON"):
        history_from_json("[[")


# --------------------------------------------------------------------------- the UI: logins, errors, exports


def test_ui_logins_from_env_and_file(tmp_path: Path) -> None:
    from ui.security import is_loopback, load_logins

    assert load_logins("", "") == []
    assert load_logins("alice:pw1, bob:p:w2", "") == [("alice", "pw1"), ("bob", "p:w2")]
    f = tmp_path / "users"
    f.write_text("# team\ncarol:secret\n\n", encoding="utf-8")
    assert load_logins("", str(f)) == [("carol", "secret")]
    with pytest.raises(ConfigError, match="entry 1") as ei:
        load_logins("nopassword", "")
    assert "nopassword" not in str(ei.value) or "expected" in str(ei.value)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_logins("", str(tmp_path / "missing"))
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")


def test_ui_warns_when_serving_beyond_loopback_without_login(tmp_path: Path) -> None:
    code = (
        "import logging, sys; sys.argv=['x']\n"
        "import ui.app as app\n"
        "app.Runtime.start = lambda self: None\n"
        "app.build_app = lambda s, r: type('D', (), {'launch': lambda self, **kw: print('AUTH', kw.get('auth'))})()\n"
        "app.main(['--host', '0.0.0.0', '--port', '7999'])\n"
    )
    env = env_for(tmp_path / "index")
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                       timeout=120, check=False)
    assert "with no login" in r.stderr and "CITEQA_UI_USERS" in r.stderr and "AUTH None" in r.stdout, r.stderr
    env["CITEQA_UI_USERS"] = "alice:pw1"
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                       timeout=120, check=False)
    assert "with no login" not in r.stderr and "AUTH [('alice', 'pw1')]" in r.stdout, r.stderr
    assert "pw1" not in r.stderr


def test_validation_errors_log_one_line(caplog: pytest.LogCaptureFixture) -> None:
    from ui.runtime import user_error

    caplog.set_level(logging.INFO, logger="citeqa.ui")
    err = user_error(QuestionError("top_k must be from 1 to 100; got 0."))
    assert getattr(err, "print_exception", True) is False and err.message.endswith("got 0.")  # type: ignore[attr-defined]
    (rec,) = caplog.records
    assert rec.exc_info is None and "\n" not in rec.getMessage()


def test_answer_exports_stay_bounded(seed_index: tuple[Any, Any], tmp_path: Path) -> None:
    from ui.chat import write_exports
    from ui.runtime import Runtime

    index, settings = seed_index
    runtime = Runtime(settings.model_copy(update={"export_keep": 5}))
    runtime.index = index
    runtime._ready.set()
    ans = {"question": "q", "answer": "a", "citations": [], "passages": [], "refused": True}
    d = tmp_path / "exports"
    paths = [write_exports(runtime, "../../evil", i, ans, d) for i in range(40)]
    files = sorted(p.name for p in d.iterdir())
    assert len(files) == 10  # 5 answers, .md and .json each
    assert {p.name for p in paths[-1]} <= set(files) and all(p.parent == d for pair in paths for p in pair)


def test_http_request_bodies_are_limited(tmp_path: Path) -> None:
    import socket
    import urllib.error
    import urllib.request

    from ui.app import build_app, launch_kwargs
    from ui.runtime import Runtime

    from citeqa import Settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = Settings(index_dir=tmp_path / "index", port=port, max_request_kb=64)
    demo = build_app(settings, Runtime(settings))  # the index is never opened: no question is asked
    demo.launch(**launch_kwargs(settings), prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/gradio_api/call/answer"
        big = json.dumps({"data": ["q", [["x" * 200_000, "a"]], 5]}).encode()
        req = urllib.request.Request(url, data=big, headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(req, timeout=30)
        assert ei.value.code == 413 and b"request body over 65,536 bytes" in ei.value.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=30) as r:
            assert r.status == 200  # ordinary requests pass
    finally:
        demo.close()

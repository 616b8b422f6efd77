"""Start-up in a real browser (headless Chromium): the model loads in the background as the server starts,
a question asked meanwhile shows a "loading the model" notice and is answered once it is ready, and the
first question after ready is answered within 2 s.

The index is built beforehand (as on any start after the first); the encoder's cache starts empty, so the
server makes the ONNX export of the packaged weights while the page is already up (the slowest model load
a user meets). Run with ``pytest -m browser``; skipped when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_ui_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    START_TIMEOUT_S,
    TOWER_Q,
    _ask,
    _free_port,
    playwright_sync,
    ui_process,
)

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
READY_JS = "() => /documents/.test(document.querySelector('#cq-status')?.innerText || '')"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    work = tmp_path_factory.mktemp("ui_startup")
    env = dict(os.environ, CITEQA_INDEX_DIR=str(work / "index"), CITEQA_UPLOAD_DIR=str(work / "uploads"),
               CITEQA_ANSWER_MODE="extractive", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(ROOT)) if p)
    subprocess.run([sys.executable, "-m", "citeqa.cli", "index", str(ROOT / "seeds")], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    port = _free_port()
    env.update(CITEQA_PORT=str(port), CITEQA_HOST="127.0.0.1", CITEQA_ENCODER_CACHE_DIR=str(work / "encoders"))
    log = work / "app.log"
    with ui_process(env, log) as url:
        yield url, log


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_question_before_ready_waits_with_a_notice_then_answers(browser, server) -> None:  # type: ignore[no-untyped-def]
    url, log = server
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = ctx.new_page()
    pg.goto(url)
    pg.wait_for_selector("#cq-question textarea", timeout=60_000)
    status_seen = pg.inner_text("#cq-status")
    assert not pg.evaluate(READY_JS), "the model loaded before the page could ask; nothing to test"
    pg.fill("#cq-question textarea", TOWER_Q)
    pg.click("#cq-send")
    notice = ""
    t_ready = t_answer = 0.0
    t0 = time.monotonic()
    while time.monotonic() - t0 < START_TIMEOUT_S:
        bubble = pg.locator("#cq-chat .cq-answer").last
        text = bubble.inner_text() if bubble.count() else ""
        if "Loading the model" in text:
            notice = text
        if "Loading the model" in (status := pg.inner_text("#cq-status")):
            status_seen = status
        if not t_ready and pg.evaluate(READY_JS):
            t_ready = time.monotonic()
        if pg.locator("#cq-chat .cq-answer:not(.cq-streaming)").count():
            t_answer = time.monotonic()
            break
        pg.wait_for_timeout(50)
    answer = pg.locator("#cq-chat .cq-answer:not(.cq-streaming)").last.inner_text()
    t_ready = t_ready or t_answer  # the answer may land in the same poll as the status line
    ctx.close()
    assert "Loading the model" in notice, "the waiting answer bubble never said the model was loading"
    assert "Loading the model" in status_seen, f"the status line never said so: {status_seen!r}"
    assert "7.7 months" in answer, answer
    assert t_answer - t_ready <= 2.0, f"answered {t_answer - t_ready:.1f} s after the status line said ready"
    assert "model loaded in" in log.read_text(), "the server log does not report the model load"


def test_first_question_after_ready_is_answered_within_two_seconds(browser, server) -> None:  # type: ignore[no-untyped-def]
    url, _ = server
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = ctx.new_page()  # a new session: its first question
    pg.goto(url)
    pg.wait_for_function(READY_JS, timeout=START_TIMEOUT_S * 1000)
    t = time.monotonic()
    bubble = _ask(pg, "How common was grade 3 or higher neutropenia with blinatumomab?")
    seconds = time.monotonic() - t
    text = bubble.inner_text()  # type: ignore[attr-defined]
    ctx.close()
    assert "%" in text and "[1]" in text, text
    assert seconds <= 2.0, f"first question after ready took {seconds:.1f} s"

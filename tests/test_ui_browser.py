"""End-to-end tests of the web UI in headless Chromium (Debian's ``chromium`` + Playwright for Python).

The app runs as a subprocess (``python -m ui.app``) on a free loopback port with a temporary index and
upload folder, so the first page load also exercises the "index is being built" path.
Run with ``pytest -m browser``; skipped when Chromium or Playwright is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import stop_process

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CITEQA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
START_TIMEOUT_S = 120
ANSWER_TIMEOUT_MS = 120_000
TOWER_Q = "What was the median overall survival with blinatumomab in the TOWER trial?"
SCREENSHOT = ROOT / "docs" / "screenshot.png"
XSS_DOC = (
    "Security test note\n\n"
    "The pangolin calibration constant of the Vostok assay was 913.25 millikelvin.\n\n"
    'Markup that must stay text: <script>window.__xss=1</script><img src=x onerror="window.__xss=2"> '
    "and {{this}} and ${window.__xss=3} and $$x^2$$.\n"
)
FACT_DOC = (
    "Field report\n\n"
    "In the Okapi-7 cohort study, the median time to first remission was 11.4 weeks.\n"
    "The Okapi-7 study enrolled 58 participants at two sites.\n"
)

playwright_sync = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python")
if not Path(CHROMIUM).exists():
    pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def ui_process(env: dict[str, str], log: Path, poll_s: float = 0.1) -> Iterator[str]:
    """``python -m ui.app`` as a subprocess with ``env``, output in ``log``; yields its URL once the page
    answers, and stops the process afterwards. Fails the test (with the log's tail) if the app exits or is
    not up within START_TIMEOUT_S."""
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ui.app"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['CITEQA_PORT']}/"
    t0 = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"UI exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    break
            if time.monotonic() - t0 > START_TIMEOUT_S:
                pytest.fail(f"UI not up after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(poll_s)
        yield url
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui_browser")


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[str]:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        CITEQA_INDEX_DIR=str(workdir / "index"),
        CITEQA_UPLOAD_DIR=str(workdir / "uploads"),
        CITEQA_HOST="127.0.0.1",
        CITEQA_PORT=str(port),
        CITEQA_ANSWER_MODE="extractive",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(ROOT)) if p)
    with ui_process(env, workdir / "app.log", poll_s=0.2) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def external_requests() -> list[str]:
    return []


@pytest.fixture
def page(browser, server: str, external_requests: list[str]):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("dialog", lambda d: d.accept())
    pg.on(
        "request",
        lambda r: (
            external_requests.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:"))
            else None
        ),
    )
    pg.goto(server)
    pg.wait_for_selector("#cq-status", timeout=30_000)
    yield pg
    ctx.close()
    assert not errors, f"uncaught page errors: {errors}"


def _wait_ready(pg) -> None:  # type: ignore[no-untyped-def]
    pg.wait_for_function(
        "() => /documents/.test(document.querySelector('#cq-status')?.innerText || '')",
        timeout=START_TIMEOUT_S * 1000,
    )


def _ask(pg, question: str) -> object:  # type: ignore[no-untyped-def]
    """Ask a question; return the finished answer bubble (the last one)."""
    n = pg.locator("#cq-chat .cq-answer:not(.cq-streaming)").count()
    users = pg.locator("#cq-chat .cq-user").count()
    for _attempt in range(5):
        # A click that lands while the previous answer's event is still closing is ignored by Gradio
        # (trigger_mode "once"), so retry until the question shows up in the chat.
        pg.fill("#cq-question textarea", question)
        pg.click("#cq-send")
        try:
            pg.wait_for_function(
                f"() => document.querySelectorAll('#cq-chat .cq-user').length > {users}", timeout=5_000
            )
            break
        except playwright_sync.TimeoutError:
            continue
    pg.wait_for_function(
        f"() => document.querySelectorAll('#cq-chat .cq-answer:not(.cq-streaming)').length > {n}",
        timeout=ANSWER_TIMEOUT_MS,
    )
    return pg.locator("#cq-chat .cq-answer:not(.cq-streaming)").last


def _doc_text(workdir: Path, doc: str) -> str:
    for d in (ROOT / "seeds", workdir / "uploads"):
        if (d / doc).is_file():
            with (d / doc).open(encoding="utf-8", newline="") as fh:  # offsets count "\r\n" as 2
                return fh.read()
    raise AssertionError(f"{doc} not found in seeds or uploads")


def _open_citation(pg, link) -> dict:  # type: ignore[no-untyped-def]
    """Click a citation link; return the highlighted mark's doc, offsets and text."""
    before = pg.evaluate("() => (document.querySelector('#cq-evidence') || {}).dataset?.nonce || ''")
    link.click()
    pg.wait_for_function(
        "(before) => { const e = document.querySelector('#cq-evidence-panel #cq-evidence');"
        " return e && e.dataset.nonce !== before && e.querySelector('mark#cq-mark'); }",
        arg=before,
        timeout=30_000,
    )
    pg.wait_for_timeout(400)  # let the scroll into view settle
    return pg.evaluate(
        """() => { const m = document.querySelector('#cq-evidence-panel mark#cq-mark');
                   const box = document.querySelector('#cq-evidence-panel .cq-doc');
                   const mr = m.getBoundingClientRect(), br = box.getBoundingClientRect();
                   return {doc: m.dataset.doc, start: +m.dataset.start, end: +m.dataset.end,
                           text: m.textContent, visible: mr.top >= br.top - 1 && mr.top < br.bottom,
                           panel: document.querySelector('#cq-evidence-panel').innerText}; }"""
    )


def _await_report(pg, action) -> str:  # type: ignore[no-untyped-def]
    """Run ``action`` and return the text of the library report it produces."""
    sel = "#cq-upload-report .cq-upload-report"
    old = pg.evaluate(f"() => document.querySelector('{sel}')?.dataset.nonce || ''")
    action()
    pg.wait_for_function(
        f"(old) => (document.querySelector('{sel}')?.dataset.nonce || old) !== old",
        arg=old,
        timeout=ANSWER_TIMEOUT_MS,
    )
    return pg.inner_text(sel)


def _upload(pg, paths: list[Path]) -> str:  # type: ignore[no-untyped-def]
    pg.get_by_role("tab", name="Library").click()
    pg.set_input_files("#cq-upload input[type=file]", [str(p) for p in paths])
    stems = [p.stem for p in paths]  # the files are uploaded to the server as soon as they are chosen
    pg.wait_for_function(
        "(stems) => { const t = document.querySelector('#cq-upload').innerText;"
        " return stems.every((s) => t.includes(s)); }",
        arg=stems,
        timeout=30_000,
    )
    report = _await_report(pg, lambda: pg.click("#cq-add"))
    pg.get_by_role("tab", name="Chat").click()
    return report


# ---------------------------------------------------------------------------------------------- tests


def test_startup_shows_index_progress_then_library(page) -> None:  # type: ignore[no-untyped-def]
    """The index is built on first start; the page shows that instead of looking frozen."""
    seen_progress = False
    t0 = time.monotonic()
    while time.monotonic() - t0 < START_TIMEOUT_S:
        status = page.inner_text("#cq-status")
        progress = page.locator(".progress-text, .progress-level, .eta-bar, .meta-text").count() > 0
        if "Preparing the document index" in status or progress:
            seen_progress = True
        if "documents" in status:
            break
        page.wait_for_timeout(150)
    assert "documents" in page.inner_text("#cq-status")
    elapsed = time.monotonic() - t0
    assert seen_progress or elapsed < 2, "index build took a while but no progress was shown"
    page.get_by_role("tab", name="Library").click()
    table = page.inner_text("#cq-library")
    assert all(f"00{i}_" in table for i in range(5)), table


def test_ask_stream_and_open_citation(page, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    _wait_ready(page)
    bubble = _ask(page, TOWER_Q)
    text = bubble.inner_text()
    assert "7.7" in text, text
    assert bubble.locator(".cq-refusal").count() == 0
    links = bubble.locator(".cq-text a.cq-cite")
    assert links.count() >= 1
    assert bubble.locator(".cq-refs li").count() >= 1
    first = links.first
    assert first.inner_text() == "[1]"
    mark = _open_citation(page, first)
    source = _doc_text(workdir, mark["doc"])
    assert mark["text"] == source[mark["start"] : mark["end"]]
    assert mark["text"].strip(), "empty highlight"
    assert mark["visible"], "the highlighted span was not scrolled into view"
    # The reference entry shows the same quote (trimmed to a preview).
    ref_quote = bubble.locator(".cq-refs li .cq-quote").first.inner_text().strip("“”… ")
    assert " ".join(mark["text"].split()).startswith(" ".join(ref_quote.split())[:60])
    # Clicking the reference entry opens the same span.
    again = _open_citation(page, bubble.locator(".cq-refs a.cq-ref").first)
    assert (again["doc"], again["start"], again["text"]) == (mark["doc"], mark["start"], mark["text"])
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOT))


def test_follow_up_uses_history_and_exports(page) -> None:  # type: ignore[no-untyped-def]
    _wait_ready(page)
    _ask(page, TOWER_Q)
    bubble = _ask(page, "And with chemotherapy?")
    assert "4.0" in bubble.inner_text()
    # Export of the last answer: Markdown with quotes and offsets, and JSON = Answer.to_dict().
    with page.expect_download() as dl:
        page.click("#cq-dl-md")
    md = Path(dl.value.path()).read_text(encoding="utf-8")
    assert "## Question" in md and "And with chemotherapy?" in md and "## References" in md
    assert re.search(r"characters \d+–\d+", md)
    with page.expect_download() as dl:
        page.click("#cq-dl-json")
    data = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert data["question"] == "And with chemotherapy?"
    assert data["citations"] and {"doc", "start", "end", "quote"} <= set(data["citations"][0])


def test_unanswerable_question_is_refused_with_nearest_passages(page) -> None:  # type: ignore[no-untyped-def]
    _wait_ready(page)
    # Off the sources' topic (near-topic gaps such as a price are not reliably refused: see the model card).
    bubble = _ask(page, "What is the boiling point of liquid nitrogen at sea level?")
    assert bubble.locator(".cq-refusal").count() == 1, bubble.inner_text()
    assert "Not answered" in bubble.inner_text()
    nearest = bubble.locator(".cq-nearest a.cq-ref")
    if nearest.count():
        mark = _open_citation(page, nearest.first)
        assert mark["text"].strip()


def test_upload_new_document_and_ask_about_it(page, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    _wait_ready(page)
    fact = workdir / "okapi field report.txt"
    fact.write_text(FACT_DOC, encoding="utf-8")
    bad = workdir / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not really a pdf")
    report = _upload(page, [fact, bad])
    assert "okapi_field_report.txt" in report, report
    assert "broken.pdf" in report and "Not added" in report, report
    page.get_by_role("tab", name="Library").click()
    # The library table is refreshed by an event after the upload: wait for its row rather than reading the
    # table at once (a clean-clone CI run read it before the refresh arrived).
    page.locator("#cq-library").get_by_text("okapi_field_report.txt").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name="Chat").click()
    bubble = _ask(page, "What was the median time to first remission in the Okapi-7 cohort study?")
    assert "11.4" in bubble.inner_text()
    link = bubble.locator(".cq-text a.cq-cite").first
    mark = _open_citation(page, link)
    assert mark["doc"] == "okapi_field_report.txt"
    assert mark["text"] == FACT_DOC[mark["start"] : mark["end"]]


def test_oversized_upload_is_refused_with_a_message(page, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    _wait_ready(page)
    big = workdir / "too_big.txt"
    big.write_bytes(b"x" * (20 * 1024 * 1024 + 1024))  # default limit: CITEQA_MAX_UPLOAD_MB=20
    page.get_by_role("tab", name="Library").click()
    page.set_input_files("#cq-upload input[type=file]", str(big))
    page.get_by_text(re.compile(r"exceed the maximum allowed size of 20(\.0)? ?Mb", re.I)).first.wait_for(
        timeout=30_000
    )
    assert not (workdir / "uploads" / "too_big.txt").exists()


def test_document_markup_is_shown_literally_never_executed(page, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    _wait_ready(page)
    evil = workdir / "xss_note.txt"
    evil.write_text(XSS_DOC, encoding="utf-8")
    report = _upload(page, [evil])
    assert "xss_note.txt" in report
    bubble = _ask(page, "What was the pangolin calibration constant of the Vostok assay?")
    assert "913.25" in bubble.inner_text()
    mark = _open_citation(page, bubble.locator(".cq-text a.cq-cite").first)
    assert mark["doc"] == "xss_note.txt"
    page.wait_for_timeout(500)
    panel = mark["panel"]
    assert '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">' in panel
    assert "{{this}} and ${window.__xss=3} and $$x^2$$" in panel
    assert page.evaluate("() => typeof window.__xss") == "undefined"
    assert page.locator("#cq-evidence-panel script, #cq-evidence-panel img").count() == 0
    # Asking about the markup itself puts it into the chat bubble: still inert there.
    bubble = _ask(page, "Which markup must stay text in the security test note?")
    page.wait_for_timeout(500)
    assert page.evaluate("() => typeof window.__xss") == "undefined"
    assert page.locator("#cq-chat img[src=x]").count() == 0


def test_remove_document(page) -> None:  # type: ignore[no-untyped-def]
    _wait_ready(page)
    page.get_by_role("tab", name="Library").click()
    assert "okapi_field_report.txt" in page.inner_text("#cq-library")
    page.click("#cq-remove-choice input")
    page.get_by_role("option", name=re.compile(r"okapi_field_report\.txt")).click()
    report = _await_report(page, lambda: page.click("#cq-remove"))
    assert "Removed okapi_field_report.txt" in report
    page.wait_for_function(
        "() => !document.querySelector('#cq-library').innerText.includes('okapi_field_report.txt')",
        timeout=30_000,
    )


def test_settings_are_per_session_and_key_is_not_echoed(page, browser, server: str) -> None:  # type: ignore[no-untyped-def]
    _wait_ready(page)
    page.get_by_role("tab", name="Settings").click()
    page.get_by_label("OpenAI-compatible endpoint", exact=False).check()
    page.fill("#cq-url input, #cq-url textarea", "http://127.0.0.1:9/v1")
    page.fill("#cq-key input", "sk-very-secret-123")
    page.fill("#cq-topk input[type=number]", "5")
    page.click("#cq-apply")
    page.wait_for_function(
        "() => /Applied/.test(document.querySelector('#cq-settings-note')?.innerText || '')"
    )
    assert page.input_value("#cq-key input") == ""
    assert "sk-very-secret-123" not in page.content()
    assert "OpenAI-compatible endpoint" in page.inner_text("#cq-status")
    # A second browser session still has the defaults.
    other = browser.new_page()
    try:
        other.goto(server)
        other.wait_for_function(
            "() => /documents/.test(document.querySelector('#cq-status')?.innerText || '')", timeout=60_000
        )
        assert "evidence only" in other.inner_text("#cq-status")
    finally:
        other.close()


def test_evaluate_tab_runs_an_uploaded_question_set(page, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    _wait_ready(page)
    lines = (ROOT / "evals" / "seeds_questions.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    qs = workdir / "three_questions.jsonl"
    qs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.get_by_role("tab", name="Evaluate").click()
    page.set_input_files("#cq-eval-upload input[type=file]", str(qs))
    page.wait_for_function(
        "() => document.querySelector('#cq-eval-upload').innerText.includes('three_questions')",
        timeout=30_000,
    )
    page.click("#cq-eval-run")
    page.wait_for_function(
        "() => /Overall/.test(document.querySelector('#cq-eval-report')?.innerText || '')",
        timeout=ANSWER_TIMEOUT_MS * 2,
    )
    report = page.inner_text("#cq-eval-report")
    assert "3 scored" in report, report[:500]
    page.wait_for_function("() => document.querySelectorAll('#cq-eval-plots img').length > 0", timeout=30_000)


@pytest.mark.llm
def test_llm_endpoint_from_settings_is_used(page, llama_server) -> None:  # type: ignore[no-untyped-def]
    """LLM mode via the Settings tab against a real local llama.cpp server (tiny model): the answer is either
    the LLM's, with unsupported sentences marked, or the evidence answer with a notice saying why."""
    _wait_ready(page)
    page.get_by_role("tab", name="Settings").click()
    page.get_by_label("OpenAI-compatible endpoint", exact=False).check()
    page.fill("#cq-url input, #cq-url textarea", llama_server.base_url)
    page.click("#cq-apply")
    page.wait_for_function(
        "() => /Applied/.test(document.querySelector('#cq-settings-note')?.innerText || '')"
    )
    page.get_by_role("tab", name="Chat").click()
    bubble = _ask(page, TOWER_Q)
    with page.expect_download() as dl:
        page.click("#cq-dl-json")
    data = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    if data["mode"] == "openai":
        unsupported = [s for s in data["sentences"] if not s["supported"]]
        shown = bubble.locator(".cq-unsupported").count() + bubble.locator(".cq-warn li").count()
        assert shown == len(unsupported)
    else:
        assert any("LLM" in n for n in data["notices"]), data["notices"]
        assert "LLM" in bubble.locator(".cq-notice").first.inner_text()


def test_no_external_requests(external_requests: list[str]) -> None:
    assert not external_requests, f"the page fetched from outside the machine: {external_requests[:5]}"


def test_server_log_has_no_tracebacks(workdir: Path) -> None:
    log = (workdir / "app.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[log.find("Traceback") - 200 :][:3000]


@pytest.fixture(scope="module", autouse=True)
def _keep_log_on_failure(workdir: Path) -> Iterator[None]:
    yield
    log = workdir / "app.log"
    if log.exists() and os.environ.get("CITEQA_UI_LOG_COPY"):
        shutil.copy(log, os.environ["CITEQA_UI_LOG_COPY"])


PDF_FACT = ("In the Quokka-12 extension cohort, the median overall survival with blinatumomab was 14.2 months "
            "among the 61 patients who had received one previous salvage treatment.")


def test_pdf_upload_cites_the_highlighted_page(page, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    """A generated two-column PDF: uploaded, asked about, [1] opens its page with the cited words lit."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pdfgen import two_column_paper
    from test_pdf import _page_chars, _squash

    _wait_ready(page)
    paper = two_column_paper(workdir / "quokka two column.pdf", extra=PDF_FACT)
    report = _upload(page, [paper.path])
    assert "quokka_two_column.pdf" in report and "Not added" not in report, report
    bubble = _ask(page, "What was the median overall survival in the Quokka-12 extension cohort?")
    assert "14.2" in bubble.inner_text(), bubble.inner_text()
    link = bubble.locator(".cq-text a.cq-cite").first
    mark = _open_citation(page, link)
    assert mark["doc"] == "quokka_two_column.pdf", mark
    assert "14.2 months" in mark["text"]
    page.wait_for_selector("#cq-evidence-panel #cq-pdf-mark", timeout=30_000)
    page.wait_for_function("() => { const i = document.querySelector('#cq-evidence-panel .cq-pdf-img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
    page.wait_for_timeout(500)  # the page pane scrolls the first box into view
    geo = page.evaluate(
        """() => { const p = document.querySelector('#cq-evidence-panel');
                   const img = p.querySelector('.cq-pdf-img'), pane = p.querySelector('.cq-pdf-scroll');
                   const box = p.querySelector('#cq-pdf-mark');
                   const r = (e) => { const b = e.getBoundingClientRect();
                                      return {x: b.left, y: b.top, w: b.width, h: b.height}; };
                   return {img: r(img), pane: r(pane), box: r(box),
                           page: +img.closest('.cq-pdf-page').dataset.page,
                           loc: p.querySelector('.cq-ev-loc').innerText}; }""")
    assert f"Page {geo['page']} of" in geo["loc"] and "Results" in geo["loc"], geo["loc"]
    pane, box = geo["pane"], geo["box"]
    assert pane["y"] - 1 <= box["y"] and box["y"] + box["h"] <= pane["y"] + pane["h"] + 1, "box not in view"
    # Where pdfium (not the app) puts the cited words on that page, the screenshot must be lit.
    import io

    import pypdfium2 as pdfium
    from PIL import Image

    uploaded = workdir / "uploads" / "quokka_two_column.pdf"
    chars = _page_chars(uploaded, geo["page"] - 1)
    width_pt = pdfium.PdfDocument(str(uploaded))[geo["page"] - 1].get_size()[0]
    flat = "".join(_squash(c) for c, _x, _y in chars)
    at = flat.find(_squash(mark["text"]))
    assert at >= 0, "the cited words are not on the page shown"
    cited = chars[at : at + len(_squash(mark["text"]))]
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    s = geo["img"]["w"] / width_pt

    def lit(x: float, y: float) -> bool | None:
        px, py = geo["img"]["x"] + x * s, geo["img"]["y"] + y * s
        if not (pane["y"] <= py < pane["y"] + pane["h"]) or not (0 <= px < shot.width and 0 <= py < shot.height):
            return None
        r, _g, b = shot.getpixel((int(px), int(py)))
        return r - b > 60

    seen = [v for _c, x, y in cited if (v := lit(x, y)) is not None]
    assert len(seen) > 0.8 * len(cited) and sum(seen) >= 0.95 * len(seen), (sum(seen), len(seen), len(cited))
    around = [v for _c, x, y in chars[max(0, at - 400) : at - 40] + chars[at + len(cited) + 40 : at + len(cited) + 400]
              if (v := lit(x, y)) is not None]
    assert around and sum(around) <= 0.05 * len(around), (sum(around), len(around))
    shot_path = ROOT / "docs" / "pdf_highlight.png"
    page.locator("#cq-evidence-panel").screenshot(path=str(shot_path))

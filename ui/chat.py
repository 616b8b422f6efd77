"""Chat tab: streamed answers with clickable citations, the evidence panel, per-answer downloads.

``ask_stream`` is the ``/ask`` event (per-session history). A click on a citation marker is forwarded by
:data:`EVIDENCE_JS` to :func:`evidence_html`, which shows the cited span inside its document.
"""

from __future__ import annotations

import base64
import logging
import shutil
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from citeqa import Answer, CiteqaError, render_page
from citeqa.inputs import clean_text

from . import render
from .runtime import LOADING_MODEL, Runtime, meta_map, new_session

log = logging.getLogger("citeqa.ui")

STREAM_MIN_INTERVAL_S = 0.06


EXPORT_DIR = Path(tempfile.gettempdir()) / "citeqa-exports"


def _prune_exports(d: Path, keep: int) -> None:
    """Keep the newest ``keep`` export files in ``d``; older ones (and folders of older versions) go."""
    entries = []
    for p in d.iterdir():
        try:
            entries.append((p.stat().st_mtime, p))
        except OSError:
            continue
    entries.sort(reverse=True)
    for _, p in entries[keep:]:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)



def _assistant_msg(content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def ask_stream(
    runtime: Runtime, message: str, session: dict[str, Any] | None, prefs: dict[str, Any] | None
) -> Iterator[tuple[Any, ...]]:
    """Chat event: yields (textbox, chatbot, session, answer_json, md_file, json_file)."""
    session = dict(session or new_session())
    session["id"] = session.get("id") or uuid.uuid4().hex[:12]
    session["messages"] = list(session.get("messages", []))
    question = clean_text(str(message or ""))
    skip = gr.skip()
    if not question.strip():
        gr.Warning("Please type a question.")
        yield question, session["messages"], session, skip, skip, skip
        return
    msgs = session["messages"] + [{"role": "user", "content": render.render_user(question)}]
    waiting = render.render_streaming("")
    session["messages"] = msgs + [_assistant_msg(waiting)]
    yield "", session["messages"], session, skip, skip, skip

    # Wait for the index (first start): show progress inside the bubble so the page never looks frozen.
    while not runtime.settled(0.5):
        done, total, msg = runtime.status
        frac = f" {done}/{total}" if total else ""
        note = (f"{msg} The answer follows as soon as it is ready." if msg == LOADING_MODEL
                else f"Preparing the document index ({msg}{frac})…")
        session["messages"] = msgs + [_assistant_msg(render.render_streaming(note))]
        yield "", session["messages"], session, skip, skip, skip
    try:
        assistant = runtime.assistant(prefs or {})
        history = [tuple(h) for h in session.get("history", [])]
        answer: Answer | None = None
        text = ""
        last_emit = 0.0
        for item in assistant.stream(question, history=history):
            if isinstance(item, str):
                text += item
                now = time.monotonic()
                if now - last_emit >= STREAM_MIN_INTERVAL_S:
                    last_emit = now
                    session["messages"] = msgs + [_assistant_msg(render.render_streaming(text))]
                    yield "", session["messages"], session, skip, skip, skip
            else:
                answer = item
        if answer is None:
            raise CiteqaError("The assistant returned no answer.")
    except CiteqaError as e:
        session["messages"] = msgs + [_assistant_msg(render.render_error(str(e)))]
        yield question, session["messages"], session, skip, skip, skip
        return
    except Exception as e:  # noqa: BLE001
        log.error("answering failed: %s", traceback.format_exc())
        session["messages"] = msgs + [
            _assistant_msg(
                render.render_error(f"Something went wrong while answering ({type(e).__name__}: {e}).")
            )
        ]
        yield question, session["messages"], session, skip, skip, skip
        return

    ans = answer.to_dict()
    idx = len(session.get("answers", []))
    session["answers"] = list(session.get("answers", [])) + [ans]
    session["history"] = list(session.get("history", [])) + [(question, answer.text)]
    session["messages"] = msgs + [_assistant_msg(render.render_answer(ans, idx))]
    md_path, json_path = write_exports(runtime, session["id"], idx, ans)
    yield (
        "",
        session["messages"],
        session,
        ans,
        gr.DownloadButton(value=str(md_path), interactive=True),
        gr.DownloadButton(value=str(json_path), interactive=True),
    )


def write_exports(runtime: Runtime, session_id: str, idx: int, ans: dict[str, Any],
                  export_dir: Path | None = None) -> tuple[Path, Path]:
    """The answer as .md and .json downloads, in one folder holding at most ``export_keep`` pairs
    (the oldest are deleted as new ones are written)."""
    d = export_dir or EXPORT_DIR
    d.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_id = "".join(c for c in str(session_id) if c.isalnum())[:16] or "session"
    base = f"citeqa-answer-{stamp}-{safe_id}-{idx + 1}-{uuid.uuid4().hex[:6]}"
    md_path, json_path = d / f"{base}.md", d / f"{base}.json"
    md_path.write_text(render.answer_markdown(ans, meta_map(runtime)), encoding="utf-8")
    json_path.write_text(render.answer_json(ans), encoding="utf-8")
    _prune_exports(d, 2 * runtime.settings.export_keep)
    return md_path, json_path


def evidence_html(runtime: Runtime, session: dict[str, Any] | None, key: str) -> str:
    """Evidence panel for a clicked marker ``answer:kind:n`` (see :func:`render.cite_key`)."""
    parsed = render.parse_cite_key(key)
    answers = (session or {}).get("answers", [])
    if parsed is None or parsed[0] >= len(answers):
        return render.render_evidence_message("That citation is no longer available in this conversation.")
    a_idx, kind, n = parsed
    ans = answers[a_idx]
    if kind == "c":
        item = next((c for c in ans.get("citations", []) if int(c["n"]) == n), None)
        label = f"[{n}] cited in answer {a_idx + 1}"
    else:
        ps = ans.get("passages", [])
        item = ps[n] if n < len(ps) else None
        label = f"Nearest passage {n + 1} (not used as an answer)"
    if item is None or not runtime.ready:
        return render.render_evidence_message("That citation is not available.")
    try:
        text = runtime.current().doc_text(item["doc"])
    except (KeyError, CiteqaError):
        return render.render_evidence_message(
            f"{item.get('title') or item['doc']} is no longer in the library; "
            f"its quote was: “{item.get('quote', '')}”"
        )
    meta = meta_map(runtime).get(item["doc"], {"doc": item["doc"], "title": item.get("title", "")})
    page_view, page_label = pdf_page_view(runtime, item["doc"], int(item["start"]), int(item["end"]))
    return render.render_evidence(
        page_view=page_view,
        page_label=page_label,
        label=label,
        meta=meta,
        section=item.get("section", ""),
        doc_text=text,
        start=int(item["start"]),
        end=int(item["end"]),
        expected_quote=item.get("quote"),
        score=item.get("score") if kind == "p" else None,
        nonce=uuid.uuid4().hex[:8],
    )


MAX_PAGES_SHOWN = 2  # a sentence running over a page break shows both pages


def pdf_page_view(runtime: Runtime, doc: str, start: int, end: int) -> tuple[str, str]:
    """For a PDF document, its cited page(s) rendered with the span's boxes, and "Page N of M";
    ("", "") for other formats or when the span has no boxes."""
    index = runtime.current()
    try:
        pdf = index.pdf_file(doc)
        boxes = index.citation_boxes(doc, start, end) if pdf is not None else []
        pm = index.page_map(doc) if boxes else None
    except (KeyError, CiteqaError):
        return "", ""
    if pdf is None or not boxes or pm is None:
        return "", ""
    pages = sorted({b.page for b in boxes})[:MAX_PAGES_SHOWN]
    shown = []
    for pg in pages:
        png, _scale = render_page(pdf, pg, boxes)
        w, h = (float(v) for v in pm.sizes[pg])
        rel = [(b.x0 / w * 100, b.y0 / h * 100, (b.x1 - b.x0) / w * 100, (b.y1 - b.y0) / h * 100)
               for b in boxes if b.page == pg]
        shown.append({"page": pg, "png": base64.b64encode(png).decode("ascii"), "boxes": rel})
    label = f"Page {pages[0] + 1}" + (f"–{pages[-1] + 1}" if len(pages) > 1 else "") + f" of {pm.n_pages}"
    return render.render_pdf_pages(shown, pm.n_pages, doc), label


# JS run once when the evidence panel mounts: a delegated click handler for every [data-cite] element on
# the page (chat bubbles are sanitised Markdown, so they cannot carry their own handlers) that forwards the
# key to Python through this component's `click` event, and a watcher that scrolls the <mark> into view.
EVIDENCE_JS = r"""
window.__citeqaTrigger = (key) => trigger('click', {cite: key});
if (!window.__citeqaCiteListener) {
  window.__citeqaCiteListener = true;
  // Chat bubbles are sanitised (no data-* attributes survive), so markers there carry the key in
  // their href: #cq-cite-<answer>-<c|p>-<n>.
  const keyOf = (el) => {
    if (el.getAttribute('data-cite')) return el.getAttribute('data-cite');
    const m = /#cq-cite-(\d+)-([cp])-(\d+)$/.exec(el.getAttribute('href') || '');
    return m ? m[1] + ':' + m[2] + ':' + m[3] : null;
  };
  document.addEventListener('click', (ev) => {
    const el = ev.target && ev.target.closest ? ev.target.closest('a.cq-cite, [data-cite]') : null;
    if (!el) return;
    const key = keyOf(el);
    if (!key) return;
    ev.preventDefault();
    ev.stopPropagation();
    const href = '#cq-cite-' + key.split(':').join('-');
    document.querySelectorAll('a.cq-cite.cq-active').forEach((x) => x.classList.remove('cq-active'));
    document.querySelectorAll('a.cq-cite[href="' + href + '"]').forEach((x) => x.classList.add('cq-active'));
    window.__citeqaTrigger(key);
  }, true);
}
const revealPage = () => {
  const box = element.querySelector('#cq-pdf-mark');
  const pane = element.querySelector('.cq-pdf-scroll');
  if (!box || !pane) return;
  const img = element.querySelector('.cq-pdf-img');
  const go = () => {
    const delta = box.getBoundingClientRect().top - pane.getBoundingClientRect().top;
    pane.scrollTop += delta - Math.max(24, pane.clientHeight / 3);
  };
  if (img && !img.complete) img.addEventListener('load', go, {once: true}); else go();
};
const reveal = () => {
  revealPage();
  const mark = element.querySelector('#cq-mark');
  const box = element.querySelector('.cq-doc');
  if (!mark || !box) return;
  const delta = mark.getBoundingClientRect().top - box.getBoundingClientRect().top;
  box.scrollTop += delta - Math.max(24, (box.clientHeight - mark.offsetHeight) / 3);
  const r = element.getBoundingClientRect();
  if (r.top < 0 || r.top > window.innerHeight * 0.6) {
    element.scrollIntoView({block: 'start', behavior: 'instant'});
  }
  mark.classList.remove('cq-flash'); void mark.offsetWidth; mark.classList.add('cq-flash');
};
watch('value', () => requestAnimationFrame(reveal));
"""


def build_chat_tab(runtime: Runtime, session: gr.State, prefs: gr.State, concurrency: int | None) -> gr.Chatbot:
    """The chat tab: conversation, question box, downloads, evidence panel, and their events.

    Events: ``/ask`` (Enter or the Ask button), citation clicks, new conversation. Returns the chatbot.
    """
    with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=380):
            chatbot = gr.Chatbot(
                elem_id="cq-chat",
                label="Conversation",
                show_label=False,
                height="66vh",
                min_height=420,
                latex_delimiters=[],
                feedback_options=None,
                buttons=["copy"],
                placeholder="<div style='text-align:center;opacity:.75'><b>Ask about the indexed "
                "literature</b><br>e.g. <i>What was the median overall survival with blinatumomab "
                "in the TOWER trial?</i></div>",
            )
            with gr.Row():
                question = gr.Textbox(
                    elem_id="cq-question",
                    label="Question",
                    show_label=False,
                    placeholder="Ask a question (follow-ups use the conversation so far)…",
                    lines=1,
                    max_lines=6,
                    scale=6,
                    submit_btn=False,
                    autofocus=True,
                )
                send = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="cq-send")
            with gr.Row():
                clear = gr.Button("New conversation", size="sm", variant="secondary")
                md_dl = gr.DownloadButton("Download answer (.md)", size="sm", interactive=False, elem_id="cq-dl-md")
                json_dl = gr.DownloadButton(
                    "Download answer (.json)", size="sm", interactive=False, elem_id="cq-dl-json"
                )
            with gr.Accordion("Last answer as data", open=False):
                answer_json = gr.JSON(elem_id="cq-answer-json", label="Answer.to_dict()")
        with gr.Column(scale=4, min_width=340):
            evidence = gr.HTML(
                render.EVIDENCE_EMPTY,
                elem_id="cq-evidence-panel",
                js_on_load=EVIDENCE_JS,
                min_height=200,
            )

    def ask(msg: str, sess: dict[str, Any], pr: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
        yield from ask_stream(runtime, msg, sess, pr)

    ask_outputs = [question, chatbot, session, answer_json, md_dl, json_dl]

    def on_ask(trigger: Any, **api: Any) -> None:
        trigger(
            ask,
            [question, session, prefs],
            ask_outputs,
            concurrency_limit=concurrency,
            concurrency_id="answer",
            show_progress="minimal",
            **api,
        )

    on_ask(question.submit, api_name="ask")
    on_ask(send.click, api_visibility="undocumented")

    def on_cite(sess: dict[str, Any], evt: gr.EventData) -> str:
        key = str(
            getattr(evt, "_data", {}).get("cite", "") if isinstance(getattr(evt, "_data", None), dict) else ""
        )
        return evidence_html(runtime, sess, key)

    evidence.click(
        on_cite,
        [session],
        [evidence],
        api_visibility="undocumented",
        concurrency_limit=None,
        show_progress="hidden",
    )

    def on_clear() -> Any:
        s = new_session()
        return (
            s,
            [],
            render.EVIDENCE_EMPTY,
            None,
            gr.DownloadButton(value=None, interactive=False),
            gr.DownloadButton(value=None, interactive=False),
        )

    # "New conversation" and the chat's own trash button both forget the conversation.
    for trigger in (clear.click, chatbot.clear):
        trigger(
            on_clear,
            None,
            [session, chatbot, evidence, answer_json, md_dl, json_dl],
            api_visibility="undocumented",
        )
    return chatbot

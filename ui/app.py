"""citeqa web UI (Gradio): chat with clickable citations, evidence viewer, library, settings, evaluation.

Run it with ``python -m ui.app`` (or ``citeqa ui``); it serves on ``settings.host:settings.port``.

The UI talks to the core only through the public API (``Settings``, ``Index``, ``Assistant``,
``Answer``, ``CiteqaError``); all text it shows is escaped in :mod:`ui.render`.

HTTP API (see docs/ui.md): ``/ask`` is the chat event (streams; per-session history, like the page),
``/answer`` returns ``Answer.to_dict()`` for one question without touching any session.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no version check / telemetry

import gradio as gr  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from citeqa import Answer, CiteqaError, Settings  # noqa: E402

if TYPE_CHECKING:  # torch/faiss load on first use (in the background), so the page is up at once
    from citeqa import Assistant, Index

if __package__ in (None, ""):  # `python ui/app.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ui import render  # noqa: E402
    from ui.security import UploadRejected, stage_upload  # noqa: E402
else:
    from . import render  # noqa: E402
    from .security import UploadRejected, stage_upload  # noqa: E402

log = logging.getLogger("citeqa.ui")

ANSWER_MODES: list[tuple[str, str]] = [
    ("Evidence only: quotes from the documents, no language model", "extractive"),
    ("OpenAI-compatible endpoint (LLM writes the answer from retrieved passages)", "openai"),
]
UPLOAD_TYPES = [".txt", ".md", ".html", ".htm", ".pdf"]
STREAM_MIN_INTERVAL_S = 0.06

# ----------------------------------------------------------------------------- shared runtime


class Runtime:
    """Process-wide state shared by every browser session: the index and cached assistants."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.index: Index | None = None
        self.error: str | None = None
        self.status: tuple[int, int, str] = (0, 0, "Starting…")
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._library_lock = threading.Lock()  # one library change at a time
        self._assistants: OrderedDict[tuple[Any, ...], Assistant] = OrderedDict()

    # --- index lifecycle
    def start(self) -> None:
        """Open (or build) the index in the background; idempotent."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._open, name="citeqa-index", daemon=True)
            self._thread.start()

    def _progress(self, done: int, total: int, message: str) -> None:
        self.status = (int(done), int(total), str(message))

    def _open(self) -> None:
        try:
            self.status = (0, 0, "Opening the document index…")
            from citeqa import Index

            self.index = Index.open(self.settings, progress=self._progress)
            self.status = (1, 1, "Index ready")
        except CiteqaError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - shown on the page instead of a dead app
            log.exception("index failed to open")
            self.error = f"The index could not be opened ({type(e).__name__}: {e})."
        finally:
            self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.index is not None

    def settled(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the index to open (or fail); True once it has."""
        self.start()
        return self._ready.wait(timeout)

    def wait(self, poll: Any = None, interval: float = 0.25) -> Index:
        """Block until the index is open; ``poll(done, total, message)`` is called while waiting."""
        self.start()
        while not self._ready.wait(interval):
            if poll is not None:
                poll(*self.status)
        if self.index is None:
            raise CiteqaError(self.error or "The index is not available.")
        return self.index

    # --- assistants
    def assistant(self, prefs: dict[str, Any]) -> Assistant:
        index = self.wait()
        update = session_overrides(self.settings, prefs)
        key_hash = ""
        if "llm_api_key" in update:
            key_hash = hashlib.sha256(update["llm_api_key"].get_secret_value().encode()).hexdigest()
        key = tuple(sorted((k, v) for k, v in update.items() if k != "llm_api_key")) + (key_hash, id(index))
        with self._lock:
            hit = self._assistants.get(key)
            if hit is not None:
                self._assistants.move_to_end(key)
                return hit
        settings = self.settings.model_copy(update=update) if update else self.settings
        from citeqa import Assistant

        made = Assistant(index, settings)
        with self._lock:
            self._assistants[key] = made
            while len(self._assistants) > 16:
                self._assistants.popitem(last=False)
        return made

    def documents(self) -> list[dict[str, Any]]:
        return self.index.documents() if self.index is not None else []


def default_prefs(settings: Settings) -> dict[str, Any]:
    """Per-session answer settings (kept server-side in gr.State; the API key is never sent back)."""
    return {
        "answer_mode": settings.answer_mode,
        "top_k": settings.top_k,
        "llm_base_url": settings.llm_base_url,
        "llm_model": settings.llm_model,
        "llm_api_key": None,  # None: use the server's configured key
    }


def session_overrides(settings: Settings, prefs: dict[str, Any] | None) -> dict[str, Any]:
    """The ``Settings`` fields a session changed, for ``settings.model_copy(update=...)``."""
    prefs = prefs or {}
    out: dict[str, Any] = {}
    for field in ("answer_mode", "top_k", "llm_base_url", "llm_model"):
        if field in prefs and prefs[field] is not None and prefs[field] != getattr(settings, field):
            out[field] = prefs[field]
    key = prefs.get("llm_api_key")
    if isinstance(key, SecretStr) and key.get_secret_value():
        out["llm_api_key"] = key
    return out


def new_session() -> dict[str, Any]:
    return {"id": uuid.uuid4().hex[:12], "messages": [], "history": [], "answers": []}


def _export_dir(session_id: str) -> Path:
    d = Path(tempfile.gettempdir()) / "citeqa-exports" / session_id
    d.mkdir(parents=True, exist_ok=True)
    return d


def _meta_map(runtime: Runtime) -> dict[str, dict[str, Any]]:
    return {d["doc"]: d for d in runtime.documents()}


def _status_html(runtime: Runtime, prefs: dict[str, Any] | None = None) -> str:
    if runtime.error:
        return f'<div class="cq-status cq-status-bad">{render.esc(runtime.error)}</div>'
    if not runtime.ready:
        done, total, msg = runtime.status
        frac = f" ({done}/{total})" if total else ""
        return f'<div class="cq-status">Preparing the document index: {render.esc(msg)}{frac}</div>'
    docs = runtime.documents()
    units = sum(int(d.get("units", 0) or 0) for d in docs)
    mode = (prefs or {}).get("answer_mode", runtime.settings.answer_mode)
    mode_txt = {
        "extractive": "evidence only (no LLM)",
        "openai": "LLM (OpenAI-compatible endpoint)",
        "llamacpp": "LLM (local GGUF model)",
    }.get(mode, mode)
    return (
        f'<div class="cq-status"><strong>{len(docs)}</strong> documents · <strong>{units:,}</strong> '
        f"passages indexed · answers: {render.esc(mode_txt)}</div>"
    )


# ----------------------------------------------------------------------------- chat


def _assistant_msg(content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def ask_stream(
    runtime: Runtime, message: str, session: dict[str, Any] | None, prefs: dict[str, Any] | None
) -> Iterator[tuple[Any, ...]]:
    """Chat event: yields (textbox, chatbot, session, answer_json, md_file, json_file)."""
    session = dict(session or new_session())
    session["id"] = session.get("id") or uuid.uuid4().hex[:12]
    session["messages"] = list(session.get("messages", []))
    question = str(message or "")
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
        note = f"Preparing the document index ({msg}{frac})…"
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


def write_exports(runtime: Runtime, session_id: str, idx: int, ans: dict[str, Any]) -> tuple[Path, Path]:
    d = _export_dir(session_id)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    md_path = d / f"citeqa-answer-{idx + 1}-{stamp}.md"
    json_path = d / f"citeqa-answer-{idx + 1}-{stamp}.json"
    md_path.write_text(render.answer_markdown(ans, _meta_map(runtime)), encoding="utf-8")
    json_path.write_text(render.answer_json(ans), encoding="utf-8")
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
    if item is None or runtime.index is None:
        return render.render_evidence_message("That citation is not available.")
    try:
        text = runtime.index.doc_text(item["doc"])
    except (KeyError, CiteqaError):
        return render.render_evidence_message(
            f"{item.get('title') or item['doc']} is no longer in the library; "
            f"its quote was: “{item.get('quote', '')}”"
        )
    meta = _meta_map(runtime).get(item["doc"], {"doc": item["doc"], "title": item.get("title", "")})
    return render.render_evidence(
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
const reveal = () => {
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


# ----------------------------------------------------------------------------- library


def library_outputs(runtime: Runtime) -> tuple[Any, Any]:
    docs = runtime.documents()
    table = gr.Dataframe(value=render.library_rows(docs), headers=render.LIBRARY_COLUMNS)
    choices = [(f"{d.get('title') or d['doc']} ({d['doc']})", d["doc"]) for d in docs]
    return table, gr.Dropdown(choices=choices, value=None)


def add_uploads(runtime: Runtime, files: Sequence[Any] | None, progress: Any = None) -> str:
    """Stage uploaded files into ``upload_dir`` (sanitised names, size limit) and index them."""
    files = list(files or [])
    if not files:
        return render.upload_report_html([], [], [], None)
    index = runtime.wait()
    settings = runtime.settings
    staged: list[Path] = []
    dups: list[str] = []
    errors: list[tuple[str, str]] = []
    taken = {d["doc"] for d in runtime.documents()}
    for f in files:
        src = Path(f if isinstance(f, str | os.PathLike) else getattr(f, "name", str(f)))
        orig = getattr(f, "orig_name", None) or src.name
        try:
            dest, dup = stage_upload(src, Path(settings.upload_dir), settings.max_upload_mb, orig, taken)
        except UploadRejected as e:
            errors.append((Path(str(orig).replace("\\", "/")).name or "(unnamed)", str(e).split(": ", 1)[-1]))
            continue
        except OSError as e:
            errors.append((src.name, f"could not be saved ({e.strerror or e})"))
            continue
        if dup and dest.name in taken:
            dups.append(dest.name)
            continue
        taken.add(dest.name)
        staged.append(dest)
    seconds = None
    added: list[str] = []
    if staged:

        def cb(done: int, total: int, message: str) -> None:
            if progress is not None:
                progress((done, total) if total else 0.0, desc=f"Indexing: {message}")

        with runtime._library_lock:
            if progress is not None:
                progress(0.0, desc=f"Indexing {len(staged)} file(s)…")
            try:
                report = index.add_files(staged, progress=cb)
            except CiteqaError as e:
                report = None
                errors += [(p.name, str(e)) for p in staged]
        if report is not None:
            seconds = report.seconds
            added = list(report.added) + list(getattr(report, "reembedded", []) or [])
            for file, msg in report.errors:
                name = Path(str(file)).name
                msg = str(msg)
                for prefix in (f"{file}: ", f"{name}: "):
                    msg = msg[len(prefix) :] if msg.startswith(prefix) else msg
                errors.append((name, msg))
        failed = {Path(str(f)).name for f, _ in errors}
        for p in staged:  # a file that did not index is not kept around to confuse later rebuilds
            if p.name in failed and p.name not in added:
                p.unlink(missing_ok=True)
    return render.upload_report_html(added, dups, errors, seconds)


def remove_document(runtime: Runtime, doc: str | None) -> str:
    if not doc:
        return render.library_message("notice", "Choose a document to remove.")
    index = runtime.wait()
    with runtime._library_lock:
        try:
            index.remove(doc)
        except (CiteqaError, KeyError) as e:
            return render.library_message("error", str(e))
    upload_dir = Path(runtime.settings.upload_dir).resolve()
    candidate = (upload_dir / Path(doc).name).resolve()
    if candidate.parent == upload_dir and candidate.is_file():
        candidate.unlink()
    return render.library_message("ok", f"Removed {doc} from the library.")


# ----------------------------------------------------------------------------- evaluation


def evaluation_available() -> bool:
    return importlib.util.find_spec("citeqa.evaluate") is not None


def _question_sets() -> list[tuple[str, str]]:
    """Question files shipped in the repository's evals/ folder, as (label, path) choices."""
    from citeqa.config import PROJECT_ROOT

    root = PROJECT_ROOT / "evals"
    found = sorted(root.rglob("*.jsonl")) if root.is_dir() else []
    return [(str(p.relative_to(PROJECT_ROOT)), str(p)) for p in found]


def run_evaluation(
    runtime: Runtime, upload: Any, chosen: str | None, prefs: dict[str, Any] | None, progress: Any = None
) -> tuple[str, list[str], dict[str, Any]]:
    from citeqa.evaluate import run_eval

    path = Path(upload) if upload else (Path(chosen) if chosen else None)
    if path is None or not path.is_file():
        raise gr.Error("Upload a question file (.jsonl) or choose one from the list.")
    assistant = runtime.assistant(prefs or {})
    out = Path(tempfile.gettempdir()) / "citeqa-eval" / time.strftime("%Y%m%d-%H%M%S")

    def cb(done: int, total: int, *_: Any) -> None:
        if progress is not None:
            progress((done, total), desc="Answering evaluation questions")

    run = run_eval(path, assistant, out, progress=cb)
    report = getattr(run, "report_md", None)
    out_dir = Path(getattr(run, "out_dir", out))
    if report is None and (out_dir / "report.md").is_file():
        report = (out_dir / "report.md").read_text(encoding="utf-8")
    plots = getattr(run, "plots", None)
    if plots is None:
        plot_meta = (getattr(run, "metrics", {}) or {}).get("plots")
        if isinstance(plot_meta, dict):
            plots = list(plot_meta.values())
        elif isinstance(plot_meta, list):
            plots = plot_meta
        else:
            plots = []
    imgs = []
    for p in plots:
        p = Path(p)
        if not p.is_absolute():
            p = out_dir / p
        if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".svg"):
            imgs.append(str(p))
    if not imgs:
        imgs = [str(p) for p in sorted(out_dir.glob("*.png"))]
    metrics = {k: v for k, v in (getattr(run, "metrics", {}) or {}).items() if not isinstance(v, list | dict)}
    return report or "(the evaluation wrote no report)", imgs, metrics


def build_eval_tab(runtime: Runtime, prefs: gr.State) -> None:
    """Evaluate tab: run a question set through the current session's assistant and show the report."""
    if not evaluation_available():
        gr.Markdown("The evaluation module (`citeqa.evaluate`) is not installed in this build.")
        return
    gr.Markdown(
        "Run a question set (JSONL: `question`, `must_contain`, `evidence`, ...) through the assistant with "
        "this session's settings, and see the scored report."
    )
    with gr.Row():
        sets = _question_sets()
        chosen = gr.Dropdown(choices=sets, value=sets[0][1] if sets else None, label="Question set", scale=3)
        upload = gr.File(
            label="…or upload a .jsonl file",
            file_types=[".jsonl"],
            type="filepath",
            scale=2,
            elem_id="cq-eval-upload",
        )
    run_btn = gr.Button("Run evaluation", variant="primary", elem_id="cq-eval-run")
    plots = gr.Gallery(label="Plots", columns=3, height=360, object_fit="contain", elem_id="cq-eval-plots")
    report = gr.Markdown(elem_id="cq-eval-report", max_height=720, container=True)
    with gr.Accordion("Metrics (JSON)", open=False):
        metrics = gr.JSON(label="Metrics")

    def go(up: Any, ch: str | None, pr: dict[str, Any], progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
        md, imgs, m = run_evaluation(runtime, up, ch, pr, progress)
        return md, imgs, m

    run_btn.click(
        go,
        [upload, chosen, prefs],
        [report, plots, metrics],
        api_name="evaluate",
        show_progress_on=[report],
        api_visibility="undocumented",
        concurrency_limit=1,
        concurrency_id="library",
    )


# ----------------------------------------------------------------------------- layout

CSS = (Path(__file__).resolve().parent / "app.css").read_text(encoding="utf-8")


def build_app(settings: Settings | None = None, runtime: Runtime | None = None) -> gr.Blocks:
    """Build the Gradio app. The index opens in the background (see :meth:`Runtime.start`)."""
    settings = settings or Settings()
    runtime = runtime or Runtime(settings)
    # Questions answered at once (the rest wait in Gradio's queue). A `ui_concurrency` setting wins;
    # until config.py has one, CITEQA_UI_CONCURRENCY is read here.
    concurrency = settings.ui_concurrency

    with gr.Blocks(title="citeqa: literature Q&A with exact citations", analytics_enabled=False) as demo:
        demo.citeqa_runtime = runtime
        # Static initial values (deep-copied per browser session); the session id is filled in lazily.
        session = gr.State({"id": "", "messages": [], "history": [], "answers": []})
        prefs = gr.State(default_prefs(settings))
        with gr.Row(elem_id="cq-header"):
            gr.HTML(
                "<h1>citeqa</h1><p>Ask questions about your documents. Every statement links to the exact "
                "passage it comes from.</p>",
                js_on_load=None,
            )
        status = gr.HTML('<div class="cq-status">Loading…</div>', elem_id="cq-status", js_on_load=None)

        with gr.Tabs():
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
                        md_dl = gr.DownloadButton(
                            "Download answer (.md)", size="sm", interactive=False, elem_id="cq-dl-md"
                        )
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

            with gr.Tab("Library", id="library"):
                gr.Markdown(
                    f"Documents the assistant answers from. Add .txt, .md, .html or .pdf files "
                    f"(up to {settings.max_upload_mb:g} MB each); they are indexed incrementally."
                )
                docs_table = gr.Dataframe(
                    headers=render.LIBRARY_COLUMNS,
                    value=[],
                    interactive=False,
                    wrap=True,
                    elem_id="cq-library",
                    label="Indexed documents",
                    column_widths=["34%", "11%", "15%", "10%", "8%", "7%", "15%"],
                )
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        files = gr.File(
                            label="Add documents",
                            file_count="multiple",
                            file_types=UPLOAD_TYPES,
                            type="filepath",
                            elem_id="cq-upload",
                        )
                        add_btn = gr.Button("Add to library", variant="primary", elem_id="cq-add")
                    with gr.Column(scale=2):
                        remove_dd = gr.Dropdown(
                            label="Remove a document", choices=[], elem_id="cq-remove-choice"
                        )
                        remove_btn = gr.Button("Remove", variant="stop", elem_id="cq-remove")
                        refresh_btn = gr.Button("Refresh list", size="sm")
                upload_report = gr.HTML(elem_id="cq-upload-report", js_on_load=None)

            with gr.Tab("Settings", id="settings"):
                gr.Markdown("These settings apply to this browser session only.")
                mode = gr.Radio(
                    ANSWER_MODES,
                    value=settings.answer_mode
                    if settings.answer_mode in {"extractive", "openai"}
                    else "extractive",
                    label="Answer mode",
                    elem_id="cq-mode",
                )
                with gr.Group():
                    base_url = gr.Textbox(
                        label="Endpoint base URL", value=settings.llm_base_url, elem_id="cq-url"
                    )
                    model = gr.Textbox(label="Model", value=settings.llm_model, elem_id="cq-model")
                    api_key = gr.Textbox(
                        label="API key",
                        type="password",
                        value="",
                        placeholder="leave empty to keep the current key",
                        elem_id="cq-key",
                    )
                top_k = gr.Slider(
                    1,
                    30,
                    value=settings.top_k,
                    step=1,
                    label="Passages retrieved per question",
                    elem_id="cq-topk",
                )
                save = gr.Button("Apply to this session", variant="primary", elem_id="cq-apply")
                settings_note = gr.Markdown(elem_id="cq-settings-note")

            with gr.Tab("Evaluate", id="evaluate"):
                build_eval_tab(runtime, prefs)

        # ---------------------------------------------------------------- events
        def on_load(pr: dict[str, Any], progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            def poll(done: int, total: int, message: str) -> None:
                progress((done, total) if total else 0.0, desc=message)

            with contextlib.suppress(CiteqaError):  # the status banner shows the error
                runtime.wait(poll)
            table, dd = library_outputs(runtime)
            return _status_html(runtime, pr), table, dd, gr.skip()

        demo.load(
            on_load,
            [prefs],
            [status, docs_table, remove_dd, chatbot],
            api_visibility="undocumented",
            concurrency_limit=None,
            show_progress_on=[chatbot],
        )

        def ask(msg: str, sess: dict[str, Any], pr: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
            yield from ask_stream(runtime, msg, sess, pr)

        ask_outputs = [question, chatbot, session, answer_json, md_dl, json_dl]
        question.submit(
            ask,
            [question, session, prefs],
            ask_outputs,
            api_name="ask",
            concurrency_limit=concurrency,
            concurrency_id="answer",
            show_progress="minimal",
        )
        send.click(
            ask,
            [question, session, prefs],
            ask_outputs,
            api_visibility="undocumented",
            concurrency_limit=concurrency,
            concurrency_id="answer",
            show_progress="minimal",
        )

        def on_cite(sess: dict[str, Any], evt: gr.EventData) -> str:
            key = str(
                getattr(evt, "_data", {}).get("cite", "")
                if isinstance(getattr(evt, "_data", None), dict)
                else ""
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

        clear.click(
            on_clear,
            None,
            [session, chatbot, evidence, answer_json, md_dl, json_dl],
            api_visibility="undocumented",
        )
        chatbot.clear(  # the chat's own trash button: forget the conversation too
            on_clear,
            None,
            [session, chatbot, evidence, answer_json, md_dl, json_dl],
            api_visibility="undocumented",
        )

        def on_add(fs: list[Any] | None, pr: dict[str, Any], progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            report = add_uploads(runtime, fs, progress)
            table, dd = library_outputs(runtime)
            return report, table, dd, None, _status_html(runtime, pr)

        add_btn.click(
            on_add,
            [files, prefs],
            [upload_report, docs_table, remove_dd, files, status],
            api_name="add_documents",
            api_visibility="undocumented",
            concurrency_limit=1,
            concurrency_id="library",
        )

        def on_remove(doc: str | None, pr: dict[str, Any]) -> Any:
            msg = remove_document(runtime, doc)
            table, dd = library_outputs(runtime)
            return msg, table, dd, _status_html(runtime, pr)

        remove_btn.click(
            on_remove,
            [remove_dd, prefs],
            [upload_report, docs_table, remove_dd, status],
            js="(doc, pr) => [doc && confirm('Remove ' + doc + ' from the library?') ? doc : null, pr]",
            api_visibility="undocumented",
            concurrency_limit=1,
            concurrency_id="library",
        )

        def on_refresh(pr: dict[str, Any]) -> Any:
            table, dd = library_outputs(runtime)
            return table, dd, _status_html(runtime, pr)

        refresh_btn.click(on_refresh, [prefs], [docs_table, remove_dd, status], api_visibility="undocumented")

        def on_save(
            m: str, url: str, mdl: str, key: str, k: float, pr: dict[str, Any]
        ) -> tuple[dict[str, Any], str, str, str]:
            pr = dict(pr or default_prefs(settings))
            url = (url or "").strip()
            if m == "openai" and not url.lower().startswith(("http://", "https://")):
                raise gr.Error("The endpoint base URL must start with http:// or https://")
            pr.update(
                answer_mode=m,
                llm_base_url=url or settings.llm_base_url,
                llm_model=(mdl or "").strip() or settings.llm_model,
                top_k=int(k),
            )
            if key:
                pr["llm_api_key"] = SecretStr(key)
            has_key = "set for this session" if pr.get("llm_api_key") else "server default"
            mode_txt = dict((v, lbl) for lbl, v in ANSWER_MODES).get(m, m)
            note = f"Applied. Answer mode: **{mode_txt}**; passages per question: **{int(k)}**" + (
                f"; endpoint `{pr['llm_base_url']}`, model `{pr['llm_model']}`, API key: {has_key}."
                if m != "extractive"
                else "."
            )
            return pr, "", note, _status_html(runtime, pr)

        save.click(
            on_save,
            [mode, base_url, model, api_key, top_k, prefs],
            [prefs, api_key, settings_note, status],
            api_visibility="private",
        )

        # JSON endpoint for programs: one stateless question -> Answer.to_dict()
        def answer(question: str, history: list[list[str]] | None = None, top_k: int | None = None) -> dict:
            """Answer one question from the indexed documents; returns Answer.to_dict()."""
            pr = default_prefs(settings)
            if top_k:
                pr["top_k"] = max(1, min(100, int(top_k)))
            hist = [(str(u), str(a)) for u, a in (history or [])]
            try:
                return runtime.assistant(pr).ask(question, history=hist).to_dict()
            except CiteqaError as e:
                raise gr.Error(str(e)) from e

        gr.api(answer, api_name="answer", concurrency_limit=concurrency, concurrency_id="answer")

    demo.queue(default_concurrency_limit=concurrency)
    return demo


def launch_kwargs(settings: Settings) -> dict[str, Any]:
    """App-level options that Gradio 6 takes in ``launch()`` rather than ``Blocks()``."""
    return {
        "server_name": settings.host,
        "server_port": settings.port,
        "css": CSS,
        # System fonts only: nothing is fetched, and no bundled web font is needed.
        "theme": gr.themes.Default(
            primary_hue="blue",
            font=["Inter", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "Liberation Sans", "sans-serif"],
            font_mono=["SFMono-Regular", "Consolas", "Liberation Mono", "DejaVu Sans Mono", "monospace"],
        ),
        "max_file_size": int(settings.max_upload_mb * 1024 * 1024),
        "show_error": True,
        "footer_links": ["api"],
        "run_history": False,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="citeqa ui", description="Serve the citeqa chat UI.")
    parser.add_argument("--host", help="bind address (default: settings.host / CITEQA_HOST)")
    parser.add_argument("--port", type=int, help="port (default: settings.port / CITEQA_PORT)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    update = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
    if update:
        settings = settings.model_copy(update=update)
    runtime = Runtime(settings)
    runtime.start()  # build/open the index right away; pages show its progress
    demo = build_app(settings, runtime)
    print(f"citeqa UI on http://{settings.host}:{settings.port}", flush=True)
    demo.launch(**launch_kwargs(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

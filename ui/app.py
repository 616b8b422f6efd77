"""citeqa web UI (Gradio): chat with clickable citations, evidence viewer, library, settings, evaluation.

Run it with ``python -m ui.app`` (or ``citeqa ui``); it serves on ``settings.host:settings.port``.

The UI talks to the core only through the public API (``Settings``, ``Index``, ``Assistant``,
``Answer``, ``CiteqaError``); all text it shows is escaped in :mod:`ui.render`.

HTTP API (see docs/ui.md): ``/ask`` is the chat event (streams; per-session history, like the page),
``/answer`` returns ``Answer.to_dict()`` for one question without touching any session.

This module assembles the page and serves it; each tab lives in its own module: :mod:`ui.chat`,
:mod:`ui.library`, :mod:`ui.settings_tab`, :mod:`ui.evaluate_tab`, sharing the state in :mod:`ui.runtime`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no version check / telemetry

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from citeqa import CiteqaError, Settings  # noqa: E402
from citeqa.inputs import parse_history, parse_top_k, question_text  # noqa: E402

if __package__ in (None, ""):  # `python ui/app.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ui.chat import build_chat_tab  # noqa: E402
from ui.evaluate_tab import build_eval_tab  # noqa: E402
from ui.library import build_library_tab, library_outputs  # noqa: E402
from ui.runtime import Runtime, default_prefs, status_html, user_error  # noqa: E402
from ui.security import BodyLimit, is_loopback, load_logins  # noqa: E402
from ui.settings_tab import build_settings_tab  # noqa: E402

log = logging.getLogger("citeqa.ui")
CSS = (Path(__file__).resolve().parent / "app.css").read_text(encoding="utf-8")


def build_app(settings: Settings | None = None, runtime: Runtime | None = None) -> gr.Blocks:
    """Build the Gradio app. The index opens in the background (see :meth:`Runtime.start`)."""
    settings = settings or Settings()
    runtime = runtime or Runtime(settings)
    # Questions answered at once (the rest wait in Gradio's queue). A `ui_concurrency` setting wins;
    # until config.py has one, CITEQA_UI_CONCURRENCY is read here.
    concurrency = settings.ui_concurrency

    # Gradio's own copies of served files (answer downloads) are deleted hourly once an hour old.
    with gr.Blocks(title="citeqa: literature Q&A with exact citations", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
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

        with gr.Tabs():  # each tab wires its own events
            chatbot = build_chat_tab(runtime, session, prefs, concurrency)
            docs_table, remove_dd = build_library_tab(runtime, settings, prefs, status)
            build_settings_tab(runtime, settings, prefs, status)
            build_eval_tab(runtime, prefs)

        # ---------------------------------------------------------------- page-wide events
        def on_load(pr: dict[str, Any], progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            # The status line follows start-up (loading the model, building or opening the index) until
            # the index is ready or has failed; an error is shown there too.
            while not runtime.settled(0.5):
                done, total, message = runtime.status
                progress((done, total) if total else 0.0, desc=message)
                yield status_html(runtime, pr), gr.skip(), gr.skip(), gr.skip()
            table, dd = library_outputs(runtime)
            yield status_html(runtime, pr), table, dd, gr.skip()

        demo.load(
            on_load,
            [prefs],
            [status, docs_table, remove_dd, chatbot],
            api_visibility="undocumented",
            concurrency_limit=None,
            show_progress_on=[chatbot],
        )

        # JSON endpoint for programs: one stateless question -> Answer.to_dict()
        def answer(question: str, history: list[list[str]] | None = None, top_k: int | None = None) -> dict:
            """Answer one question from the indexed documents; returns Answer.to_dict()."""
            pr = default_prefs(settings)
            try:
                k = parse_top_k(top_k)
                if k is not None:
                    pr["top_k"] = k
                hist = parse_history(history, "history")
                return runtime.assistant(pr).ask(question_text(question), history=hist).to_dict()
            except CiteqaError as e:
                raise user_error(e) from None

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
        "app_kwargs": {"middleware": [Middleware(BodyLimit, limit=settings.max_request_kb * 1024)]},
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
    try:
        logins = load_logins(settings.ui_users.get_secret_value(), settings.ui_users_file)
    except CiteqaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not logins and not is_loopback(settings.host):
        log.warning("serving on %s with no login: anyone who can reach this address can read the library, "
                    "upload and remove documents. Set CITEQA_UI_USERS or CITEQA_UI_USERS_FILE.", settings.host)
    runtime = Runtime(settings)
    runtime.start()  # build/open the index right away; pages show its progress
    demo = build_app(settings, runtime)
    print(f"citeqa UI on http://{settings.host}:{settings.port}"
          + (f" ({len(logins)} login(s) required)" if logins else ""), flush=True)
    kwargs = launch_kwargs(settings)
    if logins:
        kwargs["auth"] = logins
    demo.launch(**kwargs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Library tab: list the indexed documents, add uploads (staged safely, indexed incrementally), remove one."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from citeqa import CiteqaError, Settings

from . import render
from .runtime import Runtime, status_html
from .security import UploadRejected, stage_upload

UPLOAD_TYPES = [".txt", ".md", ".html", ".htm", ".pdf"]


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
    runtime.wait()
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
            # A writer of its own: under the index folder's lock it merges with the build published now
            # (which a CLI run may have changed), and questions running meanwhile keep their build.
            writer = runtime.current().fork()
            try:
                report = writer.add_files(staged, progress=cb)
                runtime.adopt(writer)
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
    runtime.wait()
    with runtime._library_lock:
        try:
            writer = runtime.current().fork()
            writer.remove(doc)
            runtime.adopt(writer)
        except (CiteqaError, KeyError) as e:
            return render.library_message("error", str(e))
    upload_dir = Path(runtime.settings.upload_dir).resolve()
    candidate = (upload_dir / Path(doc).name).resolve()
    if candidate.parent == upload_dir and candidate.is_file():
        candidate.unlink()
    return render.library_message("ok", f"Removed {doc} from the library.")


def build_library_tab(
    runtime: Runtime, settings: Settings, prefs: gr.State, status: gr.HTML
) -> tuple[gr.Dataframe, gr.Dropdown]:
    """The library tab: document table, upload, remove, and their events.

    Each event also refreshes the table, the remove choices and the status banner.
    Returns ``(table, remove choices)`` for the page-load event.
    """
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
                remove_dd = gr.Dropdown(label="Remove a document", choices=[], elem_id="cq-remove-choice")
                remove_btn = gr.Button("Remove", variant="stop", elem_id="cq-remove")
                refresh_btn = gr.Button("Refresh list", size="sm")
        upload_report = gr.HTML(elem_id="cq-upload-report", js_on_load=None)

    def on_add(fs: list[Any] | None, pr: dict[str, Any], progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
        report = add_uploads(runtime, fs, progress)
        table, dd = library_outputs(runtime)
        return report, table, dd, None, status_html(runtime, pr)

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
        return msg, table, dd, status_html(runtime, pr)

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
        return table, dd, status_html(runtime, pr)

    refresh_btn.click(on_refresh, [prefs], [docs_table, remove_dd, status], api_visibility="undocumented")
    return docs_table, remove_dd

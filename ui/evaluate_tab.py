"""Evaluate tab: run a question set through the session's assistant (``citeqa.evaluate``) and show the report."""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr

from .runtime import Runtime


def evaluation_available() -> bool:
    return importlib.util.find_spec("citeqa.evaluate") is not None


def _question_sets() -> list[tuple[str, str]]:
    """Question files shipped in the repository's evals/ folder, as (label, path) choices."""
    from citeqa import PROJECT_ROOT

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
    with gr.Tab("Evaluate", id="evaluate"):
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

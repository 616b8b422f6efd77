"""Settings tab: answer mode, LLM endpoint and passages per question, for this browser session only.

The chosen values live server-side in the session's ``prefs`` state; an API key is never sent back.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from pydantic import SecretStr

from citeqa import Settings

from .runtime import Runtime, default_prefs, key_note, status_html

ANSWER_MODES: list[tuple[str, str]] = [
    ("Evidence only: quotes from the documents, no language model", "extractive"),
    ("OpenAI-compatible endpoint (LLM writes the answer from retrieved passages)", "openai"),
]


def build_settings_tab(runtime: Runtime, settings: Settings, prefs: gr.State, status: gr.HTML) -> None:
    """The settings tab, initialised from the server's settings.

    *Apply* validates and stores the session's preferences, clears the key field and refreshes the banner.
    """
    with gr.Tab("Settings", id="settings"):
        gr.Markdown("These settings apply to this browser session only.")
        mode = gr.Radio(
            ANSWER_MODES,
            value=settings.answer_mode if settings.answer_mode in {"extractive", "openai"} else "extractive",
            label="Answer mode",
            elem_id="cq-mode",
        )
        with gr.Group():
            base_url = gr.Textbox(label="Endpoint base URL", value=settings.llm_base_url, elem_id="cq-url")
            model = gr.Textbox(label="Model", value=settings.llm_model, elem_id="cq-model")
            api_key = gr.Textbox(
                label="API key",
                type="password",
                value="",
                placeholder="leave empty to keep the current key (the server's own is used only with its endpoint)",
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

    def on_save(
        m: str, url: str, mdl: str, key: str, k: float, pr: dict[str, Any]
    ) -> tuple[dict[str, Any], str, str, str]:
        pr = dict(pr or default_prefs(settings))
        url = (url or "").strip()
        if m == "openai" and not url.lower().startswith(("http://", "https://")):
            raise gr.Error("The endpoint base URL must start with http:// or https://", print_exception=False)
        pr.update(
            answer_mode=m,
            llm_base_url=url or settings.llm_base_url,
            llm_model=(mdl or "").strip() or settings.llm_model,
            top_k=int(k),
        )
        if key:
            pr["llm_api_key"] = SecretStr(key)
        has_key = key_note(settings, pr)
        mode_txt = dict((v, lbl) for lbl, v in ANSWER_MODES).get(m, m)
        note = f"Applied. Answer mode: **{mode_txt}**; passages per question: **{int(k)}**" + (
            f"; endpoint `{pr['llm_base_url']}`, model `{pr['llm_model']}`, API key: {has_key}."
            if m != "extractive"
            else "."
        )
        return pr, "", note, status_html(runtime, pr)

    save.click(
        on_save,
        [mode, base_url, model, api_key, top_k, prefs],
        [prefs, api_key, settings_note, status],
        api_visibility="private",
    )

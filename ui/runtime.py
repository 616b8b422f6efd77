"""Process-wide UI state: the index (opened in the background), cached assistants, per-session preferences.

Shared by every tab; talks to the core only through the public API (``Settings``, ``Index``,
``Assistant``, ``CiteqaError``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from citeqa import CiteqaError, Settings

from . import render

if TYPE_CHECKING:  # torch/faiss load on first use (in the background), so the page is up at once
    from citeqa import Assistant, Index

log = logging.getLogger("citeqa.ui")
LOADING_MODEL = "Loading the model…"


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
            # The encoder first: opening a built index takes milliseconds, loading the model seconds (more
            # the first time, when the ONNX export is made), and building an index needs the model anyway.
            self.status = (0, 0, LOADING_MODEL)
            t0 = time.perf_counter()
            from citeqa.embed import default_embedder

            load = getattr(default_embedder(self.settings), "load", None)
            if load is not None:
                load()
            log.info("model loaded in %.1f s", time.perf_counter() - t0)
            self.status = (0, 0, "Opening the document index…")
            from citeqa import Index

            index = Index.open(self.settings, progress=self._progress)
            # The answer models too, so the first question does not wait for them.
            self.status = (0, 0, "Loading the answer models…")
            from citeqa import Assistant

            Assistant(index, self.settings).warm_up()
            self.index = index
            self.status = (1, 1, "Index ready")
            log.info("ready in %.1f s", time.perf_counter() - t0)
            # Loading checked sizes (and hashes of a small build); hash a large one while serving.
            threading.Thread(target=self._verify, name="citeqa-verify", daemon=True).start()
        except CiteqaError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - shown on the page instead of a dead app
            log.exception("index failed to open")
            self.error = f"The index could not be opened ({type(e).__name__}: {e})."
        finally:
            self._ready.set()

    def _verify(self) -> None:
        from citeqa.errors import IndexDamaged

        index = self.index
        problems = index.damage() if index is not None else []
        if problems:
            e = IndexDamaged(str(self.settings.index_path()), "; ".join(problems[:3]))
            log.error("index: %s", e)
            self.error = str(e)  # shown in the status banner

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

    def current(self) -> Index:
        """The index, moved to the newest published build when another writer (a CLI `citeqa index`, a
        second UI process) published one since: a ``stat`` per call when nothing changed. Questions
        already running keep the build they started on."""
        index = self.wait()
        try:
            newer = index.newer()
        except CiteqaError as e:  # a damaged new build: keep serving the one that works
            log.warning("index: a newer build could not be loaded; still serving %s (%s)", index.path, e)
            return index
        if newer is None:
            return index
        with self._lock:
            if self.index is index:
                self.index = newer
                log.info("index: now serving build %s", newer.path)
            return self.index or newer

    def adopt(self, index: Index) -> None:
        """Serve ``index`` (a build this process just published) from now on."""
        with self._lock:
            self.index = index

    # --- assistants
    def assistant(self, prefs: dict[str, Any]) -> Assistant:
        index = self.current()
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
        return self.current().documents() if self.ready else []


def user_error(e: CiteqaError) -> Exception:
    """A ``gr.Error`` for a message meant for the user: logged as one line, not as a traceback."""
    import gradio as gr

    log.info("%s: %s", type(e).__name__, e)
    return gr.Error(str(e), print_exception=False)


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
    elif "llm_base_url" in out:
        # Another endpoint and no key of the session's own: the server's key stays with the server's
        # endpoint (Settings.llm_key enforces the same for any copy).
        out["llm_api_key"] = SecretStr("not-needed")
    return out


def key_note(settings: Settings, prefs: dict[str, Any]) -> str:
    """Which API key a session's LLM requests carry, in words (never the key itself)."""
    if prefs.get("llm_api_key"):
        return "set for this session"
    if "llm_base_url" in session_overrides(settings, prefs):
        return "none (the server's key is only sent to the server's own endpoint; enter a key for this one)"
    return "server default"


def new_session() -> dict[str, Any]:
    return {"id": uuid.uuid4().hex[:12], "messages": [], "history": [], "answers": []}


def meta_map(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Library metadata by document name."""
    return {d["doc"]: d for d in runtime.documents()}


def status_html(runtime: Runtime, prefs: dict[str, Any] | None = None) -> str:
    """The status banner: index progress or error, else document/passage counts and the answer mode."""
    if runtime.error:
        return f'<div class="cq-status cq-status-bad">{render.esc(runtime.error)}</div>'
    if not runtime.ready:
        done, total, msg = runtime.status
        if msg == LOADING_MODEL:
            return f'<div class="cq-status">{render.esc(msg)} Questions asked now are answered when it is ready.</div>'
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

"""Upload hygiene for the web UI: safe file names, confinement to the upload folder, size limits.

Pure functions (no Gradio), so they are unit-tested directly in ``tests/test_ui_security.py``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import unicodedata
from pathlib import Path
from typing import Any

from citeqa.errors import ConfigError

ALLOWED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
MAX_NAME_CHARS = 120

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RUNS = re.compile(r"([._-])[._-]+")


class UploadRejected(ValueError):
    """An uploaded file cannot be accepted; ``str(exc)`` is the message shown to the user."""


def safe_filename(name: str, allowed: tuple[str, ...] = ALLOWED_SUFFIXES) -> str:
    """Reduce a client-supplied file name to a safe base name.

    Only the last path component is kept (both ``/`` and ``\\`` count as separators), the name is
    transliterated to ASCII, every character outside ``[A-Za-z0-9._-]`` becomes ``_``, leading dots
    are stripped (no hidden files, no ``..``) and the length is capped with the suffix preserved.
    Raises :class:`UploadRejected` if the suffix is not one of ``allowed`` or nothing usable is left.
    """
    raw = str(name or "").replace("\\", "/").replace("\x00", "")
    base = raw.rstrip("/").rsplit("/", 1)[-1].strip()
    shown = base or raw or "(unnamed)"
    stem, dot, suffix = base.rpartition(".")
    suffix = _UNSAFE.sub("", suffix).lower() if dot else ""
    if f".{suffix}" not in allowed:
        kinds = ", ".join(s.lstrip(".") for s in allowed)
        raise UploadRejected(f"{shown}: unsupported file type; upload one of: {kinds}.")
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    stem = _RUNS.sub(r"\1", _UNSAFE.sub("_", ascii_stem)).strip("._- ")
    if not stem:
        stem = "upload"
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1].rstrip("._- ") or "upload"
    return f"{stem}.{suffix}"


def check_size(name: str, size_bytes: int, max_mb: float) -> None:
    """Raise :class:`UploadRejected` with a readable message if the file exceeds ``max_mb``."""
    if size_bytes > max_mb * 1024 * 1024:
        raise UploadRejected(
            f"{name} is {size_bytes / (1024 * 1024):.1f} MB; the upload limit is {max_mb:g} MB."
        )
    if size_bytes == 0:
        raise UploadRejected(f"{name} is empty.")


def confined_path(upload_dir: Path, name: str) -> Path:
    """``upload_dir / name``, guaranteed to stay inside ``upload_dir`` (raises otherwise)."""
    root = Path(upload_dir).resolve()
    target = (root / name).resolve()
    if target.parent != root:
        raise UploadRejected(f"{name}: invalid file name.")
    return target


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stage_upload(
    src: str | Path,
    upload_dir: Path,
    max_mb: float,
    original_name: str | None = None,
    taken: set[str] | frozenset[str] = frozenset(),
) -> tuple[Path, bool]:
    """Copy an uploaded temp file into ``upload_dir`` under a sanitised, unique name.

    Returns ``(path, is_duplicate)``: ``is_duplicate`` is True when a byte-identical file with the
    same name is already there (nothing is copied). ``taken`` holds names already used elsewhere
    (e.g. documents in the index), which are avoided as well.
    """
    src = Path(src)
    name = safe_filename(original_name or src.name)
    check_size(name, src.stat().st_size, max_mb)
    upload_dir = Path(upload_dir)
    upload_dir.mkdir(parents=True, exist_ok=True)
    stem, _, suffix = name.rpartition(".")
    candidate = name
    for i in range(2, 10_000):
        dest = confined_path(upload_dir, candidate)
        if dest.exists() and _digest(dest) == _digest(src):
            return dest, True
        if not dest.exists() and candidate not in taken:
            break
        candidate = f"{stem}-{i}.{suffix}"
    else:  # pragma: no cover - 10k collisions
        raise UploadRejected(f"{name}: too many files with this name.")
    tmp = dest.with_name(f".{dest.name}.part")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)
    return dest, False


# ------------------------------------------------------------------------------ login for shared deployments

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    return host.strip().lower() in LOOPBACK_HOSTS or host.strip().startswith("127.")


def _parse_logins(lines: list[str], where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            raise ConfigError(f"{where}, entry {n}: expected 'user:password' (the password is not shown here).")
        out.append((user.strip(), password))
    return out


def load_logins(users: str, users_file: str) -> list[tuple[str, str]]:
    """UI logins from ``CITEQA_UI_USERS`` ('user:password' pairs, comma or newline separated) and from
    ``CITEQA_UI_USERS_FILE`` (one pair per line, ``#`` comments). Empty: no login."""
    logins = _parse_logins(users.replace(",", "\n").splitlines(), "CITEQA_UI_USERS")
    if users_file:
        try:
            text = Path(users_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"UI users file {users_file} cannot be read ({e}); fix CITEQA_UI_USERS_FILE.") from e
        logins += _parse_logins(text.splitlines(), f"UI users file {users_file}")
        if not logins:
            raise ConfigError(f"UI users file {users_file} holds no 'user:password' line.")
    return logins


# ------------------------------------------------------------------------------ request size limit


class BodyLimit:
    """ASGI middleware: request bodies over ``limit`` bytes get 413, except file uploads (Gradio limits
    those to ``max_upload_mb`` itself). A body without a Content-Length is cut off at the limit."""

    def __init__(self, app: Any, limit: int, exempt: tuple[str, ...] = ("/upload",)) -> None:
        self.app, self.limit, self.exempt = app, limit, exempt

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or str(scope.get("path", "")).endswith(self.exempt):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            body = (f'{{"error": "request body over {self.limit:,} bytes; send a shorter question and '
                    f'history"}}').encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited, send)

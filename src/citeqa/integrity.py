"""Checksums of index files, and the one-writer-per-index-folder lock.

Every file of a build is listed in its manifest with its size and SHA-256. Loading checks the sizes
always, and the hashes when the build is small (``Settings.verify_on_load_mb``); ``citeqa index --verify``
hashes everything; a build that is about to be carried into the next one is always hashed in full, so a
damaged file is never copied forward.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
LOCK_FILE = "LOCK"
_held: set[Path] = set()  # index folders whose writer lock this process holds


class Damage(ValueError):
    """A build's files do not match its manifest (the loader turns this into ``IndexDamaged``)."""


def _files(build: Path) -> list[Path]:
    return sorted(p for p in build.rglob("*") if p.is_file() and p.name != MANIFEST)


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def checksums(build: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size": bytes, "sha256": hex}}`` for every file of a build but its manifest."""
    return {p.relative_to(build).as_posix(): {"size": p.stat().st_size, "sha256": sha256(p)} for p in _files(build)}


def total_size(manifest: dict[str, Any]) -> int:
    sums = manifest.get("checksums") or {}
    return sum(int(v.get("size", 0)) for v in sums.values() if isinstance(v, dict))


def verify(build: Path, manifest: dict[str, Any], full: bool) -> list[str]:
    """Problems found in ``build`` (empty when it is intact). Sizes always; hashes when ``full``.

    A build written before checksums existed has none to check; it passes (its structure is still
    checked by the loader).
    """
    sums = manifest.get("checksums")
    if sums is None:
        return []
    if not isinstance(sums, dict):
        return ["manifest.json: the checksum table is damaged"]
    problems: list[str] = []
    for rel, want in sorted(sums.items()):
        path = build / rel
        if not isinstance(want, dict) or "size" not in want or "sha256" not in want:
            problems.append(f"manifest.json: the checksum entry of {rel} is damaged")
            continue
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{rel}: file is missing")
            continue
        if size != int(want["size"]):
            problems.append(f"{rel}: {size:,} bytes, the manifest says {int(want['size']):,}")
        elif full and sha256(path) != want["sha256"]:
            problems.append(f"{rel}: contents changed since it was written (checksum mismatch)")
    return problems


def check(build: Path, manifest: dict[str, Any], full: bool) -> None:
    problems = verify(build, manifest, full)
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise Damage("; ".join(problems[:3]) + more)


# --- the writer lock -----------------------------------------------------------------------------------
def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid else "another process"


@contextmanager
def writer_lock(root: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the index folder's writer lock (``flock`` on ``root/LOCK``) for the body.

    One build at a time per folder, across processes and threads (each call opens its own descriptor).
    A second writer waits; ``on_wait(message)`` is told so once. The lock goes with the process, so a
    killed build never leaves it held.
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(f"waiting for another index build on {root} ({_holder(fd)}) to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held.add(root.resolve())
        remove_debris(root)
        try:
            yield
        finally:
            _held.discard(root.resolve())
    finally:
        os.close(fd)  # releases the lock


def holds_lock(root: Path) -> bool:
    return root.resolve() in _held


def remove_debris(root: Path, keep: Path | None = None) -> None:
    """Under the writer lock no other build is running, so every unpublished build directory is debris
    (a killed or failed build's half-written files) and every build but the live one is garbage."""
    builds = root / "builds"
    if not builds.is_dir():
        return
    try:
        live = (root / "CURRENT").read_text(encoding="utf-8").strip()
    except OSError:
        live = ""
    for d in builds.iterdir():
        if d.is_dir() and d.name != live and d != keep:
            shutil.rmtree(d, ignore_errors=True)

"""What an index run was given: the files to read, and every path that cannot be used, with the reason.

An index run must never mistake "I could not find or read what you gave me" for "the library is now
empty": :func:`gather` names every missing path, symbolic-link loop, empty folder and folder entry that is
not a file, so :class:`citeqa.index.Index` can refuse the run instead of removing documents.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from citeqa import store
from citeqa.errors import CiteqaError
from citeqa.ingest.loaders import SUPPORTED

KINDS = ", ".join(sorted(SUPPORTED))


@dataclass
class Sources:
    files: list[Path] = field(default_factory=list)
    origin: dict[Path, str] = field(default_factory=dict)  # file -> the given path it was found under
    unusable: list[tuple[str, str]] = field(default_factory=list)  # given paths that cannot be read at all
    empty: list[tuple[str, str]] = field(default_factory=list)  # given folders with no document in them
    skipped: list[tuple[str, str]] = field(default_factory=list)  # folder entries that are not files


class SourcesRefused(CiteqaError):
    """An index run was refused because paths it was given are missing, empty or unreadable."""

    def __init__(self, problems: list[tuple[str, str]], kept: int, prune_helps: bool) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}: {why}" for p, why in problems)
        hint = ("Check the paths. The index is unchanged"
                f" ({kept} document{'s' if kept != 1 else ''}).")
        if prune_helps:
            hint += (" To remove documents on purpose, run `citeqa index --prune PATHS` (the library becomes "
                     "exactly PATHS) or `citeqa remove DOC`.")
        super().__init__(f"nothing was indexed:\n{lines}\n{hint}")


def _stat_problem(path: Path) -> str | None:
    """Why ``path`` cannot be followed, or None if it can."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself); point it at a real file or folder"
        if e.errno == errno.ENOENT:
            if os.path.islink(path):
                return f"broken symbolic link (its target {os.readlink(path)!r} does not exist)"
            return "no such file or directory"
        if e.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        return f"cannot be read ({e.strerror or e})"
    return None


def _walk(folder: Path, out: Sources) -> None:
    given = str(folder)
    try:
        entries = sorted(folder.iterdir())
    except OSError as e:
        out.unusable.append((given, f"folder cannot be listed ({e.strerror or e})"))
        return
    found = 0
    for f in entries:
        if f.name.startswith(".") or f.suffix.lower() == ".toml":
            continue  # hidden files and the catalog
        problem = _stat_problem(f)
        if problem is not None:
            out.skipped.append((str(f), f"{problem}; not indexed"))
            continue
        mode = os.stat(f).st_mode
        if stat.S_ISDIR(mode):
            if f.suffix.lower() in SUPPORTED:
                out.skipped.append((str(f), "is a folder, not a file; not indexed (sub-folders are not "
                                    "walked: give its path to index the files inside)"))
            continue  # other sub-folders are not walked
        if not stat.S_ISREG(mode):
            out.skipped.append((str(f), "not a regular file (a pipe, socket or device); not indexed"))
            continue
        out.files.append(f)
        out.origin[f] = given
        found += 1
    if not found:
        out.empty.append((given, f"folder holds no documents to index ({KINDS})"))


def gather(paths: Iterable[Path]) -> Sources:
    """Expand the paths of an index run: folders are listed (not recursively; hidden files and the
    catalog skipped), files are taken as they are. Nothing is read yet."""
    out = Sources()
    for p in paths:
        p = Path(p)
        problem = _stat_problem(p)
        if problem is not None:
            out.unusable.append((str(p), problem))
        elif p.is_dir():
            _walk(p, out)
        elif not p.is_file():
            out.unusable.append((str(p), "not a regular file (a pipe, socket or device)"))
        else:
            out.files.append(p)
            out.origin[p] = str(p)
    return out


def add_previous_sources(root: Path, src: Sources, errors: list[tuple[str, str]]) -> None:
    """For ``--rebuild``: the documents of the published index are re-read from the files they were
    indexed from (read from its manifest, which may be all that is left of a damaged build)."""
    try:
        files = json.loads((store.current_build(root) / "manifest.json").read_text(encoding="utf-8"))["files"]
        entries = [(str(n), str(e.get("source", ""))) for n, e in files.items()]
    except (CiteqaError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    given = {f.name for f in src.files}
    for name, source in entries:
        path = Path(source)
        if name in given:
            continue
        if source and path.name == name and path.is_file():
            src.files.append(path)
            src.origin[path] = "(indexed earlier)"
        else:
            errors.append((name, f"its source file {source or '(unknown)'} is gone, so the rebuilt "
                                        "index does not hold it; index the document again to restore it"))


def refuse_if_nothing_read(src: Sources, read_names: set[str], errors: list[tuple[str, str]], kept: int) -> None:
    """Refuse a run given an empty folder, or a path none of whose files could be read."""
    given: dict[str, int] = {}
    for origin in src.origin.values():
        given[origin] = given.get(origin, 0) + 1
    read = {origin for f, origin in src.origin.items() if f.name in read_names}
    problems = list(src.empty)
    for origin, n in given.items():
        if origin not in read and origin != "(indexed earlier)":
            failed = [f"{Path(p).name}: {why}" for p, why in errors if src.origin.get(Path(p)) == origin]
            detail = "; ".join(failed[:3]) + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")
            problems.append((origin, f"none of its {n} file{'s' if n != 1 else ''} could be read ({detail})"))
    if problems:
        raise SourcesRefused(problems, kept, prune_helps=True)

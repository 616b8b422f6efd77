"""Attacks on the library itself, through the real `citeqa` command (subprocesses, the packaged MiniLM
model, the seed documents): an index run never loses documents because of the paths it was given, one
writer at a time, readers see new builds, and damaged index files are caught, never carried forward."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, SEEDS_DIR

SEED_NAMES = sorted(p.name for p in SEEDS_DIR.glob("*.txt"))
OS_QUESTION = "What was the median overall survival with blinatumomab in the TOWER trial?"


def env_for(index_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEQA_")}
    env.update(CITEQA_INDEX_DIR=str(index_dir), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **extra)
    return env


def citeqa(index_dir: Path, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "citeqa.cli", *args], env=env_for(index_dir, **extra), cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def docs_of(index_dir: Path) -> list[str]:
    r = citeqa(index_dir, "docs")
    assert r.returncode == 0, r.stderr
    return sorted(line.split("\t")[0] for line in r.stdout.splitlines() if line.strip())


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of seeds/ built by `citeqa index` with the real model (copied by each test)."""
    index_dir = tmp_path_factory.mktemp("reliability") / "index"
    r = citeqa(index_dir, "index", str(SEEDS_DIR))
    assert r.returncode == 0, r.stderr
    assert docs_of(index_dir) == SEED_NAMES
    return index_dir


@pytest.fixture
def library(seeded: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded index for one test."""
    d = tmp_path / "index"
    shutil.copytree(seeded, d)
    return d


# --------------------------------------------------------------------------- defect 1: no lost library


def _refused(r: subprocess.CompletedProcess[str], *names: str) -> None:
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr, r.stderr
    assert "nothing was indexed" in r.stderr and "index is unchanged (5 documents)" in r.stderr, r.stderr
    for name in names:
        assert name in r.stderr, r.stderr


def test_missing_path_is_refused_and_the_library_kept(library: Path, tmp_path: Path) -> None:
    r = citeqa(library, "index", str(tmp_path / "does-not-exist"))
    _refused(r, "does-not-exist", "no such file or directory")
    # A mistyped path next to a good one refuses the whole run too: nothing half-done.
    r = citeqa(library, "index", str(SEEDS_DIR), str(tmp_path / "typo"))
    _refused(r, "typo")
    # Even --prune does not take a missing path as "remove everything".
    r = citeqa(library, "index", "--prune", str(tmp_path / "does-not-exist"))
    _refused(r, "does-not-exist")
    assert docs_of(library) == SEED_NAMES


def test_empty_folder_is_refused_unless_pruning(library: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden.txt").write_text("hidden files are not documents", encoding="utf-8")
    r = citeqa(library, "index", str(empty))
    _refused(r, str(empty), "holds no documents", "--prune")
    assert docs_of(library) == SEED_NAMES
    # Asked for explicitly, removal happens.
    r = citeqa(library, "index", "--prune", str(empty))
    assert r.returncode == 0, r.stderr
    assert "5 removed" in r.stdout and docs_of(library) == []


def test_symlink_loop_is_refused(library: Path, tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    r = citeqa(library, "index", str(loop))
    _refused(r, "loop", "symbolic link loop")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    r = citeqa(library, "index", str(dangling))
    _refused(r, "dangling", "broken symbolic link")
    assert docs_of(library) == SEED_NAMES


def test_folder_of_only_unreadable_files_is_refused(library: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "scan.txt").write_bytes(b"\x00\x01\x02binary" * 100)
    (bad / "notes.docx").write_bytes(b"PK\x03\x04")
    (bad / "blank.md").write_text("   \n", encoding="utf-8")
    r = citeqa(library, "index", str(bad))
    _refused(r, str(bad), "none of its 3 files could be read", "scan.txt", "notes.docx")
    assert docs_of(library) == SEED_NAMES


def test_plain_index_adds_and_keeps_earlier_documents(library: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(SEEDS_DIR / SEED_NAMES[0], other / "extra-copy.txt")
    (other / "x.txt").mkdir()  # a folder with a document's name: named, not silently skipped
    loop = other / "loop.md"
    loop.symlink_to(loop)
    r = citeqa(library, "index", str(other))
    assert r.returncode == 0, r.stderr
    assert "1 new" in r.stdout and "0 removed, 5 kept" in r.stdout, r.stdout
    assert "x.txt: is a folder, not a file" in r.stderr and "loop.md: symbolic link loop" in r.stderr
    assert "--prune" in r.stderr  # the note on kept documents says how to remove them
    assert docs_of(library) == sorted([*SEED_NAMES, "extra-copy.txt"])


def test_remove_command_and_prune(library: Path, tmp_path: Path) -> None:
    r = citeqa(library, "remove", SEED_NAMES[0], SEED_NAMES[1])
    assert r.returncode == 0, r.stderr
    assert docs_of(library) == SEED_NAMES[2:]
    r = citeqa(library, "remove", "no-such-doc.txt")
    assert r.returncode == 1 and "no-such-doc.txt" in r.stderr and "citeqa docs" in r.stderr
    assert "Traceback" not in r.stderr
    some = tmp_path / "some"
    some.mkdir()
    shutil.copy(SEEDS_DIR / SEED_NAMES[3], some / SEED_NAMES[3])
    r = citeqa(library, "index", "--prune", str(some))
    assert r.returncode == 0, r.stderr
    assert docs_of(library) == [SEED_NAMES[3]]

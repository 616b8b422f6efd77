"""Attacks on the library itself, through the real `citeqa` command (subprocesses, the packaged MiniLM
model, the seed documents): an index run never loses documents because of the paths it was given, one
writer at a time, readers see new builds, and damaged index files are caught, never carried forward."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
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


def ask_jsonl(index_dir: Path, lines: list[bytes], **extra: str) -> subprocess.CompletedProcess[str]:
    """`citeqa ask --jsonl -` fed these raw lines on stdin."""
    r = subprocess.run(
        [sys.executable, "-m", "citeqa.cli", "ask", "--jsonl", "-"], input=b"\n".join(lines) + b"\n",
        env=env_for(index_dir, **extra), cwd=PROJECT_ROOT, capture_output=True, timeout=300, check=False,
    )
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode("utf-8"),
                                       r.stderr.decode("utf-8", "replace"))


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


# --------------------------------------------------------------------------- defect 5: damage is caught


def _build_of(index_dir: Path) -> Path:
    (root,) = [p for p in index_dir.iterdir() if (p / "CURRENT").is_file()]
    return root / "builds" / (root / "CURRENT").read_text(encoding="utf-8").strip()


def _flip(path: Path, fraction: float = 0.0, n: int = 64) -> None:
    """Invert ``n`` bytes in the middle of a file (or ``fraction`` of all its bytes), keeping its size."""
    data = bytearray(path.read_bytes())
    if fraction:
        for i in range(128, len(data), max(1, int(1 / fraction))):  # past the .npy header: the data
            data[i] ^= 0xFF
    else:
        mid = max(0, len(data) // 2 - n // 2)
        for i in range(mid, min(len(data), mid + n)):
            data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_every_index_file_kind_is_checksummed_and_damage_detected(library: Path) -> None:
    from citeqa import Settings
    from citeqa.errors import IndexDamaged
    from citeqa.index import Index

    build = _build_of(library)
    files = sorted(p.relative_to(build).as_posix() for p in build.rglob("*") if p.is_file())
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(manifest["checksums"]) == [f for f in files if f != "manifest.json"]
    settings = Settings(index_dir=library)
    Index.load(settings)  # intact
    detected = []
    for rel in files:
        original = (build / rel).read_bytes()
        _flip(build / rel)
        with pytest.raises(IndexDamaged) as ei:
            Index.load(settings)
        assert "citeqa index --rebuild" in str(ei.value)
        detected.append(rel)
        (build / rel).write_bytes(original)
    assert detected == files  # all 19 kinds: units, texts, offsets, vectors, FAISS, BM25, vocab, aliases, ...
    Index.load(settings)


def test_damaged_units_or_texts_never_crash_ask_and_are_never_carried_forward(library: Path) -> None:
    build = _build_of(library)
    _flip(build / "units.jsonl")
    r = citeqa(library, "ask", OS_QUESTION)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "UnicodeDecodeError" not in r.stderr
    assert "unusable" in r.stderr and "units.jsonl" in r.stderr and "citeqa index --rebuild" in r.stderr
    # A plain index run refuses to copy the damaged build into the next one ("5 unchanged" was the bug).
    r = citeqa(library, "index", str(SEEDS_DIR))
    assert r.returncode == 1 and "unchanged" not in r.stdout and "units.jsonl" in r.stderr, r.stdout + r.stderr
    assert _build_of(library) == build
    r = citeqa(library, "index", "--verify")
    assert r.returncode == 1 and "units.jsonl" in r.stderr and "checksum mismatch" in r.stderr
    # --rebuild recovers: every document re-read from the files it was indexed from.
    r = citeqa(library, "index", "--rebuild")
    assert r.returncode == 0, r.stderr
    r = citeqa(library, "index", "--verify")
    assert r.returncode == 0 and r.stdout.startswith("ok:"), r.stdout + r.stderr
    assert docs_of(library) == SEED_NAMES


def test_large_index_mode_checks_sizes_at_load_and_hashes_on_verify(library: Path) -> None:
    """Above verify_on_load_mb only sizes are checked at load: invalid UTF-8 in units or texts is still an
    IndexDamaged message (no traceback), 10% flipped vector bytes are found by --verify and by the next
    index run, and a truncated file is caught at load."""
    build = _build_of(library)
    sizes_only = {"CITEQA_VERIFY_ON_LOAD_MB": "0"}
    for name in ("units.jsonl", "texts.txt"):
        original = (build / name).read_bytes()
        data = bytearray(original)
        data[len(data) // 3 : len(data) // 3 + 64] = b"\xff" * 64  # not UTF-8, same size
        (build / name).write_bytes(bytes(data))
        questions = [OS_QUESTION, "What was the complete remission rate?", "How many patients were enrolled?",
                     "What were the adverse events?", "What is blinatumomab?"]
        r = ask_jsonl(library, [json.dumps({"id": i, "question": q}).encode() for i, q in enumerate(questions)],
                      **sizes_only)
        assert "Traceback" not in r.stderr, r.stderr
        records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        assert len(records) == 5  # every question has a record: an answer, or an error naming the damage
        for rec in records:
            assert "error" not in rec or ("unusable" in rec["error"] and name in rec["error"]), rec
        (build / name).write_bytes(original)
    _flip(build / "vectors.npy", fraction=0.1)
    r = citeqa(library, "docs", **sizes_only)
    assert r.returncode == 0  # sizes match: loads (this is what --verify is for)
    r = citeqa(library, "index", "--verify", **sizes_only)
    assert r.returncode == 1 and "vectors.npy" in r.stderr and "--rebuild" in r.stderr
    r = citeqa(library, "index", str(SEEDS_DIR), **sizes_only)
    assert r.returncode == 1 and "vectors.npy" in r.stderr
    p = build / "bm25" / "post_w.npy"
    p.write_bytes(p.read_bytes()[:-8])
    r = citeqa(library, "docs", **sizes_only)
    assert r.returncode == 1 and "post_w.npy" in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------------------- kill -9 while building


def test_kill_9_at_three_points_keeps_the_published_index(library: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    for i, name in enumerate(SEED_NAMES):
        for k in range(3):
            shutil.copy(SEEDS_DIR / name, batch / f"copy{k}-{i}.txt")
    root = _build_of(library).parent.parent
    builds = root / "builds"

    def holds_lock(pid: int) -> bool:
        lock = root / "LOCK"
        return lock.exists() and lock.read_text().strip() == str(pid)

    points = {
        "reading": lambda pid: holds_lock(pid),
        "embedding": lambda pid: holds_lock(pid) and time.monotonic() - started[0] > 3.0,
        "writing": lambda pid: any(d.name.startswith("tmp-") for d in builds.iterdir()),
    }
    killed = []
    for point, ready in points.items():
        proc = subprocess.Popen([sys.executable, "-m", "citeqa.cli", "index", str(batch)], env=env_for(library),
                                cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = [time.monotonic()]
        while not ready(proc.pid) and proc.poll() is None:
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(point)
        proc.wait()
        assert docs_of(library) == SEED_NAMES, point  # the previous build still serves
        r = citeqa(library, "index", "--verify")
        assert r.returncode == 0, (point, r.stderr)
    print(f"kill -9 points hit: {killed}")
    assert killed[:2] == ["reading", "embedding"]  # "writing" is a short window; it is hit most runs
    r = citeqa(library, "index", str(batch), timeout=600)  # the lock died with its process: no waiting
    assert r.returncode == 0 and "waiting" not in r.stderr, r.stderr
    assert [d.name for d in builds.iterdir()] == [_build_of(library).name]  # the killed builds' debris is gone
    assert len(docs_of(library)) == 5 + 15


def test_two_cli_index_runs_take_turns_and_lose_nothing(library: Path, tmp_path: Path) -> None:
    dirs = []
    for k in range(2):
        d = tmp_path / f"batch{k}"
        d.mkdir()
        for i, name in enumerate(SEED_NAMES):
            shutil.copy(SEEDS_DIR / name, d / f"run{k}-{i}.txt")
        dirs.append(d)
    procs = [subprocess.Popen([sys.executable, "-m", "citeqa.cli", "index", str(d)], env=env_for(library),
                              cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for d in dirs]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert any("waiting for another index build" in err for _, err in outs), outs  # one waited its turn
    assert docs_of(library) == sorted([*SEED_NAMES, *(f.name for d in dirs for f in d.iterdir())])

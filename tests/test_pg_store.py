"""The PostgreSQL + pgvector backend against a real server (PostgreSQL 16 + pgvector from the pgserver wheel):
parity with the file backend on the seeds, incremental and atomic generations, two replicas over one
database, and a build killed with SIGKILL inside its transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pgserver = pytest.importorskip("pgserver")
psycopg = pytest.importorskip("psycopg")

from tests.conftest import PROJECT_ROOT, SEEDS_DIR  # noqa: E402

from citeqa import Assistant, Index, Settings  # noqa: E402
from citeqa.retrieve import HybridRetriever  # noqa: E402

QUESTIONS = [
    "What was the median overall survival with blinatumomab in TOWER?",
    "How common was grade 3 or higher neutropenia?",
    "What was the hazard ratio for death with blinatumomab versus chemotherapy?",
    "Which adverse events were more frequent with chemotherapy?",
    "What is the capital of Australia?",
]


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from citeqa.backends.pg_db import start_local

    srv, url = start_local(tmp_path_factory.mktemp("pg") / "data")
    yield url
    srv.cleanup()


def fresh_db(server_url: str) -> str:
    """A new empty database on the test server: its URL."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return server_url.replace("/postgres?", f"/{name}?", 1)


@pytest.fixture
def pg_url(pg_server: str) -> str:
    return fresh_db(pg_server)


def note(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body).strip() + "\n", encoding="utf-8")
    return path


def small_docs(d: Path) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    return [
        note(d / "alpha.txt", """
            Alpha trial of drug X in adults.
            The median progression-free survival was 11.2 months with drug X and 6.1 months with placebo.
            Grade 3 nausea occurred in 4% of patients."""),
        note(d / "beta.txt", """
            Beta cohort study of drug Y.
            The response rate was 37% among 120 participants, and 12 patients stopped treatment early."""),
    ]


@pytest.fixture(scope="module")
def pg_seeds(pg_server: str) -> tuple[Index, Settings]:
    url = fresh_db(pg_server)
    settings = Settings(store=url, seeds_dir=SEEDS_DIR)
    idx = Index.build([SEEDS_DIR], settings)
    assert type(idx).__name__ == "PgIndex"
    assert idx.last_report is not None and not idx.last_report.errors
    return idx, settings


def test_seeds_parity_with_file_backend(pg_seeds: tuple[Index, Settings], seed_index: tuple[Index, Settings]) -> None:
    pidx, ps = pg_seeds
    fidx, fs = seed_index
    reloaded = Index.load(ps)  # what another process sees
    assert len(reloaded.units) == len(fidx.units)
    assert reloaded.documents() == fidx.documents()
    assert reloaded.abbreviations() == fidx.abbreviations()
    names = list(fidx.snap.docs)
    assert [reloaded.alias_tokens(d) for d in names] == [fidx.alias_tokens(d) for d in names]
    for q in QUESTIONS:
        fr, pr = HybridRetriever(index=fidx, settings=fs), HybridRetriever(index=reloaded, settings=ps)
        qv = fr.embed_query(q)
        assert [u for u, _ in reloaded.search_bm25(q, 40)] == [u for u, _ in fidx.search_bm25(q, 40)], q
        assert [u for u, _ in reloaded.search_dense(qv, 40)] == [u for u, _ in fidx.search_dense(qv, 40)], q
        assert [p.unit.id for p in pr.passages(q, qvec=qv)] == [p.unit.id for p in fr.passages(q, qvec=qv)], q
        fa, pa = Assistant(fidx, fs).ask(q), Assistant(reloaded, ps).ask(q)
        assert (pa.text, pa.refused) == (fa.text, fa.refused), q
        for c in pa.citations:
            assert reloaded.doc_text(c.doc)[c.start : c.end] == c.quote
    for uid in (0, len(fidx.units) // 2, len(fidx.units) - 1):
        assert reloaded.units[uid] == fidx.units[uid]
        assert reloaded.unit_term_ids(uid) == {int(reloaded.snap.vocab.get(fidx.snap.vocab.terms[t]) or -1)
                                               for t in fidx.unit_term_ids(uid)}


def test_incremental_generations_and_removal(pg_url: str, tmp_path: Path) -> None:
    docs = small_docs(tmp_path / "docs")
    s = Settings(store=pg_url)
    idx = Index.build(docs, s)
    first = idx.generation  # type: ignore[attr-defined]
    r = idx.last_report
    assert r is not None and sorted(r.added) == ["alpha.txt", "beta.txt"] and r.embedded > 0
    again = Index.build(docs, s)  # nothing changed: nothing embedded, no new generation
    assert again.last_report is not None and again.last_report.embedded == 0
    assert again.generation == first  # type: ignore[attr-defined]
    note(docs[1], "Beta cohort study of drug Y.\nThe response rate was 41% among 130 participants.")
    changed = Index.build(docs, s)
    r = changed.last_report
    assert r is not None and r.reembedded == ["beta.txt"] and r.unchanged == ["alpha.txt"]
    assert changed.generation > first  # type: ignore[attr-defined, operator]
    assert "41%" in changed.doc_text("beta.txt")
    removed = Index.load(s).remove("alpha.txt")
    assert removed.removed == ["alpha.txt"] and Index.load(s).snap.docs.keys() == {"beta.txt"}
    with psycopg.connect(pg_url) as c:  # old versions are collected: two generations are kept
        assert c.execute("SELECT count(*) FROM cq_generations").fetchone()[0] == 2
        names = [n for (n,) in c.execute("SELECT name FROM cq_documents ORDER BY id").fetchall()]
    assert names.count("beta.txt") == 1 and names.count("alpha.txt") <= 1


def test_replicas_see_each_others_uploads(pg_url: str, tmp_path: Path) -> None:
    docs = small_docs(tmp_path / "docs")
    s = Settings(store=pg_url)
    a = Index.build(docs[:1], s)
    b = Index.load(s)  # a second app process's view
    assert b.newer() is None
    extra = note(tmp_path / "gamma.txt", "Gamma registry of drug Z.\nThe 2-year overall survival was 64% in 300 "
                 "patients.")
    writer = a.fork()
    writer.add_files([extra])
    t0 = time.perf_counter()
    seen = b.newer()
    assert seen is not None and "gamma.txt" in seen.snap.docs
    ans = Assistant(seen, s).ask("What was the 2-year overall survival with drug Z?")
    assert time.perf_counter() - t0 < 5 and "64%" in ans.text and ans.citations[0].doc == "gamma.txt"
    assert "gamma.txt" not in b.snap.docs  # a question in flight keeps its generation


KILLED_BUILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {src!r})
from citeqa import Index, Settings
from citeqa.backends import pg_write
real = pg_write._aliases
def slow(*a, **k):  # inside the generation's transaction, after its rows were written
    print("IN-TRANSACTION", flush=True)
    time.sleep(60)
    return real(*a, **k)
pg_write._aliases = slow
Index.build([Path(p) for p in sys.argv[1:]], Settings(store={url!r}))
"""


def test_kill_during_build_keeps_previous_generation(pg_url: str, tmp_path: Path) -> None:
    docs = small_docs(tmp_path / "docs")
    s = Settings(store=pg_url)
    replica = Index.build(docs, s)
    before = replica.generation  # type: ignore[attr-defined]
    extra = note(tmp_path / "delta.txt", "Delta trial of drug W.\nMedian overall survival was 19.4 months.")
    script = tmp_path / "build.py"
    script.write_text(KILLED_BUILD.format(src=str(PROJECT_ROOT / "src"), url=pg_url), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), *map(str, [*docs, extra])], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "IN-TRANSACTION" in line, line
        with psycopg.connect(pg_url) as c:  # its rows exist, uncommitted: nobody else sees them
            assert c.execute("SELECT count(*) FROM cq_documents WHERE name = 'delta.txt'").fetchone()[0] == 0
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    # The replica keeps answering from the previous generation, which is still current.
    assert replica.newer() is None and Index.load(s).generation == before  # type: ignore[attr-defined]
    ans = Assistant(replica, s).ask("What was the median progression-free survival with drug X?")
    assert "11.2 months" in ans.text
    # The rerun takes the lock the killed build's connection released, and completes.
    done = Index.build([*docs, extra], s, on_wait=lambda m: None)
    r = done.last_report
    assert r is not None and r.added == ["delta.txt"] and sorted(r.unchanged) == ["alpha.txt", "beta.txt"]
    seen: Any = replica.newer()
    assert seen is not None and "delta.txt" in seen.snap.docs


def test_ann_index_above_threshold(pg_url: str, tmp_path: Path) -> None:
    s = Settings(store=pg_url, ann_threshold=1)
    idx = Index.build(small_docs(tmp_path / "docs"), s)
    with psycopg.connect(pg_url) as c:
        assert c.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'cq_units_hnsw'").fetchone()[0] == 1
    qv = HybridRetriever(index=idx, settings=s).embed_query("response rate of drug Y")
    hits = idx.search_dense(qv, 3)
    assert hits and idx.doc_of(hits[0][0]) == "beta.txt"


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    from citeqa.errors import CiteqaError

    with pytest.raises(CiteqaError, match="Cannot reach the database .*citeqa db start"):
        Index.load(Settings(store=f"postgresql://nobody:secret@/nodb?host={tmp_path}"))


def test_pdf_pages_are_shared_through_the_database(pg_url: str, tmp_path: Path) -> None:
    """A PDF's page map and file live in the database: a replica that never saw the file shows a citation
    on its page exactly as the file backend does."""
    import numpy as np
    from tests.pdfgen import two_column_paper

    from citeqa.pages import render_page

    docs = tmp_path / "docs"
    paper = two_column_paper(small_docs(docs)[0].parent / "two_column_trial.pdf")
    name = paper.path.name
    fidx = Index.build([docs], Settings(index_dir=tmp_path / "index"))
    s = Settings(store=pg_url, index_dir=tmp_path / "unused")
    Index.build([docs], s)
    replica = Index.load(s)
    unit = next(u for u in fidx.units if u.doc == name and u.kind == "chunk" and len(u.text) > 200)
    sent = unit.sentences[0]
    boxes = replica.citation_boxes(name, sent.start, sent.end)
    assert boxes and boxes == fidx.citation_boxes(name, sent.start, sent.end)
    fpm, ppm = fidx.page_map(name), replica.page_map(name)
    assert fpm is not None and ppm is not None
    assert all(np.array_equal(getattr(fpm, a), getattr(ppm, a)) for a in ("page", "frag", "box", "sizes"))
    pdf = replica.pdf_file(name)
    assert pdf is not None and pdf.read_bytes() == paper.path.read_bytes()
    png, _scale = render_page(pdf, boxes[0].page, boxes)
    assert png.startswith(b"\x89PNG")
    assert replica.page_map("alpha.txt") is None and replica.pdf_file("alpha.txt") is None
    # An unchanged PDF is carried into the next generation with its pages (document rows are reused).
    note(docs / "beta.txt", "Beta cohort study of drug Y.\nThe response rate was 44% among 90 participants.")
    later = Index.build([docs], s)
    assert later.last_report is not None and name in later.last_report.unchanged
    assert Index.load(s).citation_boxes(name, sent.start, sent.end) == boxes


def test_pruned_bm25_scores_candidates_exactly(pg_seeds: tuple[Index, Settings],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the posting budget the rare terms pick candidates (as the file backend prunes): every unit
    returned carries its exact BM25 score, and the best unit holding the rarest term is found."""
    from citeqa.backends import pg_read

    idx = Index.load(pg_seeds[1])
    gen = idx.snap.derived["pg"]
    for q in QUESTIONS[:4]:
        tids = idx.term_ids(q)
        exact = dict(gen.bm25(tids, 400))
        monkeypatch.setattr(pg_read, "_FULL_SCORING_POSTINGS", 0)
        monkeypatch.setattr(pg_read, "_CANDIDATE_POSTINGS", 1)
        monkeypatch.setattr(pg_read, "_CANDIDATES", 20)
        pruned = gen.bm25(tids, 10)
        monkeypatch.undo()
        assert pruned, q
        for uid, score in pruned:
            assert score == pytest.approx(exact[uid], rel=1e-5), (q, uid)
        rarest = min(set(tids), key=lambda t: (gen.df([t])[t], t))
        holders = [u for u in exact if rarest in set(gen.row(u).terms.tolist())]
        assert max(holders, key=lambda u: exact[u]) in dict(pruned) or len(holders) > 20, q

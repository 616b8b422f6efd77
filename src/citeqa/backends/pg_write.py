"""Writing a generation: new documents' rows plus the generation that lists all served documents, in one
transaction that also switches ``cq_current``. A build killed at any point before the commit leaves
nothing behind and the previous generation serving; unchanged documents are referenced, not copied."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from citeqa.config import Settings
from citeqa.snapshot import (
    _GENERIC_ALIAS_WORDS,
    DocRecord,
    Snapshot,
    _model_version,
    bm25_tokens,
    has_sentence_vectors,
    merge_abbreviations,
)
from citeqa.textutil import index_terms, tokens
from citeqa.types import ParsedDoc

from .pg_db import Pool, lock_key

KEEP_GENERATIONS = 2  # the current one and the one before (replicas may be finishing a question on it)


def write_generation(pool: Pool, settings: Settings, old: Snapshot, reuse: Sequence[str],
                     parsed: Sequence[ParsedDoc], records: dict[str, DocRecord], new_vecs: np.ndarray,
                     new_svecs: np.ndarray) -> int:
    """Insert ``parsed`` and a generation holding ``reuse`` (documents of ``old``) then ``parsed``; make
    it current. Returns the generation id."""
    from psycopg.types.json import Jsonb

    shape = settings.fingerprint()
    old_ids: dict[str, int] = old.derived.get("doc_ids", {})
    reuse = sorted(reuse, key=old.positions.__getitem__)  # old order, as the file backend keeps it
    abbreviations = merge_abbreviations([records[n] for n in reuse] + [records[pd.meta.doc] for pd in parsed])
    counted = [[Counter(bm25_tokens(u, abbreviations)) for u in pd.units] for pd in parsed]
    vocab = sorted({t for doc in counted for c in doc for t in c})
    with pool.connection() as conn, conn.transaction():
        if vocab:
            conn.execute("INSERT INTO cq_terms (term) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (vocab,))
        tid = {t: int(i) for t, i in conn.execute("SELECT term, id FROM cq_terms WHERE term = ANY(%s)",
                                                   (vocab,)).fetchall()} if vocab else {}
        new_ids: dict[str, int] = {}
        vpos = spos = 0
        doc_dl: dict[str, float] = {}
        for pd, units_terms in zip(parsed, counted, strict=True):
            name = pd.meta.doc
            dls = [float(sum(c.values())) for c in units_terms]
            doc_dl[name] = float(np.sum(np.asarray(dls, np.float32)))
            rec = _record_json(records[name]) | {"sum_dl": doc_dl[name]}
            (doc_id,) = conn.execute(
                "INSERT INTO cq_documents (shape, name, content_hash, meta, record, body, n_units) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (shape, name, records[name].content_hash, Jsonb(dataclasses.asdict(pd.meta)), Jsonb(rec),
                 pd.text, len(pd.units))).fetchone()
            new_ids[name] = int(doc_id)
            if pd.pages is not None:  # a PDF: its page map and file, for the evidence panel's page view
                conn.execute("INSERT INTO cq_pages (doc_id, page_map, pdf) VALUES (%s, %s, %s)",
                             (doc_id, pd.pages.to_bytes(), pd.pdf))
            from citeqa import store

            with conn.cursor() as cur, cur.copy(
                    "COPY cq_units (doc_id, ord, start_char, end_char, record, embedding, sent_vecs, terms, tfs, "
                    "dl) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "int4", "int4", "int4", "jsonb", "vector", "bytea", "int4[]", "int4[]",
                              "float4"])
                for o, (u, c) in enumerate(zip(pd.units, units_terms, strict=True)):
                    ns = len(u.sentences) if has_sentence_vectors(u) else 0
                    sv = np.ascontiguousarray(new_svecs[spos : spos + ns], np.float16).tobytes()
                    spos += ns
                    ids = [tid[t] for t in c]
                    cp.write_row((doc_id, o, u.start, u.end, Jsonb(store.unit_to_json(u)),
                                  np.asarray(new_vecs[vpos + o], np.float32), sv, ids, list(c.values()), dls[o]))
            vpos += len(pd.units)
            with conn.cursor() as cur, cur.copy(
                    "COPY cq_postings (term_id, doc_id, ord, tf, dl) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int4", "int8", "int4", "int4", "float4"])
                df: Counter[int] = Counter()
                for o, c in enumerate(units_terms):
                    for t, n in c.items():
                        cp.write_row((tid[t], doc_id, o, n, dls[o]))
                        df[tid[t]] += 1
            with conn.cursor() as cur, cur.copy(
                    "COPY cq_doc_terms (doc_id, term_id, df) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "int4", "int4"])
                for term_id, n in df.items():
                    cp.write_row((doc_id, term_id, n))
        order = [*reuse, *(pd.meta.doc for pd in parsed)]
        ids = [old_ids[n] for n in reuse] + [new_ids[pd.meta.doc] for pd in parsed]
        counts = [int(old.doc_range(n)[1] - old.doc_range(n)[0]) for n in reuse] + [len(pd.units) for pd in parsed]
        old_dl = _doc_dl(conn, [old_ids[n] for n in reuse])
        sum_dl = sum(old_dl) + sum(doc_dl.values())
        manifest = {"model": settings.embed_model, "model_version": _model_version(), "shape": settings.index_shape(),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "units": sum(counts),
                    "files": {n: {"hash": records[n].content_hash, "source": records[n].source, "units": c}
                              for n, c in zip(order, counts, strict=True)}}
        (gen_id,) = conn.execute(
            "INSERT INTO cq_generations (shape, n_units, sum_dl, manifest, aliases) VALUES (%s, %s, %s, %s, '{}') "
            "RETURNING id", (shape, sum(counts), sum_dl, Jsonb(manifest))).fetchone()
        bases = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist() if counts else []
        conn.execute("INSERT INTO cq_generation_docs (gen_id, pos, doc_id, base) "
                     "SELECT %s, p - 1, d, b FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS x(d, b, p)",
                     (gen_id, ids, bases))
        aliases = _aliases(conn, order, ids, records)
        conn.execute("UPDATE cq_generations SET aliases = %s WHERE id = %s",
                     (Jsonb({n: sorted(t) for n, t in aliases.items()}), gen_id))
        conn.execute("INSERT INTO cq_current (shape, gen_id) VALUES (%s, %s) "
                     "ON CONFLICT (shape) DO UPDATE SET gen_id = EXCLUDED.gen_id", (shape, gen_id))
    return int(gen_id)


def _doc_dl(conn: Any, doc_ids: list[int]) -> list[float]:
    if not doc_ids:
        return []
    rows = conn.execute("SELECT (record->>'sum_dl')::float8 FROM cq_documents WHERE id = ANY(%s)",
                        (doc_ids,)).fetchall()
    return [float(r[0] or 0.0) for r in rows]


def _aliases(conn: Any, names: list[str], doc_ids: list[int], records: dict[str, DocRecord]) -> dict[str, set[str]]:
    """Per document, catalog tokens that name it (the file backend's rule, ``snapshot.alias_tokens``): not
    generic words, and used by at most one other document's text."""
    wanted: dict[str, set[str]] = {}
    for name in names:
        m = records[name].meta
        keep = set()
        for t in set(tokens(f"{m.aliases} {m.trial_id}")) - _GENERIC_ALIAS_WORDS:
            if len(t) < 3 or (t.isdigit() and len(t) < 4) or not index_terms(t):
                continue
            keep.add(t)
        wanted[name] = keep
    every = sorted({t for ts in wanted.values() for t in ts})
    using: dict[str, set[int]] = {t: set() for t in every}
    if every:
        for term, docs in conn.execute(
                "SELECT t.term, array_agg(d.doc_id) FROM cq_terms t JOIN cq_doc_terms d ON d.term_id = t.id "
                "WHERE t.term = ANY(%s) AND d.doc_id = ANY(%s) AND d.df > 0 GROUP BY t.term",
                (every, doc_ids)).fetchall():
            using[term] = set(docs)
    own = dict(zip(names, doc_ids, strict=True))
    return {n: {t for t in ts if len(using[t] - {own[n]}) <= 1} for n, ts in wanted.items()}


def _record_json(r: DocRecord) -> dict[str, Any]:
    return {"sections": list(r.sections), "tables": r.tables, "source": r.source, "chars": r.chars,
            "abbreviations": [list(p) for p in r.abbreviations]}


def collect_garbage(pool: Pool, settings: Settings) -> int:
    """Drop generations older than the last ``KEEP_GENERATIONS`` and the documents none of them lists
    (their units, vectors and postings go with them). Returns the documents removed."""
    shape = settings.fingerprint()
    with pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("gc:" + shape),))
        conn.execute(
            "DELETE FROM cq_generations WHERE shape = %s AND id NOT IN (SELECT gen_id FROM cq_current) AND id NOT IN "
            "(SELECT id FROM cq_generations WHERE shape = %s ORDER BY id DESC LIMIT %s)",
            (shape, shape, KEEP_GENERATIONS))
        cur = conn.execute(
            "DELETE FROM cq_documents d WHERE d.shape = %s AND NOT EXISTS "
            "(SELECT 1 FROM cq_generation_docs g WHERE g.doc_id = d.id)", (shape,))
        return int(cur.rowcount or 0)


def ensure_ann_index(pool: Pool, settings: Settings, n_units: int) -> bool:
    """Create pgvector's HNSW index once a generation passes ``ann_threshold`` units (below it search is
    exact). Built concurrently: replicas keep answering meanwhile. Returns True when it exists."""
    if n_units <= settings.ann_threshold:
        return False
    with pool.connection() as conn:
        row = conn.execute("SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
                           "WHERE c.relname = 'cq_units_hnsw'").fetchone()
        if row is not None and row[0]:
            return True
        if row is not None:  # left invalid by a build killed while creating it
            conn.execute("DROP INDEX CONCURRENTLY IF EXISTS cq_units_hnsw")
        conn.execute(f"SET maintenance_work_mem = '{settings.pg_maintenance_mb}MB'")
        conn.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS cq_units_hnsw ON cq_units USING hnsw (embedding vector_ip_ops) "
            f"WITH (m = {min(100, settings.hnsw_m)}, ef_construction = {min(1000, settings.hnsw_ef_construction)})")
    return True

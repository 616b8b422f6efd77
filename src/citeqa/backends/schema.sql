-- citeqa on PostgreSQL (>= 15) with pgvector. Applied idempotently on first connection.
-- Documents and their units are immutable once written: a changed file is a new document row. What is
-- served is a generation (the list of document rows, in order); switching generations is one UPDATE.
CREATE EXTENSION IF NOT EXISTS vector;

-- One row per version of a document. ``shape`` is the settings fingerprint (model + chunking).
CREATE TABLE IF NOT EXISTS cq_documents (
    id           bigserial PRIMARY KEY,
    shape        text   NOT NULL,
    name         text   NOT NULL,
    content_hash text   NOT NULL,
    meta         jsonb  NOT NULL,   -- DocMeta: title, venue, date, ...
    record       jsonb  NOT NULL,   -- sections, tables, source path, chars, abbreviations defined
    body         text   NOT NULL,   -- decoded text: every citation offset points into it
    n_units      integer NOT NULL,
    created      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cq_documents_name ON cq_documents (shape, name);

-- Retrieval units with exact offsets; the embedding is searched with pgvector (inner product).
CREATE TABLE IF NOT EXISTS cq_units (
    doc_id     bigint  NOT NULL REFERENCES cq_documents (id) ON DELETE CASCADE,
    ord        integer NOT NULL,            -- position in the document; global id = generation base + ord
    start_char integer NOT NULL,
    end_char   integer NOT NULL,
    record     jsonb   NOT NULL,            -- the unit (section, kind, text, sentence spans, table cells)
    embedding  vector(384) NOT NULL,        -- float16 values of the file backend, stored exactly
    sent_vecs  bytea   NOT NULL,            -- float16 vectors of a multi-sentence chunk's sentences
    terms      integer[] NOT NULL,          -- BM25 row: term ids ...
    tfs        integer[] NOT NULL,          -- ... and their counts
    dl         real    NOT NULL,            -- BM25 length (sum of tfs)
    PRIMARY KEY (doc_id, ord)
);
-- The HNSW index (vector_ip_ops) is created once a generation passes ann_threshold units
-- (citeqa.backends.pg_write.ensure_ann_index): below it search is exact, as in the file backend.

-- PDFs: where each stored character sits on its pages (citeqa.pages.PageMap as .npz bytes) and the file
-- itself, so every replica can show a citation on its rendered page. Immutable like the document row.
CREATE TABLE IF NOT EXISTS cq_pages (
    doc_id   bigint PRIMARY KEY REFERENCES cq_documents (id) ON DELETE CASCADE,
    page_map bytea  NOT NULL,
    pdf      bytea  NOT NULL
);

CREATE TABLE IF NOT EXISTS cq_terms (
    id   serial PRIMARY KEY,
    term text NOT NULL UNIQUE
);

-- BM25 postings with raw counts: weights depend on the generation's size and mean length, so they are
-- computed at query time (Lucene's formula, the file backend's scores).
CREATE TABLE IF NOT EXISTS cq_postings (
    term_id integer NOT NULL,
    doc_id  bigint  NOT NULL REFERENCES cq_documents (id) ON DELETE CASCADE,
    ord     integer NOT NULL,
    tf      integer NOT NULL,
    dl      real    NOT NULL,
    PRIMARY KEY (term_id, doc_id, ord)
);
CREATE INDEX IF NOT EXISTS cq_postings_doc ON cq_postings (doc_id);

-- Units of a document holding a term: a generation's document frequency is their sum.
CREATE TABLE IF NOT EXISTS cq_doc_terms (
    doc_id  bigint  NOT NULL REFERENCES cq_documents (id) ON DELETE CASCADE,
    term_id integer NOT NULL,
    df      integer NOT NULL,
    PRIMARY KEY (term_id, doc_id)
);
CREATE INDEX IF NOT EXISTS cq_doc_terms_doc ON cq_doc_terms (doc_id);

CREATE TABLE IF NOT EXISTS cq_generations (
    id       bigserial PRIMARY KEY,
    shape    text   NOT NULL,
    created  timestamptz NOT NULL DEFAULT now(),
    n_units  bigint NOT NULL,
    sum_dl   double precision NOT NULL,
    manifest jsonb  NOT NULL,   -- model, settings shape, per-file hash/source/units
    aliases  jsonb  NOT NULL    -- per document, the catalog words that name it
);
CREATE TABLE IF NOT EXISTS cq_generation_docs (
    gen_id bigint  NOT NULL REFERENCES cq_generations (id) ON DELETE CASCADE,
    pos    integer NOT NULL,
    doc_id bigint  NOT NULL REFERENCES cq_documents (id),
    base   bigint  NOT NULL,    -- global id of the document's first unit in this generation
    PRIMARY KEY (gen_id, pos)
);
CREATE INDEX IF NOT EXISTS cq_generation_docs_doc ON cq_generation_docs (doc_id);

-- The generation served per settings shape: switched in the same transaction that wrote it.
CREATE TABLE IF NOT EXISTS cq_current (
    shape  text PRIMARY KEY,
    gen_id bigint NOT NULL REFERENCES cq_generations (id)
);

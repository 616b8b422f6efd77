"""Metadata read from a document's own text, the catalog as an override, and routing without a catalog."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from citeqa.config import Settings
from citeqa.index import Index
from citeqa.ingest import load_catalog, parse_text
from citeqa.ingest.bylines import is_affiliation, is_name_list
from citeqa.ingest.dates import parse_date
from citeqa.ingest.metadata import (
    extract_metadata,
    find_acronyms,
    find_doi,
    find_trial_ids,
    merge_meta,
)
from citeqa.types import DocMeta
from conftest import SEED_FILES, SEEDS_DIR, HashEmbedder, read_loader_text

CATALOG = load_catalog([SEEDS_DIR], "catalog.toml")
SHARED = Path("/work/shared/eval/external-dev")
TRIAL_ARTICLE = "003_19084b4463aafb5f.txt"


def _seed(name: str) -> str:
    return read_loader_text(SEEDS_DIR / name)


# --- the seeds, read as if they had no catalog entry ------------------------------------------------

@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.name[:3])
def test_seed_titles_match_the_catalog(path: Path) -> None:
    assert extract_metadata(read_loader_text(path)).title == CATALOG[path.name].title


def test_trial_article_front_matter() -> None:
    ex = extract_metadata(_seed(TRIAL_ARTICLE))
    cat = CATALOG[TRIAL_ARTICLE]
    assert ex.doi == cat.doi
    assert ex.trial_id == cat.trial_id == "NCT02013167 (TOWER)"
    assert ex.acronyms == ("TOWER",)
    assert ex.year == cat.date[:4] and ex.venue.startswith("N Engl J Med 2017;376:836")
    names = ex.authors.split("; ")
    assert names[0] == "Hagop Kantarjian" and "Dirk Nagorsen" in names and len(names) == 23
    assert not any("M.D" in n or "Ph.D" in n for n in names)


def test_news_pieces() -> None:
    # "ALL1331" only as a protocol number, "Interfant-06" as a named trial, a byline and a masthead.
    assert extract_metadata(_seed("001_f5e58083e22ab1c9.txt")).trial_ids == ("ALL1331",)
    infant = extract_metadata(_seed("004_174737bf3f1fdb85.txt"))
    assert infant.acronyms == ("Interfant-06",) and infant.venue == "Daily Pharmacy News"
    assert extract_metadata(_seed("002_e9f14de385d16e30.txt")).authors == "NCI Staff"


def test_defined_abbreviations_are_not_study_names() -> None:
    # "minimal residual disease (MRD)" and "acute lymphoblastic leukemia (ALL)" are terms, not studies.
    for path in SEED_FILES:
        found = set(find_acronyms(read_loader_text(path)))
        assert not found & {"MRD", "ALL", "HSCT", "AYA", "FDA", "CD19"}


def test_reference_list_is_not_the_document() -> None:
    # The trial article cites LALA-94 and other trials and DOIs only in its reference list.
    text = _seed(TRIAL_ARTICLE)
    assert "LALA-94" not in find_acronyms(text)
    assert find_trial_ids(text) == ("NCT02013167",)


# --- small inline texts -----------------------------------------------------------------------------

HEADERED = """Effect of a Thing on Another Thing in Adults: A Randomised Trial

https://example.org/article/123

Authors: Doe, Jane; Roe, Richard
Date: 2020-05-17
DOI: 10.1234/abcd.5678
License: cc-by

Abstract: We tested the thing in the HARBOR-2 trial (ISRCTN12345678). """ + "Words go on. " * 20 + """

The HARBOR-2 investigators enrolled 400 adults. In HARBOR-2, minimal residual disease (MRD) was measured.
MRD negativity was common; MRD testing used 5 mL of blood. A second study was planned.
"""


def test_key_value_header_block() -> None:
    ex = extract_metadata(HEADERED)
    assert ex.title == "Effect of a Thing on Another Thing in Adults: A Randomised Trial"
    assert ex.authors == "Doe, Jane; Roe, Richard"
    assert (ex.date, ex.year, ex.doi) == ("2020-05-17", "2020", "10.1234/abcd.5678")
    assert ex.acronyms == ("HARBOR-2",)
    assert ex.trial_id == "ISRCTN12345678 (HARBOR-2)"


YAML_LIST = """---
title: "Bispecific antibodies in relapsed leukemia: a review"
author:
  - Jane Doe
  - name: John Roe
date: 2021-05-04
journal: Hematology Reviews
---

# Bispecific antibodies in relapsed leukemia: a review

Relapsed acute lymphoblastic leukemia in adults has a poor prognosis, and median overall survival ranges
from two to six months with salvage chemotherapy in most of the series that have been published so far.
"""


def test_yaml_front_matter_lists() -> None:
    ex = extract_metadata(YAML_LIST)
    assert ex.title == "Bispecific antibodies in relapsed leukemia: a review"
    assert ex.authors == "Jane Doe; John Roe"
    assert (ex.date, ex.venue) == ("2021-05-04", "Hematology Reviews")
    inline = YAML_LIST.replace("author:\n  - Jane Doe\n  - name: John Roe", 'authors: [Jane Doe, "John Roe"]')
    assert extract_metadata(inline).authors == "Jane Doe; John Roe"


@pytest.mark.parametrize(("text", "iso"), [
    ("2024-03-14T08:00:00Z", "2024-03-14"),  # an HTML meta tag's timestamp
    ("2024-03-14", "2024-03-14"), ("2019-12", "2019-12"), ("BOSTON, March 14, 2024 (GLOBE NEWSWIRE)", "2024-03-14"),
])
def test_parse_date(text: str, iso: str) -> None:
    assert parse_date(text) == iso


def test_label_line_gives_year_not_title() -> None:
    text = "Abstract record, ID 12345678 (1999)\n\nBACKGROUND: Something was studied. " + "More text. " * 30
    ex = extract_metadata(text)
    assert (ex.title, ex.year) == ("", "1999")


def test_acronym_needs_a_study_use_and_two_mentions() -> None:
    assert find_acronyms("The ZEPHYR trial enrolled adults.") == ()  # named once
    assert find_acronyms("We used MRI. The MRI study showed MRI, MRI and MRI findings.") == ()  # a method
    assert find_acronyms("Results of the ZEPHYR trial. ZEPHYR investigators agreed.") == ("ZEPHYR",)
    # Defined once as a capitalised study name, then used bare.
    assert find_acronyms("The Copenhagen City Heart Study (CCHS) found this. The CCHS also found that.") == ("CCHS",)
    # Generic long forms are abbreviations, even when they contain "trial".
    assert find_acronyms("In randomized controlled trials (RCT) of this kind, RCT trial design matters.") == ()


@pytest.mark.parametrize("written,tid", [
    ("NCT01234567", "NCT01234567"), ("ISRCTN87654321", "ISRCTN87654321"),
    ("EudraCT number 2015-001234-56", "2015-001234-56"), ("ChiCTR2000029308", "ChiCTR2000029308"),
    ("ChiCTR-TRC-12001234", "ChiCTR-TRC-12001234"), ("ACTRN12612000038897", "ACTRN12612000038897"),
    ("DRKS00012345", "DRKS00012345"), ("CTRI/2020/05/025000", "CTRI/2020/05/025000"),
])
def test_registry_formats(written: str, tid: str) -> None:
    assert find_trial_ids(f"The trial was registered ({written}).") == (tid,)


def test_a_review_listing_trials_keeps_only_registered_ones() -> None:
    others = " ".join(f"Trial NCT0000000{i} was small." for i in range(5))
    assert find_trial_ids(others + " This review is registered as ISRCTN87654321.") == ("ISRCTN87654321",)


def test_doi_prefers_labelled_front_matter() -> None:
    text = "A Title Of Five Words\n\nSee 10.9999/other first. doi: 10.1000/own.1 is ours.\n"
    assert find_doi(text) == "10.1000/own.1"


# --- the catalog as an override --------------------------------------------------------------------

def test_catalog_overrides_field_by_field() -> None:
    entry = DocMeta(doc="x.txt", title="x.txt", venue="Catalog Venue")  # a catalog entry without a title
    meta = merge_meta("x.txt", HEADERED, entry, "fallback")
    assert meta.venue == "Catalog Venue"
    assert meta.title.startswith("Effect of a Thing")
    assert meta.doi == "10.1234/abcd.5678" and meta.aliases == "HARBOR-2"


def test_parse_text_keeps_catalog_and_fills_blanks() -> None:
    name = TRIAL_ARTICLE
    text = _seed(name)
    parsed = parse_text(name, text, text.encode(), CATALOG[name], Settings())
    assert parsed.meta.aliases == CATALOG[name].aliases and parsed.meta.title == CATALOG[name].title
    assert parsed.meta.authors.startswith("Hagop Kantarjian") and parsed.meta.year == "2017"
    bare = parse_text(name, text, text.encode(), None, Settings()).meta
    assert (bare.doi, bare.trial_id, bare.aliases) == ("10.1056/NEJMoa1609783", "NCT02013167 (TOWER)", "TOWER")


# --- routing without a catalog ---------------------------------------------------------------------

def test_study_acronym_routes_without_catalog(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for p in SEED_FILES:  # the documents, not catalog.toml
        shutil.copy(p, docs / p.name)
    settings = Settings(index_dir=tmp_path / "index", seeds_dir=docs)
    idx = Index.build([docs], settings, embedder=HashEmbedder())
    assert idx.alias_text(TRIAL_ARTICLE).endswith("TOWER NCT02013167 (TOWER)")
    assert idx.mentioned_docs("How long did patients live in the TOWER trial?") == {TRIAL_ARTICLE}
    assert idx.mentioned_docs("What is NCT02013167?") == {TRIAL_ARTICLE}
    assert idx.mentioned_docs("Who was in the Interfant-06 trial?") == {"004_174737bf3f1fdb85.txt"}
    assert idx.mentioned_docs("Does blinatumomab work?") == set()


# --- the public dev corpora (absent in CI) ----------------------------------------------------------

def _manifest(root: Path) -> list[dict[str, str]]:
    with open(root / "docs_manifest.tsv", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared evaluation data not present")
def test_article_headers_agree_with_manifest() -> None:
    root = SHARED / "covidqa-dev"
    rows = _manifest(root)
    for row in rows:
        ex = extract_metadata(read_loader_text(root / "docs" / row["file"]))
        assert " ".join(ex.title.split()) == " ".join(row["title"].split())
        assert ex.doi.lower() == row["doi"].lower() and ex.authors and ex.year


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared evaluation data not present")
def test_abstract_years_agree_with_manifest() -> None:
    root = SHARED / "pubmedqa-dev"
    rows = _manifest(root)
    dated = [r for r in rows if r["year"].isdigit()]
    assert dated
    for row in dated:
        assert extract_metadata(read_loader_text(root / "docs" / row["file"])).year == row["year"]


# --- author lists ------------------------------------------------------------------------------------

def test_author_line_with_affiliation_marks() -> None:
    # PDFs put affiliation numbers and footnote symbols right after each name.
    text = ("Gasdermin pores in health and disease: a review of their modifications\n"
            "Yuejun Yang1, Nan Wang2, Anton Gartner3 , Hongtao Zhang1,* and Ye Hong1,†\n"
            "1 Department of Biology, Southeast University, Nanjing, China\n\n"
            + "Gasdermins form pores in the plasma membrane of cells that die by pyroptosis. " * 6)
    ex = extract_metadata(text)
    assert ex.authors.split("; ") == ["Yuejun Yang", "Nan Wang", "Anton Gartner", "Hongtao Zhang", "Ye Hong"]


@pytest.mark.parametrize("text", [
    "Haiyang Jiang, Peizhao Liu, Jiaqi Kang, Jie Wu, Xiuwen Wu2\uf02a, Yun Zhao1\uf02a, Jianan Ren1,2\uf02a",
    "Connor A. Horton, Amr M. Alexandari†, Michael G. B. Hayes†, Emil Marklund†, Peter H. Suzuki",
    "Hagop Kantarjian, M.D., Anthony Stein, M.D., Adele K. Fielding, M.B., B.S., Ph.D., Andre C. Schuh",
])
def test_name_lists_are_recognised(text: str) -> None:
    assert is_name_list(text)


@pytest.mark.parametrize("text", [
    "The trial investigators, led by Hagop Kantarjian, M.D., of the University of Texas MD Anderson Cancer "
    "Center, enrolled 405 patients.",
    "Pho4, Cbf1, MAX and USF1",  # single capitalised words: genes, not people
    "Smith 2019, Jones 2020, Lee 2021",
    "Patients were enrolled in Spain, Italy, Germany and France.",
])
def test_sentences_naming_people_or_things_are_not_name_lists(text: str) -> None:
    assert not is_name_list(text)


@pytest.mark.parametrize("text", [
    "3. Jiangsu Provincial Key Laboratory of Critical Care Medicine, Department of Critical Care Medicine, "
    "Affiliated Zhongda Hospital, School of Medicine, Southeast University, Nanjing, China",
    "6 Department of Pathology, Johns Hopkins University School of Medicine, Baltimore, MD 21231, USA.",
])
def test_affiliations_are_recognised(text: str) -> None:
    assert is_affiliation(text)


@pytest.mark.parametrize("text", [
    "Patients were enrolled at the University of Texas MD Anderson Cancer Center, Houston, and at 101 other centers.",
    "Department of Pathology",  # a heading, not an address
    "The study was approved by the ethics committee of Nanjing University, Nanjing, China.",
])
def test_sentences_about_institutions_are_not_affiliations(text: str) -> None:
    assert not is_affiliation(text)

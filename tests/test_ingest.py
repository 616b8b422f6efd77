"""Ingestion: exact offsets on the real seeds, cleaning, tables, sections, model limits, bad input."""

from __future__ import annotations

import bisect
import dataclasses
import os
import re
import shutil
from pathlib import Path

import pytest

from citeqa.config import Settings
from citeqa.errors import IngestError
from citeqa.index import Index
from citeqa.ingest import load_catalog, parse_document
from citeqa.ingest.loaders import read_document
from citeqa.ingest.structure import parse_structure
from citeqa.ingest.units import _wordpiece_tokenizer
from citeqa.types import ParsedDoc, Unit
from citeqa.verify import numbers_in
from conftest import SEED_FILES, SEEDS_DIR, HashEmbedder, read_loader_text

TRIAL = "003_19084b4463aafb5f.txt"
BLOG = "002_e9f14de385d16e30.txt"
FURNITURE = (
    "The New England Journal of Medicine",
    "Downloaded from",
    "N ENGLJ MED",
    "Skip to main content",
    "< Older Post",
    "For personal use only",
)
MODEL_MAX_WORDPIECES = 256  # all-MiniLM-L6-v2 truncates beyond this


@pytest.fixture(scope="module")
def parsed() -> dict[str, ParsedDoc]:
    settings = Settings()
    catalog = load_catalog(SEED_FILES, settings.catalog_file)
    return {p.name: parse_document(p, catalog, settings) for p in SEED_FILES}


def _ascii_letters(s: str) -> str:
    return "".join(c for c in s if c.isascii() and c.isalpha())


def _is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(c in it for c in small)


def _row(pd: ParsedDoc, line: str) -> Unit:
    """The row unit whose citation span is exactly ``line`` of the file."""
    found = [u for u in pd.units if u.kind == "row" and pd.text[u.sentences[0].start : u.sentences[0].end] == line]
    assert len(found) == 1, (line, len(found))
    return found[0]


# --------------------------------------------------------------------------- offsets


def test_parsed_text_is_the_decoded_file(parsed: dict[str, ParsedDoc]) -> None:
    assert sorted(parsed) == [p.name for p in SEED_FILES] and len(parsed) == 5
    for p in SEED_FILES:
        with open(p, encoding="utf-8", newline="") as f:
            assert parsed[p.name].text == f.read() == read_loader_text(p)


def test_index_stores_file_text_and_quotes_round_trip(seed_index) -> None:  # type: ignore[no-untyped-def]
    index, _ = seed_index
    texts = {p.name: read_loader_text(p) for p in SEED_FILES}
    assert sorted(index.snap.docs) == sorted(texts)
    for name, text in texts.items():
        assert index.doc_text(name) == text
    for u in index.units:
        text = texts[u.doc]
        for a, b in [(u.start, u.end), *((s.start, s.end) for s in u.sentences)]:
            assert 0 <= a < b <= len(text), (u.doc, a, b)
            quote = index.quote(u.doc, a, b)
            assert quote == text[a:b]
            assert quote.strip() == quote and quote, (u.doc, a, b, quote)


def test_index_units_are_the_parsed_units(seed_index, parsed: dict[str, ParsedDoc]) -> None:  # type: ignore[no-untyped-def]
    index, _ = seed_index
    for name, pd in parsed.items():
        stored = [dataclasses.replace(u, id=0) for u in index.units if u.doc == name]
        assert stored == [dataclasses.replace(u, id=0) for u in pd.units], name


def test_every_unit_and_sentence_span_is_a_clean_exact_quote(parsed: dict[str, ParsedDoc]) -> None:
    for name, pd in parsed.items():
        text = pd.text
        assert pd.units, name
        for u in pd.units:
            quote = text[u.start : u.end]
            assert quote and quote == quote.strip(), (name, u.id, quote[:60])
            assert u.sentences
            if u.kind == "chunk":
                assert (u.start, u.end) == (u.sentences[0].start, u.sentences[-1].end)
                starts = [s.start for s in u.sentences]
                assert starts == sorted(starts)
            for s in u.sentences:
                sq = text[s.start : s.end]
                assert sq and sq == sq.strip(), (name, s.start, sq[:60])
                assert u.start <= s.start < s.end <= u.end
                if u.kind == "chunk":
                    # The cleaned rendering only drops markup from the quote, never invents words.
                    assert _is_subsequence(_ascii_letters(s.text), _ascii_letters(sq)), (name, s.text, sq)
                    assert s.text.strip() == s.text and s.text
                else:
                    assert "\n" not in sq  # a row cites exactly its own line
                    for _, value in u.cells:
                        assert set(numbers_in(value)) <= set(numbers_in(sq)), (value, sq)


def test_crlf_file_gives_same_units_with_clean_quotes(tmp_path: Path) -> None:
    src = SEEDS_DIR / "000_ff52d1b053a42489.txt"
    crlf = tmp_path / src.name
    crlf.write_bytes(src.read_bytes().replace(b"\n", b"\r\n"))
    settings = Settings()
    a = parse_document(src, {}, settings)
    b = parse_document(crlf, {}, settings)
    assert [u.text for u in b.units] == [u.text for u in a.units]
    for ua, ub in zip(a.units, b.units, strict=True):
        for sa, sb in zip(ua.sentences, ub.sentences, strict=True):
            q = b.text[sb.start : sb.end]
            assert q == q.strip() != ""
            assert q.replace("\r\n", "\n") == a.text[sa.start : sa.end]


# --------------------------------------------------------------------------- cleaning


def test_page_furniture_is_never_in_units(parsed: dict[str, ParsedDoc]) -> None:
    assert any(f in parsed[TRIAL].text for f in FURNITURE)  # the seeds do contain it
    for name, pd in parsed.items():
        for u in pd.units:
            for f in FURNITURE:
                assert f not in u.text and f not in u.embed_text, (name, f, u.text[:80])
            for s in u.sentences:
                assert s.text.strip() != "Email", name
            if u.kind == "chunk":
                quote = pd.text[u.start : u.end]
                for f in FURNITURE:
                    assert f not in quote, (name, f, u.start)
                assert "Email" not in [line.strip() for line in quote.splitlines()], (name, u.start)
            for a, b in pd.furniture:
                assert not (u.start < b and a < u.end), (name, u.kind, u.start, u.end, pd.text[a:b])


def test_standalone_email_line_is_furniture(parsed: dict[str, ParsedDoc]) -> None:
    pd = parsed[BLOG]
    removed = {pd.text[a:b].strip() for a, b in pd.furniture}
    assert {"Email", "Skip to main content", "< Older Post"} <= removed


def test_latex_and_markup_are_rendered(parsed: dict[str, ParsedDoc]) -> None:
    units = [u for pd in parsed.values() for u in pd.units]
    for u in units:
        for raw in ("$\\geq$", "\\geq", "\\pm", "\\mu", "<sup>", "</sup>", "</li>", "<li>"):
            assert raw not in u.text, (raw, u.text[:100])
    trial = " ".join(u.text for u in parsed[TRIAL].units)
    for symbol in ("≥", "±", "µ"):
        assert symbol in trial, symbol
    # Where the file says "$\geq$", the sentence reads "≥".
    pd = parsed[TRIAL]
    hits = [s for u in pd.units for s in u.sentences if "$\\geq$" in pd.text[s.start : s.end]]
    assert hits and all("≥" in s.text for s in hits)
    mu = [s for u in pd.units for s in u.sentences if "$\\mu$" in pd.text[s.start : s.end]]
    # "9 $\mu$ g per day" (a unit the conversion to LaTeX split) reads "9 µg per day": the dose is one term.
    assert mu and all("9 µg per day" in s.text for s in mu if "9 " in s.text)


# --------------------------------------------------------------------------- tables and sections


def test_table3_rows_are_units_with_linearised_text(parsed: dict[str, ParsedDoc]) -> None:
    pd = parsed[TRIAL]
    row = _row(pd, "Neutropenia\t101 (37.8)\t63 (57.8)")
    assert "Neutropenia" in row.text
    assert "Blinatumomab Group (N=267): 101 (37.8)" in row.text
    assert "Chemotherapy Group (N=109): 63 (57.8)" in row.text
    assert row.table.startswith("Table 3") and row.section.endswith("Table 3. Adverse Events")
    assert ("Blinatumomab Group (N=267)", "101 (37.8)") in row.cells
    # Every body line of Table 3 in the file is a row unit citing exactly that line.
    start = pd.text.index("Table 3. Adverse Events.")
    block = pd.text[start:].split("\n\n", 1)[0].split("\n")[1:]
    for line in block:
        if line.strip() and not line.startswith("\t"):  # "\tno. of patients (%)" is a unit note
            _row(pd, line.rstrip())


def test_subgroup_header_is_carried_into_child_rows(parsed: dict[str, ParsedDoc]) -> None:
    pd = parsed[TRIAL]
    row = _row(pd, "2\t41 (15.1)\t20 (14.9)")
    assert "ECOG performance status" in row.text
    assert "Table 1" in row.text or "Table 1" in row.table


def test_sections_are_assigned(parsed: dict[str, ParsedDoc]) -> None:
    pd = parsed[TRIAL]
    ae = [u for u in pd.units if u.section == "RESULTS > ADVERSE EVENTS"]
    assert any("Adverse events were reported in 99%" in u.text for u in ae)
    os_units = [u for u in pd.units if "251 deaths were recorded" in u.text]
    assert [u.section for u in os_units] == ["RESULTS > OVERALL SURVIVAL"]
    abstract = [u for u in pd.units if "The median overall survival was 7.7 months" in u.text]
    assert "ABSTRACT > RESULTS" in {u.section for u in abstract}
    assert all(u.section for u in pd.units)  # an article's every unit sits under a heading


def test_chunks_never_straddle_section_or_furniture_barriers(parsed: dict[str, ParsedDoc]) -> None:
    for name, pd in parsed.items():
        barriers = parse_structure(pd.text).barriers
        for u in pd.units:
            if u.kind != "chunk":
                continue
            i = bisect.bisect_right(barriers, u.start)
            assert i >= len(barriers) or barriers[i] >= u.end, (name, u.section, u.start, u.end, barriers[i])


def test_embed_text_fits_the_model(parsed: dict[str, ParsedDoc]) -> None:
    tok = _wordpiece_tokenizer()
    over = []
    for name, pd in parsed.items():
        for u in pd.units:
            n = len(tok.tokenize(u.embed_text)) + 2  # [CLS] and [SEP]
            if n > MODEL_MAX_WORDPIECES:
                over.append((name, u.start, u.end, n, bool(u.lead)))
    assert not over, f"units whose embed_text exceeds {MODEL_MAX_WORDPIECES} word pieces: {over}"


# --------------------------------------------------------------------------- bad and unusual input


def _tiny_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF whose content stream shows ``lines`` with the Tj operator."""
    ops = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
    for ln in lines:
        esc = ln.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
        ops.append(b"(" + esc + b") Tj T*")
    ops.append(b"ET")
    content = b"\n".join(ops)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


def _make_bad(tmp_path: Path, kind: str) -> Path:
    if kind == "docx":
        p = tmp_path / "report.docx"
        p.write_bytes(b"PK\x03\x04 not really a docx")
    elif kind == "binary":
        p = tmp_path / "image.txt"
        p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    elif kind == "empty":
        p = tmp_path / "empty.txt"
        p.write_bytes(b"")
    elif kind == "blank":
        p = tmp_path / "blank.md"
        p.write_text("  \n\n\t \n", encoding="utf-8")
    elif kind == "directory":
        p = tmp_path / "folder.txt"
        p.mkdir()
    elif kind == "broken_symlink":
        p = tmp_path / "gone.txt"
        p.symlink_to(tmp_path / "does-not-exist.txt")
    elif kind == "garbage":
        p = tmp_path / "garbage.txt"
        p.write_bytes(bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D, 0x01, 0x02, 0x03]) * 64)
    elif kind == "corrupt_pdf":
        p = tmp_path / "paper.pdf"
        p.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R\n" + b"\x00\xff" * 50)
    else:  # pragma: no cover
        raise AssertionError(kind)
    return p


BAD_KINDS = ["docx", "binary", "empty", "blank", "directory", "broken_symlink", "garbage", "corrupt_pdf"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file_raises_ingest_error_naming_it(tmp_path: Path, kind: str) -> None:
    p = _make_bad(tmp_path, kind)
    with pytest.raises(IngestError) as ei:
        parse_document(p, {}, Settings())
    assert ei.value.path == str(p)
    assert str(p) in str(ei.value) and ei.value.reason


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read a mode-000 file")
def test_unreadable_file_raises_ingest_error(tmp_path: Path) -> None:
    p = tmp_path / "secret.txt"
    p.write_text("Some text that cannot be read.", encoding="utf-8")
    p.chmod(0)
    try:
        with pytest.raises(IngestError, match=re.escape(str(p))):
            read_document(p)
    finally:
        p.chmod(0o644)


def test_cp1252_text_loads_with_the_right_characters(tmp_path: Path) -> None:
    original = "Café patients received 28 µg per day – “continuous infusion”. Naïve résumé follows here.\n"
    p = tmp_path / "legacy.txt"
    p.write_bytes(original.encode("cp1252"))
    text, raw = read_document(p)
    assert text == original and raw == original.encode("cp1252")
    pd = parse_document(p, {}, Settings())
    quotes = [pd.text[s.start : s.end] for u in pd.units for s in u.sentences]
    assert quotes[0] == "Café patients received 28 µg per day – “continuous infusion”."


def test_utf8_bom_and_utf16_are_decoded(tmp_path: Path) -> None:
    body = "Blinatumomab improved survival in adults. The median was 7.7 months.\n"
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    u16 = tmp_path / "wide.txt"
    u16.write_bytes(body.encode("utf-16"))
    for p in (bom, u16):
        text, _ = read_document(p)
        assert text == body


def test_html_with_table_and_script(tmp_path: Path) -> None:
    p = tmp_path / "page.html"
    p.write_text(
        "<html><head><title>t</title><script>var leaked = 'SCRIPT-CONTENT';</script>"
        "<style>p { color: red }</style></head><body>"
        "<nav>Home | News</nav><h1>Trial results</h1>"
        "<p>The trial enrolled adults with <b>relapsed</b> leukemia &amp; lymphoma.</p>"
        "<table><tr><th>Event</th><th>Arm A</th><th>Arm B</th></tr>"
        "<tr><td>Neutropenia</td><td>10 (5.0)</td><td>20 (9.0)</td></tr>"
        "<tr><td>Infection</td><td>3 (1.5)</td><td>4 (2.0)</td></tr></table>"
        "<p>More text follows the table here.</p><script>alert('x')</script></body></html>",
        encoding="utf-8",
    )
    text, _ = read_document(p)
    assert "SCRIPT-CONTENT" not in text and "alert" not in text and "color: red" not in text
    assert "Event\tArm A\tArm B" in text.splitlines()
    assert "Neutropenia\t10 (5.0)\t20 (9.0)" in text.splitlines()
    assert "leukemia & lymphoma" in text
    pd = parse_document(p, {}, Settings())
    assert pd.tables == 1
    row = _row(pd, "Neutropenia\t10 (5.0)\t20 (9.0)")
    assert "Arm A: 10 (5.0)" in row.text
    for u in pd.units:
        for s in u.sentences:
            assert pd.text[s.start : s.end].strip() == pd.text[s.start : s.end] != ""


def test_pdf_with_text_loads(tmp_path: Path) -> None:
    p = tmp_path / "tiny.pdf"
    p.write_bytes(_tiny_pdf(["Blinatumomab improved overall survival in the trial.",
                             "The median was 7.7 months (range 1-20)."]))
    text, _ = read_document(p)
    assert "Blinatumomab improved overall survival in the trial." in text
    pd = parse_document(p, {}, Settings())
    quotes = [pd.text[s.start : s.end] for u in pd.units for s in u.sentences]
    assert "The median was 7.7 months (range 1-20)." in quotes


def test_build_indexes_good_files_and_reports_bad_ones(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    good = ["000_ff52d1b053a42489.txt", "004_174737bf3f1fdb85.txt"]
    for name in good:
        shutil.copy(SEEDS_DIR / name, docs / name)
    bad = [_make_bad(docs, kind) for kind in ("docx", "binary", "empty", "garbage", "corrupt_pdf")]
    (docs / "markup.txt").write_text("<div><br/></div>\n<span></span>\n", encoding="utf-8")
    bad.append(docs / "markup.txt")  # readable, but nothing citable after cleaning
    settings = Settings(index_dir=tmp_path / "index")
    idx = Index.build([docs], settings, embedder=HashEmbedder())
    report = idx.last_report
    assert report is not None
    assert sorted(idx.snap.docs) == good and report.documents == 2
    assert sorted(report.added) == good
    reported = {Path(f).name for f, _ in report.errors}
    assert reported == {p.name for p in bad}, report.errors
    assert all(reason for _, reason in report.errors)
    assert Index.load(settings).units  # the good part was published


def test_bad_catalog_is_reported_not_fatal(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SEEDS_DIR / "000_ff52d1b053a42489.txt", docs)
    (docs / "catalog.toml").write_text('["000_ff52d1b053a42489.txt"\ntitle = broken', encoding="utf-8")
    idx = Index.build([docs], Settings(index_dir=tmp_path / "index"), embedder=HashEmbedder())
    assert idx.last_report is not None and idx.last_report.documents == 1
    assert any("catalog.toml" in f for f, _ in idx.last_report.errors)


def test_figure_legend_panels_are_sentences() -> None:
    from citeqa.ingest.sentences import split_sentences

    text = ("Figure 5 – Regulation is driven at the translational level. (a) CDKN2a expression decreases on soft "
            "gels. (f) treatment with 100 nM bortezomib increased p21. Values are means (n = 3). Two aims were "
            "set (i) and (ii) below.")
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "Figure 5 – Regulation is driven at the translational level.",
        "(a) CDKN2a expression decreases on soft gels.",
        "(f) treatment with 100 nM bortezomib increased p21.",
        "Values are means (n = 3).",
        "Two aims were set (i) and (ii) below.",
    ]


def test_results_after_an_unstructured_abstract_is_the_articles_section() -> None:
    from citeqa.ingest.structure import parse_structure

    body = "Siglec-15 is an immune checkpoint expressed on tumour-associated macrophages and T cells.\n\n"
    intro = "The introduction goes on here without a heading.\n\n"
    st = parse_structure(f"## Abstract\n\n{body}{intro}## Results\n\n{body}")
    assert [p.section for p in st.paragraphs] == ["Abstract", "Abstract", "Results"]
    # A structured abstract keeps its parts inside the abstract.
    st = parse_structure(f"ABSTRACT\n\nBACKGROUND\n\n{body}RESULTS\n\n{body}INTRODUCTION\n\n{body}")
    assert [p.section for p in st.paragraphs] == ["ABSTRACT > BACKGROUND", "ABSTRACT > RESULTS", "INTRODUCTION"]

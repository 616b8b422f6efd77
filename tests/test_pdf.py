"""PDF ingestion on a two-column paper the test makes (always run) and on the real papers in
../shared/pdfs (skipped when absent): reading order, furniture, superscripts, sections, captions,
exact page boxes, errors, and the page map kept with the index."""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

import pytest

from citeqa.config import Settings
from citeqa.errors import IngestError
from citeqa.index import Index
from citeqa.ingest import parse_document
from citeqa.ingest.loaders import load_document
from citeqa.pages import Box, render_page
from conftest import PROJECT_ROOT, HashEmbedder
from pdfgen import CAPTION, FOOT, HEAD, TABLE_ROWS, Paper, encrypted_pdf, scanned_pdf, two_column_paper

SHARED_PDFS = PROJECT_ROOT.parent / "shared" / "pdfs"


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> Paper:
    return two_column_paper(tmp_path_factory.mktemp("pdf") / "two_column_trial.pdf")


def _squash(s: str) -> str:
    # pdfium reports a hyphen that ends a line as U+0002
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", s)).replace("\x02", "-").replace("\ufffe", "-")


@functools.lru_cache(maxsize=256)
def _page_chars(pdf_path: Path, page: int) -> list[tuple[str, float, float]]:
    """pdfium's own characters of a page with their box centres (independent of the extractor)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as c

    doc = pdfium.PdfDocument(str(pdf_path))
    pg = doc[page]
    tp = pg.get_textpage()
    h = pg.get_size()[1]
    r = c.FS_RECTF()
    chars = []
    for i in range(tp.count_chars()):
        u = chr(c.FPDFText_GetUnicode(tp, i))
        if u.isspace() or c.FPDFText_IsGenerated(tp, i):
            continue
        c.FPDFText_GetLooseCharBox(tp, i, r)
        chars.append((u, (r.left + r.right) / 2, h - (r.top + r.bottom) / 2))
    tp.close()
    pg.close()
    doc.close()
    return chars


def text_under(pdf_path: Path, boxes: list[Box]) -> str:
    """The characters whose centre lies in the boxes, box by box."""
    return "".join(u for b in boxes for u, x, y in _page_chars(pdf_path, b.page)
                   if b.x0 <= x <= b.x1 and b.y0 <= y <= b.y1)


def _tinted(img: object, x0: float, y0: float, x1: float, y1: float) -> float:
    """Share of the pixels in a rectangle of the rendered page that carry the yellow highlight."""
    px = [img.getpixel((x, y)) for x in range(int(x0), int(x1)) for y in range(int(y0), int(y1))]  # type: ignore[attr-defined]
    return sum(r - b > 60 for r, _g, b in px) / max(1, len(px))


def test_two_column_text_reads_in_order_without_furniture(paper: Paper) -> None:
    loaded = load_document(paper.path)
    assert loaded.pdf is not None
    text = loaded.text
    flat = " ".join(text.split())
    # Every paragraph comes out whole, in order: columns are not interleaved, pages join up.
    pos = 0
    for _heading, paras in paper.sections:
        for p in paras:
            plain = " ".join(p.split())
            at = flat.find(plain, pos)
            assert at >= 0, f"paragraph not found whole and in order: {plain[:80]!r}"
            pos = at + len(plain)
    assert HEAD not in text and FOOT not in text
    assert not re.search(r"^\d{1,3}$", text, re.M)  # page numbers
    for s in paper.cited:  # superscript reference numbers dropped, sentence kept
        assert s in flat and not re.search(re.escape(s) + r"\d", flat)
    assert text.startswith(f"# {paper.title}")


def test_sections_captions_and_metadata(paper: Paper) -> None:
    pd = parse_document(paper.path, {}, Settings())
    assert pd.meta.title == paper.title
    assert pd.meta.doi == "10.1056/NEJMoa1609783" and pd.meta.year == "2017" and pd.meta.venue == "N Engl J Med"
    assert "Kantarjian" in pd.meta.authors
    by_text = {s.text: u.section for u in pd.units for s in u.sentences}
    methods = paper.sections[[h for h, _ in paper.sections].index("Methods")][1][0]
    first = re.split(r"(?<=\.)\s+(?=[A-Z])", methods)[0]
    assert "Methods" in by_text[first]
    caps = [u for u in pd.units if u.text.startswith("Figure 1.")]
    assert len(caps) == 1 and caps[0].section.endswith("Figure 1"), [u.section for u in caps]
    assert " ".join(caps[0].text.split()) == CAPTION
    # The table under "Table 1." becomes row units with their column headers, as text tables do.
    rows = {u.cells[0][1]: u for u in pd.units if u.kind == "row" and u.cells}
    first = TABLE_ROWS[1]
    assert rows[first[1]].cells == ((TABLE_ROWS[0][1], first[1]), (TABLE_ROWS[0][2], first[2]))
    assert rows[first[1]].table.startswith("Table 1. Adverse events") and first[0] in rows[first[1]].text
    assert len(rows) == len(TABLE_ROWS) - 1


def test_every_sentence_box_holds_exactly_its_quote(paper: Paper) -> None:
    pd = parse_document(paper.path, {}, Settings())
    assert pd.pages is not None and len(pd.pages) == len(pd.text)
    checked = 0
    for u in pd.units:
        for s in u.sentences:
            quote = pd.text[s.start : s.end]
            boxes = pd.pages.boxes(s.start, s.end)
            assert boxes, quote
            assert _squash(text_under(paper.path, boxes)) == _squash(quote), quote
            checked += 1
    assert checked > 40
    # A sentence that runs from the left column into the right one has boxes in both.
    sides = [{b.x0 > 300 for b in pd.pages.boxes(s.start, s.end)} for u in pd.units for s in u.sentences]
    assert {True, False} in sides, "expected a sentence continuing across the column break"


@pytest.mark.parametrize("kind", ["scanned", "encrypted", "damaged", "truncated"])
def test_unusable_pdfs_name_the_file(tmp_path: Path, paper: Paper, kind: str) -> None:
    p = tmp_path / f"{kind}.pdf"
    if kind == "scanned":
        scanned_pdf(p)
    elif kind == "encrypted":
        encrypted_pdf(p)
    elif kind == "damaged":
        p.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    else:
        p.write_bytes(paper.path.read_bytes()[:3000])
    with pytest.raises(IngestError) as ei:
        load_document(p)
    assert ei.value.path == str(p)
    want = {"scanned": "no text layer; OCR is not available", "encrypted": "encrypted",
            "damaged": "damaged", "truncated": "damaged"}[kind]
    assert want in ei.value.reason, ei.value.reason


def test_index_keeps_page_maps_and_renders_the_cited_span(tmp_path: Path, paper: Paper) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / paper.path.name).write_bytes(paper.path.read_bytes())
    scanned_pdf(docs / "scan.pdf")
    settings = Settings(index_dir=tmp_path / "index")
    idx = Index.build([docs], settings, embedder=HashEmbedder())
    assert idx.last_report is not None
    assert [(Path(f).name, "OCR" in r) for f, r in idx.last_report.errors] == [("scan.pdf", True)]
    name = paper.path.name
    unit = next(u for u in idx.units if u.doc == name and u.kind == "chunk" and len(u.text) > 200)
    s = unit.sentences[0]
    boxes = idx.citation_boxes(name, s.start, s.end)
    pdf = idx.pdf_file(name)
    assert pdf is not None and boxes
    assert _squash(text_under(pdf, boxes)) == _squash(idx.doc_text(name)[s.start : s.end])
    png, scale = render_page(pdf, boxes[0].page, boxes)
    assert png.startswith(b"\x89PNG") and scale > 1
    from io import BytesIO

    from PIL import Image

    img = Image.open(BytesIO(png)).convert("RGB")
    for b in boxes:  # inside every box the page is tinted yellow (blue well below red); above it, not
        inside = _tinted(img, b.x0 * scale + 2, b.y0 * scale + 2, b.x1 * scale - 2, b.y1 * scale - 2)
        assert inside > 0.95, inside
    above = _tinted(img, boxes[0].x0 * scale, boxes[0].y0 * scale - 40, boxes[0].x1 * scale, boxes[0].y0 * scale - 30)
    assert above < 0.05, above
    # The next build carries the sidecars of an unchanged PDF; a reopened index reads them.
    again = Index.build([docs], settings, embedder=HashEmbedder())
    assert again.last_report is not None and name in again.last_report.unchanged
    reopened = Index.load(settings)
    assert reopened.citation_boxes(name, s.start, s.end) == boxes
    assert reopened.pdf_file(name) is not None
    assert reopened.citation_boxes("nonexistent", 0, 5) == [] and reopened.page_map(name) is not None


@pytest.mark.skipif(not SHARED_PDFS.is_dir(), reason="../shared/pdfs is not here")
def test_real_paper_sentences_match_their_boxes() -> None:
    path = SHARED_PDFS / "10.1093_nar_gkae130.pdf"
    pd = parse_document(path, {}, Settings())
    assert pd.meta.doi == "10.1093/nar/gkae130" and pd.meta.venue == "Nucleic Acids Research"
    assert any("Introduction" in sec for sec in pd.sections) and any("Abstract" in sec for sec in pd.sections)
    assert "Nucleic Acids Research, 2024, Vol. 52" not in pd.text  # the running head
    assert pd.pages is not None
    sents = [(s.start, s.end) for u in pd.units for s in u.sentences]
    good = sum(_squash(text_under(path, pd.pages.boxes(a, b))) == _squash(pd.text[a:b]) for a, b in sents)
    assert good / len(sents) >= 0.99
    words = re.findall(r"\S+", pd.text)
    assert sum(bool(re.search(r"[a-z]-$", w)) for w in words) / len(words) < 0.002


def test_table_headings_on_their_own_lines_are_the_columns() -> None:
    # PDF extraction often gives a results table as its caption, then one line per column heading, then
    # tab-separated rows of figures: the headings name the columns and every row is data.
    from citeqa.ingest.structure import parse_structure
    from citeqa.ingest.tables import table_rows

    text = ("RESULTS\n\nWe compare three methods below.\n\nTable 4: Accuracy on the held-out set.\n\n"
            "Method\n\nPrecision\n\nRecall\n\nAlpha\t0.81\t0.62\nBeta\t-\t0.55\n\nThe text goes on.\n")
    st = parse_structure(text, captions=True)
    assert len(st.tables) == 1
    rows = table_rows(st.tables[0])
    assert [r.text for r in rows] == [
        "Table 4. Accuracy on the held-out set — columns: Method; Precision; Recall",
        "Table 4. Accuracy on the held-out set — Alpha — Precision: 0.81 — Recall: 0.62",
        "Table 4. Accuracy on the held-out set — Beta — Precision: - — Recall: 0.55",
    ]
    assert text[rows[0].start:rows[0].end].startswith("Method") and text[rows[0].start:rows[0].end].endswith("Recall")
    # The headings are the table's, not one-word paragraphs of their own.
    assert not any(p.segments[0].stripped in {"Method", "Precision", "Recall"} for p in st.paragraphs)
    # A header row of words stays the header; a caption just above it is not taken (it may close the
    # table before: captions sit below tables in some journals).
    st2 = parse_structure("Table 1: Examples.\n\nName\tScore\nAlpha\t0.81\nBeta\t0.55\n", captions=True)
    assert [r.text for r in table_rows(st2.tables[0])][1] == "Table 1 — Alpha — Score: 0.81"


@pytest.mark.parametrize(("line", "figure"), [
    ("CD8 b 20 15", True), ("E 75 50 25 0", True), ("SNA binding e f g", True), ("CD4 0", True),
    ("Np = N0 e(k p− ks )t", True), ("120 h Assay end", True), ("H", True),
    ("2.1 Data collection", False), ("1 Introduction", False), ("II. Methods", False), ("T cells", False),
    ("Results and discussion", False),
])
def test_text_inside_figures_is_not_a_heading(line: str, figure: bool) -> None:
    # Axis ticks, panel letters and formulae are extracted in large or bold type like headings; taken as
    # headings they filed the body text after them under "Abstract > CD4 0".
    from citeqa.ingest.structure import is_figure_label

    assert is_figure_label(line) is figure


def test_a_figure_reference_starting_a_line_is_running_text_not_a_caption() -> None:
    # A page or column break can leave running text starting with "Figure 2C), …": that sentence goes on
    # from the paragraph before; "Figure 2. …" after a blank line is a caption, a section of its own.
    from citeqa.ingest.structure import parse_structure

    text = ("RESULTS\n\nThe ratio of the two radii, which is robust to the parameters (see\n\n"
            "Figure 2C), is consistent with the observed ratio.\n\n"
            "Figure 2. Predicted and observed size ratios.\n\n"
            "Table 12 in Appendix D gives examples of the queries.\n")
    st = parse_structure(text, captions=True)
    by_text = {" ".join(sg.stripped for sg in p.segments): p.section for p in st.paragraphs}
    assert by_text == {
        "The ratio of the two radii, which is robust to the parameters (see Figure 2C), is consistent with the "
        "observed ratio.": "RESULTS",
        "Figure 2. Predicted and observed size ratios.": "RESULTS > Figure 2",
        "Table 12 in Appendix D gives examples of the queries.": "RESULTS",
    }


@pytest.mark.skipif(not SHARED_PDFS.is_dir(), reason="../shared/pdfs is not here")
def test_real_results_table_gets_its_caption_and_headings() -> None:
    doc = parse_document(SHARED_PDFS / "paperqa_pasa.pdf", {}, Settings())
    rows = [u.text for u in doc.units if u.kind == "row" and "Google Scholar" in u.text]
    assert rows and rows[0].startswith("Table 5. Results on AutoScholarQuery test set — Google Scholar — "), rows
    assert "Recall@20: 0.1514" in rows[0]


@pytest.mark.skipif(not SHARED_PDFS.is_dir(), reason="../shared/pdfs is not here")
def test_table_in_a_smaller_font_is_cut_from_the_text_and_read_whole() -> None:
    # The review's table of modifications sits above two columns of text, nearer to it than the body
    # text's line gap, and the page's layout splits its rows in two: both halves are one table, whose
    # footnote stays text.
    doc = parse_document(SHARED_PDFS / "10.7150_ijbs.86869.pdf", {}, Settings())
    rows = [u.text for u in doc.units if u.kind == "row"]
    assert any("Factors: PLK1 — PTM sites: T8(H)" in r for r in rows), rows[:5]
    assert any("Factors: USP48 — PTM sites: K120, K189(H)" in r for r in rows)  # the second half
    assert all(r.startswith("Table 2. PTMs regulation of GSDMs") for r in rows)
    assert any(u.kind == "chunk" and u.text.startswith("Table 2: The PTMs sites") for u in doc.units)


@pytest.mark.skipif(not SHARED_PDFS.is_dir(), reason="../shared/pdfs is not here")
def test_real_papers_sections_by_typeface_and_name() -> None:
    # Cell sets its subsection headings in another typeface (not bold) and names its results section
    # "RESULTS AND DISCUSSION"; Nature Communications has an unstructured abstract, then "Results", and
    # figure panels whose labels ("CD8 b 20 15") had been taken for headings.
    cell = parse_document(SHARED_PDFS / "10.1016_j.cell.2024.02.016.pdf", {}, Settings())
    assert "RESULTS AND DISCUSSION > Strong size relationship between UCYN-A and its host" in cell.sections
    first = next(u for u in cell.units if u.sentences[0].text.startswith("We measured the size of three"))
    assert first.section.startswith("RESULTS AND DISCUSSION")
    nc = parse_document(SHARED_PDFS / "10.1038_s41467-023-39119-8.pdf", {}, Settings())
    assert {"Methods > Biolayer interferometry", "Methods > NMR experiments"} <= set(nc.sections)
    assert not any(s.startswith("Abstract > Results") or re.search(r"\b\d+ \d+$", s) for s in nc.sections)

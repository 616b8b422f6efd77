"""Small PDFs the tests make themselves (reportlab): a two-column paper from a seed's text, with running
heads and feet, page numbers, bold headings, superscript reference numbers and a figure caption."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SEED = Path(__file__).resolve().parents[1] / "seeds" / "003_19084b4463aafb5f.txt"
HEAD = "The New England Journal of Medicine · N Engl J Med 2017;376:836-47"
FOOT = "Generated test copy for citeqa"
CAPTION = ("Figure 1. Overall survival in the intention-to-treat population: Kaplan-Meier estimates for "
           "the blinatumomab group and the chemotherapy group.")


TABLE_CAPTION = "Table 1. Adverse events of grade 3 or higher."
TABLE_ROWS = [["Event", "Blinatumomab (N=267)", "Chemotherapy (N=109)"],
              ["Neutropenia", "101 (37.8)", "63 (57.8)"],
              ["Infection", "91 (34.1)", "57 (52.3)"],
              ["Anemia", "52 (19.5)", "46 (42.2)"],
              ["Thrombocytopenia", "47 (17.6)", "46 (42.2)"]]


@dataclass(frozen=True)
class Paper:
    path: Path
    title: str
    sections: list[tuple[str, list[str]]]  # heading, paragraphs (plain text, as a reader sees them)
    cited: list[str]  # sentences printed with a superscript reference number after them


def _seed_sections(max_paras: int) -> tuple[str, list[tuple[str, list[str]]]]:
    title = ""
    sections: list[tuple[str, list[str]]] = []
    n = 0
    for block in SEED.read_text(encoding="utf-8").split("\n\n"):
        b = block.strip()
        if not b:
            continue
        m = re.match(r"^(#{1,6})\s+(.+)$", b)
        if m:
            if not title and len(m.group(2).split()) > 4:
                title = m.group(2).strip()
            elif title:
                sections.append((m.group(2).strip().title(), []))
            continue
        if "\t" in b or "\n" in b or not sections or len(b.split()) < 25 or "M.D." in b:
            continue
        b = re.sub(r"<sup>[^<]*</sup>|<[^>]+>|\$[^$]*\$", "", b)  # the seed's own markup and LaTeX
        sections[-1][1].append(" ".join(b.split()))
        n += 1
        if n >= max_paras:
            break
    return title, [(h, ps) for h, ps in sections if ps]


def two_column_paper(path: Path, max_paras: int = 14, extra: str = "", table: bool = True) -> Paper:
    """Write a two-column PDF of the seed trial article's first paragraphs to ``path``; ``extra`` is a
    paragraph added at the start of the results (a fact only this PDF states, for end-to-end tests)."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import (
        BaseDocTemplate,
        Frame,
        FrameBreak,
        PageTemplate,
        Paragraph,
        Spacer,
        Table,
        TableStyle,
    )

    title, sections = _seed_sections(max_paras)
    if extra:
        for heading, paras in sections:
            if heading == "Results":
                paras.insert(0, extra)
    w, h = letter
    margin, gutter = 54, 18
    col = (w - 2 * margin - gutter) / 2

    def furniture(canvas, doc) -> None:  # type: ignore[no-untyped-def]
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.drawString(margin, h - 36, HEAD)
        canvas.drawString(margin, 30, FOOT)
        canvas.drawRightString(w - margin, 30, str(doc.page))
        canvas.restoreState()

    top = Frame(margin, h - 150, w - 2 * margin, 96, id="title")
    left = Frame(margin, 50, col, h - 210, id="left")
    right = Frame(margin + col + gutter, 50, col, h - 210, id="right")
    left2 = Frame(margin, 50, col, h - 110, id="left2")
    right2 = Frame(margin + col + gutter, 50, col, h - 110, id="right2")
    doc = BaseDocTemplate(str(path), pagesize=letter, title=title, author="Hagop Kantarjian; Anthony Stein",
                          subject="N Engl J Med 2017;376:836-47. doi:10.1056/NEJMoa1609783")
    doc.addPageTemplates([
        PageTemplate(id="first", frames=[top, left, right], onPage=furniture, autoNextPageTemplate="rest"),
        PageTemplate(id="rest", frames=[left2, right2], onPage=furniture),
    ])
    body = ParagraphStyle("body", fontName="Times-Roman", fontSize=9.5, leading=11.5, alignment=4,
                          firstLineIndent=10, spaceAfter=0)
    head = ParagraphStyle("head", fontName="Helvetica-Bold", fontSize=10.5, leading=13, spaceBefore=8,
                          spaceAfter=3)
    cap = ParagraphStyle("cap", fontName="Helvetica", fontSize=7.5, leading=9, spaceBefore=6, spaceAfter=6)
    ttl = ParagraphStyle("ttl", fontName="Helvetica-Bold", fontSize=17, leading=21)
    story: list[object] = [Paragraph(title, ttl), FrameBreak()]
    cited: list[str] = []
    k = 0
    for heading, paras in sections:
        story.append(Paragraph(heading, head))
        for p in paras:
            k += 1
            sentences = re.split(r"(?<=\.)\s+(?=[A-Z])", p)
            marked = []
            for j, s in enumerate(sentences):
                if j == 0 and k % 2 == 1 and s.endswith("."):
                    cited.append(s)
                    s = f"{_esc(s)}<super>{k},{k + 3}</super>"
                else:
                    s = _esc(s)
                marked.append(s)
            story.append(Paragraph(" ".join(marked), body))
            if k == 3:
                story.append(Spacer(1, 4))
                story.append(Paragraph(CAPTION, cap))
            if k == 5 and table:
                story.append(Spacer(1, 6))
                story.append(Paragraph(TABLE_CAPTION, cap))
                grid = Table(TABLE_ROWS, hAlign="LEFT")
                grid.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), "Helvetica", 7.5),
                                          ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7.5),
                                          ("LINEBELOW", (0, 0), (-1, 0), 0.5, "black")]))
                story.append(grid)
                story.append(Spacer(1, 6))
    doc.build(story)
    return Paper(path, title, sections, cited)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def scanned_pdf(path: Path) -> None:
    """A page with only drawings, as a scanner makes it: no text layer."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    for i in range(40):
        c.rect(60 + (i % 5) * 90, 80 + (i // 5) * 80, 70, 50, fill=1)
    c.showPage()
    c.save()


def encrypted_pdf(path: Path) -> None:
    from reportlab.lib import pdfencrypt
    from reportlab.pdfgen import canvas

    enc = pdfencrypt.StandardEncryption("secret-user", "secret-owner", canPrint=0)
    c = canvas.Canvas(str(path), encrypt=enc)
    c.drawString(72, 720, "A confidential paper about blinatumomab and overall survival in adults.")
    c.showPage()
    c.save()

"""PDF extraction quality and speed on real papers (default: ../shared/pdfs), in one run.

For every PDF the layout-aware loader is run and the document parsed into units, then:

* **box = quote**: for every unit sentence, pdfium's own characters whose centres lie in the sentence's
  boxes (read straight from the page, not from the extractor) must equal the quote after Unicode
  compatibility normalisation and with whitespace removed (pdfium's line-end hyphen U+0002 read as "-");
* **furniture in units**: running heads, feet and page numbers found independently of the extractor
  (pdfium's own text lines in the top/bottom 12% of a page whose text, digits aside, repeats on three or
  more pages, or bare numbers there); a sentence whose boxes cover one of their characters, or whose text
  contains one of those lines, counts;
* **hyphen-split words**: words left broken by a line-end hyphen ("respec- tively") among all words of
  the units, beside the same count on the text of the loader this one replaced (pypdf: "respec-\\ntively");
* **speed**: extraction of all files (pages to stored text and page map) against ``pdftotext`` on the
  same files, alternating, median of ``--repeats``; wall clock and CPU time (this process's, and
  pdftotext's as child processes), since other work shares the 2 cores; the load average is printed.

``--render DIR`` draws, for the pages named by ``--pages``, every sentence's boxes in its own colour with
its number, to check by eye that no sentence mixes two columns.

    .venv/bin/python benchmarks/pdf_quality.py
    .venv/bin/python benchmarks/pdf_quality.py --repeats 3 --render runs/pdf_pages \\
        --pages 10.1093_nar_gkae130.pdf:3 --pages 10.1126_science.aba6500.pdf:2 --json runs/pdf_quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from citeqa.answer.features import section_role  # noqa: E402
from citeqa.config import Settings  # noqa: E402
from citeqa.ingest import parse_text  # noqa: E402
from citeqa.ingest.loaders import load_document  # noqa: E402
from citeqa.pages import Box, PageMap  # noqa: E402

Chars = list[tuple[str, float, float, float, float]]


def squash(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).replace("\x02", "-").replace("\ufffe", "-")
    return re.sub(r"\s+", "", s)


def page_chars(pdf: Any, raw: Any, page: int) -> tuple[Chars, list[Chars], float]:
    """pdfium's characters of a page (text, box) and its own lines (split at its generated breaks).

    Text clipped out of sight inside an embedded figure page is not on the page: where a page has
    text objects of its own and form XObjects too, only its own text objects' characters count
    (the rule of ``pdf_chars._embedded_text_filter``)."""
    import ctypes

    from citeqa.ingest.pdf_chars import _embedded_text_filter

    pg = pdf[page]
    h = pg.get_size()[1]
    own = _embedded_text_filter(pg, raw)
    tp = pg.get_textpage()
    r = raw.FS_RECTF()
    chars: Chars = []
    lines: list[Chars] = [[]]
    for i in range(tp.count_chars()):
        if own is not None and (ctypes.cast(raw.FPDFText_GetTextObject(tp, i), ctypes.c_void_p).value or 0) not in own:
            continue
        u = chr(raw.FPDFText_GetUnicode(tp, i))
        if u in "\r\n":
            if lines[-1]:
                lines.append([])
            continue
        raw.FPDFText_GetLooseCharBox(tp, i, r)
        c = (u, r.left, h - r.top, r.right, h - r.bottom)
        if not u.isspace() and not raw.FPDFText_IsGenerated(tp, i):
            chars.append(c)
        lines[-1].append(c)
    tp.close()
    pg.close()
    return chars, [ln for ln in lines if any(not c[0].isspace() for c in ln)], h


def under(chars: Chars, boxes: list[Box]) -> str:
    out = []
    for b in boxes:
        for u, x0, y0, x1, y1 in chars:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            if b.x0 <= cx <= b.x1 and b.y0 <= cy <= b.y1:
                out.append(u)
    return "".join(out)


def furniture_lines(pages: list[tuple[list[Chars], float]]) -> list[tuple[int, Chars, str]]:
    """Running heads/feet and page numbers, found from pdfium's lines (not the extractor's)."""
    def key(t: str) -> str:
        return re.sub(r"\d+", "#", re.sub(r"\s+", "", t.lower()))

    band: list[tuple[int, Chars, str]] = []
    for p, (lines, h) in enumerate(pages):
        for ln in lines:
            y0 = min(c[2] for c in ln)
            y1 = max(c[4] for c in ln)
            if y1 < 0.12 * h or y0 > 0.88 * h:
                band.append((p, ln, "".join(c[0] for c in ln).strip()))
    seen: dict[str, set[int]] = {}
    for p, _ln, t in band:
        seen.setdefault(key(t), set()).add(p)
    need = 3 if len(pages) > 4 else 2
    return [(p, ln, t) for p, ln, t in band if re.fullmatch(r"\d{1,4}", t) or len(seen[key(t)]) >= need]


def pdftotext(path: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout


def run(pdfs: list[Path], repeats: int, render: Path | None, pages_wanted: dict[str, set[int]]) -> dict[str, Any]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    settings = Settings()
    has_pdftotext = shutil.which("pdftotext") is not None
    ours_t: list[float] = []
    theirs_t: list[float] = []
    ours_cpu: list[float] = []
    theirs_cpu: list[float] = []
    loaded = {}
    for _ in range(repeats):  # alternate so both see the same machine load
        t, c = time.perf_counter(), time.process_time()
        for p in pdfs:
            loaded[p.name] = load_document(p)
        ours_t.append(time.perf_counter() - t)
        ours_cpu.append(time.process_time() - c)
        if has_pdftotext:
            t, ru = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            for p in pdfs:
                pdftotext(p)
            theirs_t.append(time.perf_counter() - t)
            ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
            theirs_cpu.append(ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime)
    docs = []
    tot = Counter()
    for p in pdfs:
        ld = loaded[p.name]
        assert ld.pdf is not None
        pd = parse_text(p.name, ld.text, ld.raw, None, settings, pdf=ld.pdf)
        pm: PageMap = pd.pages
        pdf = pdfium.PdfDocument(str(p))
        per_page = [page_chars(pdf, pdfium_c, i) for i in range(len(pdf))]
        furn = furniture_lines([(lines, h) for _c, lines, h in per_page])
        furn_texts = {squash(t) for _p, _ln, t in furn if len(squash(t)) >= 12}
        sents = [(s.start, s.end) for u in pd.units for s in u.sentences]
        ok = 0
        bad: list[dict[str, str]] = []
        with_furn: list[str] = []
        for a, b in sents:
            boxes = pm.boxes(a, b)
            quote = pd.text[a:b]
            got = "".join(under(per_page[bx.page][0], [bx]) for bx in boxes)
            if squash(got) == squash(quote):
                ok += 1
            elif len(bad) < 3:
                bad.append({"quote": quote[:160], "under_boxes": got[:160]})
            hit = False
            for fp, ln, _t in furn:
                for bx in boxes:
                    if bx.page == fp and any(bx.x0 <= (c[1] + c[3]) / 2 <= bx.x1 and bx.y0 <= (c[2] + c[4]) / 2 <= bx.y1
                                             for c in ln if not c[0].isspace()):
                        hit = True
            sq = squash(quote)
            if hit or any(ft in sq for ft in furn_texts):
                with_furn.append(quote[:120])
        words = re.findall(r"\S+", " ".join(u.text for u in pd.units if u.kind == "chunk"))
        split = re.findall(r"\b[A-Za-z]{2,}- [a-z]{2,}\b", " ".join(pd.text[a:b] for a, b in sents))
        pt_split = pt_words = 0
        if has_pdftotext:
            pt = pdftotext(p)
            pt_split = len(re.findall(r"[A-Za-z]{2,}-\n[a-z]{2,}", pt))
            pt_words = len(pt.split())
        # The loader this one replaced (pypdf's plain text): words broken at a line end.
        from pypdf import PdfReader

        old_pages = []
        for pg in PdfReader(str(p)).pages:
            try:
                old_pages.append(pg.extract_text() or "")
            except Exception:  # pypdf gives up on some content streams (token limits)
                old_pages.append("")
        old = "\n".join(old_pages)
        pypdf_split = len(re.findall(r"[A-Za-z]{2,}-\n[a-z]{2,}", old))
        roles = Counter(section_role(u.section) for u in pd.units)
        if render is not None and p.name in pages_wanted:
            for pg in pages_wanted[p.name]:
                draw_sentences(p, pm, sents, pg, render / f"{p.stem}_p{pg + 1}.png")
        pdf.close()
        d = {
            "file": p.name, "pages": pm.n_pages, "chars": len(pd.text), "units": len(pd.units),
            "sentences": len(sents), "box_equals_quote": ok, "sentences_with_furniture": len(with_furn),
            "furniture_lines_found": len(furn), "words": len(words), "hyphen_split": len(split),
            "pdftotext_hyphen_split": pt_split, "pdftotext_words": pt_words,
            "pypdf_hyphen_split": pypdf_split, "pypdf_words": len(old.split()),
            "sections": len(pd.sections), "roles": dict(roles),
            "meta": {k: getattr(pd.meta, k) for k in ("title", "authors", "venue", "year", "doi")},
            "mismatches": bad, "furniture_examples": with_furn[:3],
        }
        docs.append(d)
        for k in ("pages", "sentences", "box_equals_quote", "sentences_with_furniture", "words", "hyphen_split",
                  "pdftotext_hyphen_split", "pdftotext_words", "pypdf_hyphen_split", "pypdf_words"):
            tot[k] += d[k]
    ours = statistics.median(ours_t)
    theirs = statistics.median(theirs_t) if theirs_t else float("nan")
    cpu, tcpu = statistics.median(ours_cpu), (statistics.median(theirs_cpu) if theirs_cpu else float("nan"))
    return {"docs": docs, "totals": dict(tot), "seconds": ours, "pdftotext_seconds": theirs,
            "ratio": ours / theirs if theirs_t else None, "cpu_seconds": cpu, "pdftotext_cpu_seconds": tcpu,
            "cpu_ratio": cpu / tcpu if theirs_cpu else None, "repeats": repeats, "load": os.getloadavg()}


def draw_sentences(path: Path, pm: PageMap, sents: list[tuple[int, int]], page: int, out: Path) -> None:
    """The page with every sentence's boxes outlined in its own colour and numbered."""
    import pypdfium2 as pdfium
    from PIL import ImageDraw

    doc = pdfium.PdfDocument(str(path))
    scale = 1.6
    img = doc[page].render(scale=scale).to_pil().convert("RGB")
    draw = ImageDraw.Draw(img)
    palette = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 200, 200),
               (240, 50, 230), (128, 128, 0)]
    n = 0
    for a, b in sents:
        boxes = [bx for bx in pm.boxes(a, b) if bx.page == page]
        if not boxes:
            continue
        n += 1
        col = palette[n % len(palette)]
        for bx in boxes:
            draw.rectangle([bx.x0 * scale, bx.y0 * scale, bx.x1 * scale, bx.y1 * scale], outline=col, width=2)
        draw.text((boxes[0].x0 * scale - 14, boxes[0].y0 * scale), str(n), fill=col)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    doc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pdfs", type=Path, default=ROOT.parent / "shared" / "pdfs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--render", type=Path, default=None, help="folder for pages drawn with sentence boxes")
    ap.add_argument("--pages", action="append", default=[], help="FILE.pdf:PAGE (1-based) to draw")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    pdfs = sorted(args.pdfs.glob("*.pdf"))
    if not pdfs:
        sys.exit(f"no PDFs in {args.pdfs}")
    wanted: dict[str, set[int]] = {}
    for spec in args.pages:
        name, _, pg = spec.rpartition(":")
        wanted.setdefault(name, set()).add(int(pg) - 1)
    r = run(pdfs, args.repeats, args.render, wanted)
    print(f"{'file':34} {'pages':>5} {'sents':>6} {'box=quote':>9} {'furn':>5} {'hyph':>5} {'pypdf':>5}  "
          "venue / year / doi")
    for d in r["docs"]:
        m = d["meta"]
        print(f"{d['file'][:34]:34} {d['pages']:5d} {d['sentences']:6d} {d['box_equals_quote'] / d['sentences']:9.2%} "
              f"{d['sentences_with_furniture']:5d} {d['hyphen_split']:5d} {d['pypdf_hyphen_split']:5d}  "
              f"{m['venue'][:24]} / {m['year']} / {m['doi']}")
    t = r["totals"]
    print(f"\nsentences whose boxes hold exactly their quote: {t['box_equals_quote']}/{t['sentences']} "
          f"= {t['box_equals_quote'] / t['sentences']:.2%}")
    print(f"sentences containing a running head/foot or page number: {t['sentences_with_furniture']}")
    print(f"hyphen-split words: {t['hyphen_split']}/{t['words']} = {t['hyphen_split'] / max(1, t['words']):.4%} "
          f"(the previous pypdf loader: {t['pypdf_hyphen_split']}/{t['pypdf_words']} = "
          f"{t['pypdf_hyphen_split'] / max(1, t['pypdf_words']):.2%}; pdftotext, which joins them itself: "
          f"{t['pdftotext_hyphen_split']})")
    ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "n/a (pdftotext not installed: apt-get install poppler-utils)"
    print(f"extraction of {len(pdfs)} PDFs ({t['pages']} pages): {r['seconds']:.2f} s; pdftotext "
          f"{r['pdftotext_seconds']:.2f} s; ratio {ratio} (median of {r['repeats']}, load {r['load'][0]:.1f})")
    if r["cpu_ratio"]:  # CPU time: what each used, whatever else the shared cores were doing
        print(f"CPU time: {r['cpu_seconds']:.2f} s; pdftotext {r['pdftotext_cpu_seconds']:.2f} s; "
              f"ratio {r['cpu_ratio']:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()

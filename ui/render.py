"""HTML and Markdown rendering for the web UI.

Everything that comes from a document, a question or an answer is escaped here, in one place:
:func:`esc` turns text into inert HTML (no tags, no attributes, no template syntax), so a document
containing ``<script>`` or ``<img onerror=...>`` is shown literally and never executes.

Answers are handled in their ``Answer.to_dict()`` form, which is what the UI keeps in session state.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Characters that Gradio's template engines (JS template literals, Handlebars) or Markdown/LaTeX
# could interpret are replaced by numeric entities: they still display as themselves.
_EXTRA_ENTITIES = {
    "{": "&#123;",
    "}": "&#125;",
    "$": "&#36;",
    "`": "&#96;",
    "\\": "&#92;",
    "*": "&#42;",
    "_": "&#95;",
    "~": "&#126;",
    "|": "&#124;",
}
_EXTRA_RE = re.compile("[" + re.escape("".join(_EXTRA_ENTITIES)) + "]")

MARKER_RE = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
EVIDENCE_WINDOW = 30_000  # characters of context kept each side of a mark in very long documents


def esc(text: object) -> str:
    """Escape text for HTML content or a quoted attribute value."""
    s = html.escape(str(text), quote=True)
    return _EXTRA_RE.sub(lambda m: _EXTRA_ENTITIES[m.group(0)], s)


def esc_block(text: object) -> str:
    """Escape multi-line text for use inside an HTML block embedded in Markdown.

    Newlines become ``<br>`` so the block never contains a blank line (which would end the HTML
    block and hand the rest to the Markdown parser).
    """
    return esc(text).replace("\r\n", "\n").replace("\n", "<br>")


def _trim(text: str, n: int = 220) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def cite_key(answer_idx: int, kind: str, n: int) -> str:
    """Key carried by a clickable marker: answer index, ``c`` (citation) or ``p`` (passage), number."""
    return f"{answer_idx}:{kind}:{n}"


def cite_href(key: str) -> str:
    """Fragment link carrying a cite key. Gradio's chat sanitiser drops ``data-*`` attributes but keeps
    ``href``, so markers inside chat bubbles carry their key here (``#cq-cite-0-c-1``)."""
    return "#cq-cite-" + key.replace(":", "-")


def parse_cite_key(key: str) -> tuple[int, str, int] | None:
    m = re.fullmatch(r"(\d{1,6}):([cp]):(\d{1,4})", str(key or "").strip())
    if not m:
        return None
    return int(m.group(1)), m.group(2), int(m.group(3))


# ---------------------------------------------------------------- answers


def _linkify(escaped: str, answer_idx: int, known: set[int]) -> str:
    """Replace ``[n]`` / ``[n, m]`` markers in already-escaped text by clickable citation links."""

    def one(n: int) -> str:
        key = cite_key(answer_idx, "c", n)
        return (
            f'<a class="cq-cite" href="{cite_href(key)}" data-cite="{key}" '
            f'title="Show source [{n}]">[{n}]</a>'
        )

    def repl(m: re.Match[str]) -> str:
        nums = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        if not all(n in known for n in nums):
            return m.group(0)
        return "".join(one(n) for n in nums)

    return MARKER_RE.sub(repl, escaped)


def _sentence_pattern(sentence: str) -> re.Pattern[str] | None:
    """Regex finding ``sentence`` in the answer text whatever its markers were renumbered to."""
    parts = [p for p in MARKER_RE.split(sentence)[::2]]
    words = [re.escape(w) for p in parts for w in p.split()]
    if not words:
        return None
    gap = r"(?:\s|\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])*"
    body = gap.join(words)
    if MARKER_RE.search(sentence):  # keep the sentence's own trailing markers inside the span
        body += r"(?:\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])*"
    return re.compile(body)


def _answer_body(ans: Mapping[str, Any], idx: int) -> tuple[str, list[str]]:
    """Answer text with unsupported sentences marked; returns (html, unsupported-but-unlocated)."""
    text = str(ans.get("answer", ""))
    known = {int(c["n"]) for c in ans.get("citations", [])}
    spans: list[tuple[int, int, str]] = []
    missing: list[str] = []
    cursor = 0
    for s in ans.get("sentences", []) or []:
        if s.get("supported", True):
            continue
        st = str(s.get("text", "")).strip()
        pat = _sentence_pattern(st)
        if pat is None:
            continue
        m = pat.search(text, cursor) or pat.search(text)
        if m is None or any(a < m.end() and m.start() < b for a, b, _ in spans):
            missing.append(st if not s.get("note") else f"{st} ({s['note']})")
            continue
        spans.append((m.start(), m.end(), str(s.get("note", ""))))
        cursor = m.end()
    spans.sort()
    out: list[str] = []
    last = 0
    for a, b, note in spans:
        out.append(_linkify(esc_block(text[last:a]), idx, known))
        tip = esc(note or "Not supported by the cited passages")
        out.append(
            f'<span class="cq-unsupported" title="{tip}">{_linkify(esc_block(text[a:b]), idx, known)}'
            f'<sup class="cq-flag">unsupported</sup></span>'
        )
        last = b
    out.append(_linkify(esc_block(text[last:]), idx, known))
    return "".join(out), missing


def render_answer(ans: Mapping[str, Any], idx: int) -> str:
    """The assistant chat bubble for a finished answer (one HTML block, no blank lines)."""
    parts: list[str] = [f'<div class="cq-answer" data-answer="{idx}">']
    body, missing = _answer_body(ans, idx)
    if ans.get("refused"):
        parts.append(
            '<div class="cq-refusal" role="note"><div class="cq-refusal-h">'
            "&#9888;&#65039; Not answered: the indexed documents do not support an answer</div>"
            f'<div class="cq-text">{body}</div></div>'
        )
    else:
        parts.append(f'<div class="cq-text">{body}</div>')
    if missing:
        items = "".join(f"<li>{esc_block(m)}</li>" for m in missing)
        parts.append(
            '<div class="cq-warn"><strong>Not supported by the cited passages:</strong>'
            f"<ul>{items}</ul></div>"
        )
    conflicts = [c for c in ans.get("conflicts", []) or [] if str(c).strip()]
    if conflicts:
        items = "".join(
            f"<li>{_linkify(esc_block(c), idx, {int(x['n']) for x in ans.get('citations', [])})}</li>"
            for c in conflicts
        )
        parts.append(
            '<div class="cq-conflict" role="note"><strong>&#9878;&#65039; Sources disagree</strong>'
            f"<ul>{items}</ul></div>"
        )
    for note in ans.get("notices", []) or []:
        parts.append(f'<div class="cq-notice">&#8505;&#65039; {esc_block(note)}</div>')
    cits = list(ans.get("citations", []) or [])
    refused = bool(ans.get("refused"))
    if cits:
        refs: list[str] = []
        for c in cits:
            key = cite_key(idx, "c", int(c["n"]))
            where = esc(c.get("title") or c.get("doc", ""))
            sec = f' <span class="cq-sec">· {esc(c["section"])}</span>' if c.get("section") else ""
            quote = c.get("text") or c.get("quote", "")
            refs.append(
                f'<li><a class="cq-cite cq-ref" href="{cite_href(key)}" data-cite="{key}">'
                f'<span class="cq-refn">[{int(c["n"])}]</span> {where}</a>{sec}'
                f'<div class="cq-quote">“{esc(_trim(quote))}”</div></li>'
            )
        # A refusal's citations are the nearest passages, not support for a claim.
        head = "Nearest passages (not enough to answer)" if refused else "References"
        cls = "cq-refs cq-nearest" if refused else "cq-refs"
        parts.append(f'<div class="{cls}"><div class="cq-refs-h">{head}</div><ol>{"".join(refs)}</ol></div>')
    passages = list(ans.get("passages", []) or [])
    if refused and passages and not cits:
        near: list[str] = []
        for i, p in enumerate(passages[:5]):
            key = cite_key(idx, "p", i)
            sec = f' <span class="cq-sec">· {esc(p["section"])}</span>' if p.get("section") else ""
            near.append(
                f'<li><a class="cq-cite cq-ref" href="{cite_href(key)}" data-cite="{key}">'
                f"{esc(p.get('title') or p.get('doc', ''))}</a>{sec}"
                f'<div class="cq-quote">“{esc(_trim(p.get("text") or p.get("quote", "")))}”</div></li>'
            )
        parts.append(
            '<div class="cq-refs cq-nearest">'
            '<div class="cq-refs-h">Nearest passages (not enough to answer)</div>'
            f"<ol>{''.join(near)}</ol></div>"
        )
    parts.append("</div>")
    return "".join(parts)


def render_streaming(text: str) -> str:
    """A partial answer while it streams (markers are not clickable yet)."""
    return (
        '<div class="cq-answer cq-streaming"><div class="cq-text">'
        f'{esc_block(text)}<span class="cq-caret">▍</span></div></div>'
    )


def render_error(message: str) -> str:
    return f'<div class="cq-answer"><div class="cq-error" role="alert">{esc_block(message)}</div></div>'


def render_user(text: str) -> str:
    return f'<div class="cq-user">{esc_block(text)}</div>'


# ---------------------------------------------------------------- evidence panel


EVIDENCE_EMPTY = (
    '<div class="cq-ev-empty"><div class="cq-ev-empty-h">Evidence</div>'
    '<p>Click a citation such as <span class="cq-fake-cite">[1]</span> or a reference below an '
    "answer to open its source here, with the exact quoted passage highlighted.</p></div>"
)


def render_pdf_pages(pages: Sequence[Mapping[str, Any]], n_pages: int, doc: str) -> str:
    """Rendered PDF pages with the cited span's boxes: ``pages`` items hold ``page`` (0-based), ``png``
    (base64, made by the server, no user text), ``boxes`` as (left, top, width, height) in percent of
    the page. The highlight is drawn into the image; the boxes are also laid over it (``.cq-pdf-box``)
    so the panel can scroll the first one into view."""
    parts = ['<div class="cq-pdf" id="cq-pdf"><div class="cq-pdf-scroll" tabindex="0">']
    for k, pg in enumerate(pages):
        no = int(pg["page"]) + 1
        parts.append(f'<div class="cq-pdf-page" data-page="{no}">'
                     f'<div class="cq-pdf-pno">Page {no} of {int(n_pages)}</div><div class="cq-pdf-wrap">'
                     f'<img class="cq-pdf-img" alt="{esc(doc)}, page {no}, with the cited passage highlighted" '
                     f'src="data:image/png;base64,{pg["png"]}">')
        for j, (x, y, w, h) in enumerate(pg["boxes"]):
            first = ' id="cq-pdf-mark"' if k == 0 and j == 0 else ""
            parts.append(f'<div class="cq-pdf-box"{first} style="left:{x:.3f}%;top:{y:.3f}%;'
                         f'width:{w:.3f}%;height:{h:.3f}%"></div>')
        parts.append("</div></div>")
    parts.append("</div></div>")
    return "".join(parts)


def render_evidence(
    *,
    label: str,
    meta: Mapping[str, Any],
    section: str,
    doc_text: str,
    start: int,
    end: int,
    expected_quote: str | None = None,
    score: float | None = None,
    nonce: str = "",
    page_view: str = "",
    page_label: str = "",
) -> str:
    """Source document with ``doc_text[start:end]`` wrapped in ``<mark id="cq-mark">``.

    ``nonce`` makes every rendering distinct, so clicking the same citation again re-renders the panel
    and scrolls the mark back into view.
    """
    n = len(doc_text)
    start = max(0, min(int(start), n))
    end = max(start, min(int(end), n))
    lo = max(0, start - EVIDENCE_WINDOW)
    hi = min(n, end + EVIDENCE_WINDOW)
    title = meta.get("title") or meta.get("doc", "")
    facts = [str(meta[k]) for k in ("venue", "date", "kind") if meta.get(k)]
    head = [
        f'<div class="cq-ev" id="cq-evidence" data-nonce="{esc(nonce)}">',
        f'<div class="cq-ev-label">{esc(label)}</div>',
        f'<div class="cq-ev-title">{esc(title)}</div>',
    ]
    if facts:
        head.append(f'<div class="cq-ev-meta">{" · ".join(esc(f) for f in facts)}</div>')
    loc = [f"<strong>{esc(page_label)}</strong>"] if page_label else []
    loc += [f"Section: <strong>{esc(section)}</strong>"] if section else []
    loc.append(f"{esc(meta.get('doc', ''))}, characters {start:,}–{end:,}")
    if score is not None:
        loc.append(f"retrieval score {score:.3f}")
    head.append(f'<div class="cq-ev-loc">{" · ".join(loc)}</div>')
    if expected_quote is not None and doc_text[start:end] != expected_quote:
        head.append(
            '<div class="cq-warn">The cited quote does not match the document text at these offsets '
            "(the document may have changed since the answer was given).</div>"
        )
    before = doc_text[lo:start]
    quote = doc_text[start:end]
    after = doc_text[end:hi]
    body = [
        '<div class="cq-doc" tabindex="0">',
        f'<span class="cq-omitted">[… {lo:,} characters before …]</span>\n' if lo else "",
        esc(before),
        f'<mark id="cq-mark" class="cq-mark" data-doc="{esc(meta.get("doc", ""))}" '
        f'data-start="{start}" data-end="{end}">{esc(quote)}</mark>',
        esc(after),
        f'\n<span class="cq-omitted">[… {n - hi:,} characters after …]</span>' if hi < n else "",
        "</div>",
    ]
    if page_view:  # a PDF: the rendered page beside the text view
        return ("".join(head) + f'<div class="cq-ev-split">{page_view}<div class="cq-ev-text">'
                + "".join(body) + "</div></div></div>")
    return "".join(head) + "".join(body) + "</div>"


def render_evidence_message(message: str) -> str:
    return f'<div class="cq-ev-empty"><div class="cq-warn">{esc(message)}</div></div>'


# ---------------------------------------------------------------- exports


def answer_markdown(ans: Mapping[str, Any], doc_meta: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The answer as a Markdown report: question, answer, references with exact quotes and offsets."""
    doc_meta = doc_meta or {}
    lines = [
        "# citeqa answer",
        "",
        "## Question",
        "",
        str(ans.get("question", "")).strip(),
        "",
        "## Answer",
        "",
    ]
    if ans.get("refused"):
        lines += ["> **Not answered:** the indexed documents do not support an answer.", ""]
    lines += [str(ans.get("answer", "")).strip(), ""]
    unsupported = [s for s in ans.get("sentences", []) or [] if not s.get("supported", True)]
    if unsupported:
        lines += ["### Not supported by the cited passages", ""]
        lines += [f"- {s['text']}" + (f" ({s['note']})" if s.get("note") else "") for s in unsupported]
        lines.append("")
    if ans.get("conflicts"):
        lines += ["### Sources disagree", ""] + [f"- {c}" for c in ans["conflicts"]] + [""]
    if ans.get("notices"):
        lines += ["### Notices", ""] + [f"- {c}" for c in ans["notices"]] + [""]
    cits = ans.get("citations", []) or []
    if cits:
        lines += ["## Nearest passages (not enough to answer)" if ans.get("refused") else "## References", ""]
        for c in cits:
            meta = doc_meta.get(c["doc"], {})
            facts = ", ".join(str(meta[k]) for k in ("venue", "date") if meta.get(k))
            head = f"**[{c['n']}]** {c.get('title') or c['doc']}"
            if facts:
                head += f" ({facts})"
            if c.get("section"):
                head += f" — {c['section']}"
            lines += [
                head,
                f"`{c['doc']}`, characters {c['start']}–{c['end']}",
                "",
                *[f"> {ln}" if ln else ">" for ln in str(c.get("quote", "")).splitlines() or [""]],
                "",
            ]
    elif ans.get("refused") and ans.get("passages"):
        lines += ["## Nearest passages", ""]
        for p in ans["passages"][:5]:
            lines += [
                f"- {p.get('title') or p['doc']} — `{p['doc']}`, characters {p['start']}–{p['end']}",
                f"  > {_trim(p.get('quote', ''), 400)}",
            ]
        lines.append("")
    meta_line = f"Mode: {ans.get('mode', '')}"
    if ans.get("support") is not None:
        meta_line += f" · support {ans.get('support')}"
    lines += ["---", meta_line, ""]
    return "\n".join(lines)


def answer_json(ans: Mapping[str, Any]) -> str:
    return json.dumps(ans, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- library


LIBRARY_COLUMNS = ["Title", "Kind", "Venue", "Date", "Passages", "Tables", "File"]


def library_rows(docs: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [
            d.get("title") or d.get("doc", ""),
            d.get("kind", ""),
            d.get("venue", ""),
            d.get("date", ""),
            int(d.get("units", 0) or 0),
            int(d.get("tables", 0) or 0),
            d.get("doc", ""),
        ]
        for d in docs
    ]


def library_message(kind: str, text: str) -> str:
    """A one-line library report (``kind``: ok, notice or error)."""
    return (
        f'<div class="cq-upload-report" data-nonce="{uuid.uuid4().hex[:8]}">'
        f'<div class="cq-{kind}">{esc(text)}</div></div>'
    )


def upload_report_html(
    added: Sequence[str], duplicates: Sequence[str], errors: Sequence[tuple[str, str]], seconds: float | None
) -> str:
    parts = [f'<div class="cq-upload-report" data-nonce="{uuid.uuid4().hex[:8]}">']
    if added:
        t = f" in {seconds:.1f} s" if seconds is not None else ""
        parts.append(f'<div class="cq-ok">&#10004; Added {len(added)} document(s){t}:</div><ul>')
        parts += [f"<li>{esc(a)}</li>" for a in added]
        parts.append("</ul>")
    if duplicates:
        parts.append('<div class="cq-notice">Already in the library (unchanged):</div><ul>')
        parts += [f"<li>{esc(a)}</li>" for a in duplicates]
        parts.append("</ul>")
    if errors:
        parts.append('<div class="cq-error">&#10008; Not added:</div><ul>')
        parts += [f"<li><strong>{esc(f)}</strong>: {esc(m)}</li>" for f, m in errors]
        parts.append("</ul>")
    if not (added or duplicates or errors):
        parts.append("<div>No files selected.</div>")
    parts.append("</div>")
    return "".join(parts)

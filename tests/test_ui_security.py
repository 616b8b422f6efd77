"""Upload hygiene and output escaping of the web UI (pure functions; no browser, no index)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the `ui` package lives at the repo root

from ui.render import (  # noqa: E402
    answer_markdown,
    esc,
    parse_cite_key,
    render_answer,
    render_evidence,
)
from ui.security import (  # noqa: E402
    UploadRejected,
    check_size,
    confined_path,
    safe_filename,
    stage_upload,
)

# ------------------------------------------------------------------------------ file names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("paper.pdf", "paper.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\system32\\evil.md", "evil.md"),
        ("/abs/path/notes.TXT", "notes.txt"),
        ("my paper (final) v2.pdf", "my_paper_final_v2.pdf"),
        ("résumé café.md", "resume_cafe.md"),
        (".hidden.txt", "hidden.txt"),
        ("...txt.txt", "txt.txt"),
        ("a<script>b.html", "a_script_b.html"),
        ("semi;colon|pipe$.htm", "semi_colon_pipe.htm"),
        ("..txt", "upload.txt"),
        ("nul\x00byte.txt", "nulbyte.txt"),
        ("日本語.pdf", "upload.pdf"),
    ],
)
def test_safe_filename(raw: str, expected: str) -> None:
    assert safe_filename(raw) == expected


@pytest.mark.parametrize(
    "raw", ["../../etc/passwd", "script.sh", "x.exe", "noext", "", "archive.tar.gz", "a.pdf.exe"]
)
def test_safe_filename_rejects_other_types(raw: str) -> None:
    with pytest.raises(UploadRejected, match="unsupported file type"):
        safe_filename(raw)


def test_safe_filename_caps_length_and_keeps_suffix() -> None:
    name = safe_filename("x" * 500 + ".pdf")
    assert len(name) <= 120 and name.endswith(".pdf")


def test_safe_filename_only_safe_characters() -> None:
    for raw in ['a b/c:d*e?f"g<h>i|j.txt', "\u202egnp.txt", "a\nb\rc\td.md", "~user/$HOME.md"]:
        name = safe_filename(raw)
        assert all(c.isalnum() or c in "._-" for c in name), name
        assert not name.startswith(".") and "/" not in name and "\\" not in name


def test_confined_path_stays_inside(tmp_path: Path) -> None:
    assert confined_path(tmp_path, "ok.txt") == (tmp_path / "ok.txt").resolve()
    for bad in ["../escape.txt", "sub/dir.txt", "/etc/passwd", ".."]:
        with pytest.raises(UploadRejected):
            confined_path(tmp_path, bad)


# ------------------------------------------------------------------------------ sizes and staging


def test_check_size_limit_message() -> None:
    check_size("ok.txt", 1024, 1)
    with pytest.raises(UploadRejected, match=r"big\.pdf is 3\.0 MB; the upload limit is 2 MB"):
        check_size("big.pdf", 3 * 1024 * 1024, 2)
    with pytest.raises(UploadRejected, match="empty"):
        check_size("empty.txt", 0, 2)


def test_stage_upload_traversal_cannot_escape(tmp_path: Path) -> None:
    src = tmp_path / "incoming.bin"
    src.write_text("hello", encoding="utf-8")
    up = tmp_path / "uploads"
    dest, dup = stage_upload(src, up, 1, original_name="../../etc/passwd.txt")
    assert not dup
    assert dest == (up / "passwd.txt").resolve()
    assert dest.read_text(encoding="utf-8") == "hello"
    assert not (tmp_path / "etc").exists()
    assert [p.name for p in up.iterdir()] == ["passwd.txt"]  # no temp file left behind


def test_stage_upload_size_limit(tmp_path: Path) -> None:
    src = tmp_path / "big.txt"
    src.write_bytes(b"x" * (2 * 1024 * 1024 + 1))
    with pytest.raises(UploadRejected, match="upload limit is 2 MB"):
        stage_upload(src, tmp_path / "uploads", 2, original_name="big.txt")
    assert not (tmp_path / "uploads" / "big.txt").exists()


def test_stage_upload_unique_names_and_duplicates(tmp_path: Path) -> None:
    up = tmp_path / "uploads"
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.write_text("first", encoding="utf-8")
    b.write_text("second", encoding="utf-8")
    d1, dup1 = stage_upload(a, up, 1, "notes.txt")
    d2, dup2 = stage_upload(a, up, 1, "notes.txt")
    d3, dup3 = stage_upload(b, up, 1, "notes.txt")
    d4, _ = stage_upload(b, up, 1, "seed.txt", taken={"seed.txt"})
    assert (d1.name, dup1) == ("notes.txt", False)
    assert (d2, dup2) == (d1, True)
    assert (d3.name, dup3) == ("notes-2.txt", False)
    assert d4.name == "seed-2.txt"


# ------------------------------------------------------------------------------ escaping

EVIL = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2"> {{this}} ${alert(1)} $$x$$'


def test_esc_is_inert() -> None:
    out = esc(EVIL)
    for bad in ("<script", "<img", "{{", "${", "$$", '"'):
        assert bad not in out


def _answer(text: str, quote: str) -> dict:
    return {
        "question": "q?",
        "answer": text,
        "refused": False,
        "citations": [
            {
                "n": 1,
                "doc": "evil.txt",
                "title": "<b>Evil</b>",
                "section": "<i>s</i>",
                "start": 0,
                "end": len(quote),
                "quote": quote,
                "score": 0.5,
                "text": quote,
            }
        ],
        "passages": [],
        "sentences": [
            {"text": text, "citations": [1], "supported": False, "note": '"><img src=x onerror=alert(1)>'}
        ],
        "conflicts": ["<img src=x onerror=alert(2)> says 376 [1]"],
        "notices": ["<script>alert(3)</script>"],
        "mode": "openai",
        "support": 0.5,
    }


def test_render_answer_escapes_everything() -> None:
    html = render_answer(_answer(EVIL + " [1]", EVIL), 0)
    assert "<script" not in html and "<img" not in html and "<b>Evil" not in html and "{{" not in html
    assert 'href="#cq-cite-0-c-1"' in html  # the marker is a link
    assert "cq-unsupported" in html and "cq-conflict" in html
    assert "\n\n" not in html  # one HTML block for the Markdown renderer


def test_unknown_marker_is_left_as_text() -> None:
    html = render_answer(_answer("See [7] and [1].", "x"), 3)
    assert "[7]" in html and 'href="#cq-cite-3-c-7"' not in html and 'href="#cq-cite-3-c-1"' in html


def test_render_evidence_marks_exact_span_and_escapes() -> None:
    doc = "Intro <b>bold</b>\n" + EVIL + "\nTail & end"
    start = doc.index("<script>")
    end = start + len(EVIL)
    html = render_evidence(
        label="[1]",
        meta={"doc": "evil.txt", "title": "<Evil>", "venue": "V", "date": "2020"},
        section="Results",
        doc_text=doc,
        start=start,
        end=end,
        expected_quote=EVIL,
    )
    assert "<script" not in html and "<img" not in html and "<b>bold" not in html and "<Evil>" not in html
    assert f'data-start="{start}" data-end="{end}"' in html
    assert html.count("<mark") == 1


def test_render_evidence_warns_on_quote_mismatch() -> None:
    html = render_evidence(
        label="[1]", meta={"doc": "d"}, section="", doc_text="abcdef", start=1, end=3, expected_quote="zz"
    )
    assert "does not match" in html


def test_parse_cite_key_rejects_garbage() -> None:
    assert parse_cite_key("2:c:3") == (2, "c", 3)
    assert parse_cite_key("0:p:0") == (0, "p", 0)
    for bad in ["", "1:x:1", "a:c:1", "1:c:1;drop", None]:
        assert parse_cite_key(bad) is None  # type: ignore[arg-type]


def test_markdown_export_has_quotes_and_offsets() -> None:
    md = answer_markdown(_answer("It was 7.7 months [1].", "The median was 7.7 months."), {})
    assert "## References" in md and "characters 0–26" in md and "> The median was 7.7 months." in md


def test_unsupported_sentence_found_after_marker_renumbering() -> None:
    ans = _answer("Survival was 7.7 months [1]. It cured everyone [1, 2].", "Survival was 7.7 months.")
    ans["citations"].append(dict(ans["citations"][0], n=2))
    ans["sentences"] = [
        {"text": "Survival was 7.7 months [4].", "citations": [1], "supported": True, "note": ""},
        {"text": "It cured everyone [5, 6].", "citations": [1, 2], "supported": False, "note": "no support"},
    ]
    html = render_answer(ans, 0)
    unsupported = html[html.index('class="cq-unsupported"') :]
    assert unsupported.index("It cured everyone") < unsupported.index("cq-flag")
    assert 'href="#cq-cite-0-c-2"' in unsupported.split("cq-flag")[0]  # its markers are inside the mark
    assert "Not supported by the cited passages:" not in html  # located, so not listed separately

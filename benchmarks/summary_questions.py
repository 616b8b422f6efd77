"""Questions about a document's overall finding, checked on documents nobody wrote them for.

For every document of a folder whose text states its conclusion behind an inline "CONCLUSION(S):" label (the
public packs' abstracts and articles) — or, with ``--any``, every document (the PDFs, whose Conclusions
sections or abstracts hold it) — the question "What was the main finding of the study on <the first eight
words of its title>?" is asked of an index of the whole folder. Printed: how many were refused, how many
answers cite that document first, and (labelled documents) how many quote the labelled sentence. The
documents are shuffled with a fixed seed and the first ``--limit`` taken.

    .venv/bin/python benchmarks/summary_questions.py ../shared/eval/external-dev/pubmedqa-dev/docs --limit 150
    .venv/bin/python benchmarks/summary_questions.py ../shared/eval/external-dev/covidqa-dev/docs
    .venv/bin/python benchmarks/summary_questions.py ../shared/pdfs --any

The index is built under ``--index-dir`` (default: a temporary directory), never in the project's index/.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from citeqa.answer.summary import INLINE_CONCLUSION  # noqa: E402
from citeqa.assistant import Assistant  # noqa: E402
from citeqa.config import Settings  # noqa: E402
from citeqa.index import Index  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("docs", type=Path)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--any", action="store_true", help="every document, not only those with an inline label")
    ap.add_argument("--index-dir", type=Path, default=None)
    args = ap.parse_args()
    if not args.docs.is_dir():
        sys.exit(f"{args.docs}: no such folder (the shared data are not on this machine?)")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index_dir=args.index_dir or Path(tmp), seeds_dir=args.docs)
        index = Index.open(settings)
        bot = Assistant(index, settings)
        docs = [d["doc"] for d in index.documents()]
        random.Random(0).shuffle(docs)
        asked = refused = first = quoted = labelled = 0
        for doc in docs:
            title = index.meta(doc).title.split()
            label = next((s for u in index.doc_units(doc) for s in u.sentences if INLINE_CONCLUSION.match(s.text)),
                         None)
            if len(title) < 4 or (label is None and not args.any):
                continue
            asked += 1
            ans = bot.ask(f"What was the main finding of the study on {' '.join(title[:8])}?")
            if ans.refused or not ans.citations:
                refused += 1
            else:
                c = ans.citations[0]
                first += c.doc == doc
                if label is not None:
                    labelled += 1
                    quoted += c.doc == doc and c.start < label.end and label.start < c.end
            if asked >= args.limit:
                break
    print(f"{args.docs}: {asked} questions; refused {refused}; first citation in the document asked about "
          f"{first} ({first / max(asked, 1):.0%}); quoting its labelled conclusion {quoted} of {labelled}")


if __name__ == "__main__":
    main()

"""Index build throughput: a fresh build of the seeds vs the raw MiniLM encoder, then an incremental rebuild.

Measures, into temporary index directories (the project's ``index/`` is never touched):

1. a fresh ``Index.build([seeds], rebuild=True)``: units, texts embedded, seconds, texts/s and chars/s;
   the embedding stage is timed separately from parsing/BM25/FAISS/persisting by wrapping the embedder
   (time spent inside ``encode``) and by the ``progress`` callback timestamps (first to last tick);
2. raw ``SentenceTransformer.encode`` (the same model object, same batch size, normalize_embeddings=True)
   on exactly the texts the build embedded, reconstructed the way ``index._assemble`` builds them
   (``unit.embed_text`` for every unit, then the sentence texts of multi-sentence chunks);
   ratios reported: build-embedding throughput / raw throughput, and whole-build throughput / raw;
3. incremental: the seeds are copied to a temp dir and indexed; one sentence is appended to one file and
   the index rebuilt (only that file should be re-embedded), compared with a full rebuild of the same files.

The model is loaded and warmed before anything is timed. Build and raw runs alternate (``--repeats``) and
the median is reported, because other processes share the 2 CPU cores; the load average is printed.

    .venv/bin/python benchmarks/build_throughput.py
    .venv/bin/python benchmarks/build_throughput.py --repeats 5 --seeds seeds --json runs/build.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from citeqa.config import Settings  # noqa: E402
from citeqa.embed import reference_embedder  # noqa: E402
from citeqa.index import Index  # noqa: E402
from citeqa.ingest import SUPPORTED  # noqa: E402
from citeqa.types import Unit  # noqa: E402


class TimedEmbedder:
    """Delegates to the real embedder and records the wall time spent inside ``encode``."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.name, self.version, self.dim = inner.name, inner.version, inner.dim
        self.seconds = 0.0
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        t = time.perf_counter()
        out = self.inner.encode(texts, batch_size, progress)
        self.seconds += time.perf_counter() - t
        self.texts.extend(texts)
        return out


def embedded_texts(units: Sequence[Unit]) -> list[str]:
    """The texts ``index._assemble`` sends to the encoder for these (newly parsed) units, in order."""
    texts = [u.embed_text for u in units]
    for u in units:
        if u.kind == "chunk" and len(u.sentences) > 1:
            texts.extend(s.text for s in u.sentences)
    return texts


def load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


def fresh_build(seeds: Path, settings: Settings, embedder: TimedEmbedder) -> dict[str, float | int]:
    stamps: list[float] = []

    def progress(done: int, total: int, stage: str) -> None:
        stamps.append(time.perf_counter())

    embedder.seconds, embedder.texts = 0.0, []
    t0 = time.perf_counter()
    idx = Index.build([seeds], settings, progress=progress, embedder=embedder, rebuild=True)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    rep = idx.last_report
    assert rep is not None
    texts = embedded_texts(idx.units)
    if texts != embedder.texts:
        raise SystemExit("reconstructed texts differ from what the index embedded; update embedded_texts()")
    return {
        "units": rep.units, "embedded": rep.embedded, "chars": sum(len(t) for t in texts),
        "seconds": rep.seconds, "wall": wall, "encode_seconds": embedder.seconds,
        "progress_span": (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan"),
        "_texts": texts,  # type: ignore[dict-item]
    }


def padded_tokens(model, texts: list[str], batch_size: int, ascending: bool) -> int:  # type: ignore[no-untyped-def]
    """Tokens the transformer processes (batch size x longest sequence, summed over batches).

    ``MiniLMEmbedder`` sorts by length ascending per ``encode`` call (units and sentences are two calls);
    ``SentenceTransformer.encode`` sorts the whole list by length descending.
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=not ascending)
    lens = [min(len(ids), model.max_seq_length)
            for ids in model.tokenizer([texts[i] for i in order], truncation=False)["input_ids"]]
    return sum(len(lens[a : a + batch_size]) * max(lens[a : a + batch_size])
               for a in range(0, len(lens), batch_size))


def raw_encode(model, texts: list[str], batch_size: int) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                 show_progress_bar=False)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=Path, default=ROOT / "seeds", help="directory of documents to index")
    ap.add_argument("--repeats", type=int, default=2, help="alternating build/raw runs (median reported)")
    ap.add_argument("--batch-size", type=int, default=None, help="override Settings.embed_batch_size")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    import torch

    print(f"machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, load avg {load()}")
    tmp = Path(tempfile.mkdtemp(prefix="citeqa-bench-build-"))
    try:
        # The sentence-transformers path against raw sentence-transformers (the encoder runtimes are
        # compared with it in benchmarks/speed.py).
        base = Settings(index_dir=tmp / "index", seeds_dir=args.seeds, embed_runtime="torch",
                        sentence_vectors="separate")
        if args.batch_size:
            base = base.model_copy(update={"embed_batch_size": args.batch_size})
        bs = base.embed_batch_size
        t = time.perf_counter()
        real = reference_embedder()
        print(f"model load: {time.perf_counter() - t:.2f} s")
        emb = TimedEmbedder(real)
        model = real.model
        # Warm-up (untimed): two full batches of seed text through the model, and the parsing code once.
        seed_text = " ".join(p.read_text(encoding="utf-8", errors="replace")
                             for p in sorted(args.seeds.glob("*.txt")))
        raw_encode(model, [seed_text[i * 300 : i * 300 + 300] for i in range(2 * bs)], bs)
        smallest = min((p for p in args.seeds.iterdir() if p.suffix.lower() in SUPPORTED),
                       key=lambda p: p.stat().st_size)
        Index.build([smallest], base.model_copy(update={"index_dir": tmp / "warm"}), embedder=emb)  # type: ignore[arg-type]
        texts: list[str] = []

        builds, raws = [], []
        for r in range(args.repeats):
            # Alternate the order (build, raw), (raw, build), ... so drifting machine load hits both alike.
            if r % 2 and texts:
                raw = raw_encode(model, texts, bs)
                b = fresh_build(args.seeds, base, emb)
            else:
                b = fresh_build(args.seeds, base, emb)
                texts = b["_texts"]  # type: ignore[assignment]
                raw = raw_encode(model, texts, bs)
            builds.append(b)
            raws.append(raw)
            print(f"  run {r + 1}: build {b['seconds']:.2f} s (encode {b['encode_seconds']:.2f} s, "
                  f"progress span {b['progress_span']:.2f} s), raw encode {raw:.2f} s, load {load()}")

        def med(key: str) -> float:
            return statistics.median(float(b[key]) for b in builds)

        n, chars = int(builds[0]["embedded"]), int(builds[0]["chars"])
        build_s, enc_s, span_s, raw_s = med("seconds"), med("encode_seconds"), med("progress_span"), \
            statistics.median(raws)
        other_s = build_s - enc_s
        print()
        print(f"Fresh build of {args.seeds} (batch size {bs}; medians of {args.repeats} runs)")
        units = int(builds[0]["units"])
        print(f"  units {units}, texts embedded {n} ({n - units} sentence texts), {chars:,} chars")
        print(f"  {'stage':<34}{'seconds':>9}{'texts/s':>10}{'chars/s':>11}")
        rows = [
            ("whole build (report.seconds)", build_s),
            ("  embedding (inside encode)", enc_s),
            ("  embedding (progress span)", span_s),
            ("  parse + BM25 + FAISS + persist", other_s),
            ("raw model.encode, same texts", raw_s),
        ]
        for name, s in rows:
            tps = f"{n / s:10.1f}" if "parse" not in name else f"{'':>10}"
            cps = f"{chars / s:11.0f}" if "parse" not in name else f"{'':>11}"
            print(f"  {name:<34}{s:9.2f}{tps}{cps}")
        pair_embed = [raw / float(b["encode_seconds"]) for b, raw in zip(builds, raws, strict=True)]
        pair_build = [raw / float(b["seconds"]) for b, raw in zip(builds, raws, strict=True)]
        print(f"  embedding-stage throughput / raw: {raw_s / enc_s:.2f}x of medians; per run "
              f"{', '.join(f'{x:.2f}' for x in pair_embed)}   (target >= 0.9x)")
        print(f"  whole-build throughput / raw:     {raw_s / build_s:.2f}x of medians; per run "
              f"{', '.join(f'{x:.2f}' for x in pair_build)}")
        # Load-independent view of the encoder work: padded tokens of the batches each way builds.
        idx_tok = padded_tokens(model, texts[:units], bs, ascending=True) + \
            padded_tokens(model, texts[units:], bs, ascending=True)
        raw_tok = padded_tokens(model, texts, bs, ascending=False)
        print(f"  padded tokens through the encoder: index batching {idx_tok:,} vs raw encode {raw_tok:,} "
              f"(work ratio raw/index {raw_tok / idx_tok:.2f})")

        # --- incremental ---------------------------------------------------------------------------
        corpus = tmp / "corpus"
        shutil.copytree(args.seeds, corpus)
        # Same index dir as the fresh builds: documents are matched by name and content hash, so the
        # last fresh build of the seeds is the starting point and only the touched file differs.
        inc = base.model_copy(update={"seeds_dir": corpus})
        target = sorted(p for p in corpus.iterdir() if p.suffix == ".txt")[0]
        with target.open("a", encoding="utf-8") as f:
            f.write("\n\nThe benchmark appended this sentence to check incremental rebuilds.\n")
        emb.seconds = 0.0
        idx = Index.build([corpus], inc, embedder=emb)  # type: ignore[arg-type]
        ri = idx.last_report
        assert ri is not None
        inc_enc = emb.seconds
        emb.seconds = 0.0
        full = Index.build([corpus], inc, embedder=emb, rebuild=True).last_report  # type: ignore[arg-type]
        assert full is not None
        full_enc = emb.seconds
        print()
        print(f"Incremental rebuild after appending a sentence to {target.name}")
        print(f"  {'':<18}{'seconds':>9}{'encode s':>10}{'embedded':>10}  re-embedded / added / unchanged")
        print(f"  {'incremental':<18}{ri.seconds:9.2f}{inc_enc:10.2f}{ri.embedded:10d}  "
              f"{ri.reembedded} / {ri.added} / {len(ri.unchanged)} unchanged")
        print(f"  {'full rebuild':<18}{full.seconds:9.2f}{full_enc:10.2f}{full.embedded:10d}  "
              f"{len(full.added)} added")
        ok = ri.reembedded == [target.name] and not ri.added
        print(f"  only the touched file re-embedded: {'yes' if ok else 'NO'}")
        print(f"\nload avg at end: {load()}")

        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "batch_size": bs, "units": builds[0]["units"], "embedded": n, "chars": chars,
                "build_s": build_s, "encode_s": enc_s, "progress_span_s": span_s, "raw_s": raw_s,
                "embed_ratio": raw_s / enc_s, "build_ratio": raw_s / build_s,
                "embed_ratio_per_run": pair_embed, "build_ratio_per_run": pair_build,
                "padded_tokens_index": idx_tok, "padded_tokens_raw": raw_tok,
                "incremental": {"seconds": ri.seconds, "embedded": ri.embedded, "reembedded": ri.reembedded,
                                "added": ri.added, "unchanged": len(ri.unchanged)},
                "full_rebuild": {"seconds": full.seconds, "embedded": full.embedded},
                "loadavg": os.getloadavg(),
            }, indent=2))
        if not ok:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

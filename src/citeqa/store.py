"""On-disk layout of one index build (JSON + NumPy + FAISS files; nothing is pickled).

    index/<fingerprint>/CURRENT            name of the live build (switched atomically)
    index/<fingerprint>/builds/<id>/
        manifest.json   model, settings, per-file content hashes and counts
        docs.jsonl      per document: meta, decoded text, hash, sections, tables
        units.jsonl     retrieval units with sentence spans
        vectors.npy     unit embeddings (float32, L2-normalised)
        sent_vectors.npy + sent_index.npy   embeddings of sentences inside multi-sentence chunks
        faiss.index     inner-product index over vectors.npy
        bm25/           bm25s sparse matrices
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from citeqa.errors import IndexDamaged, IndexMissing
from citeqa.types import DocMeta, Sentence, Unit


def unit_to_json(u: Unit) -> dict[str, Any]:
    d = asdict(u)
    d["sentences"] = [[s.start, s.end, s.text, int(s.continues)] for s in u.sentences]
    d["cells"] = [list(c) for c in u.cells]
    return d


def unit_from_json(d: dict[str, Any]) -> Unit:
    return Unit(
        id=int(d["id"]), doc=d["doc"], section=d["section"], kind=d["kind"], start=int(d["start"]),
        end=int(d["end"]), text=d["text"],
        sentences=tuple(Sentence(int(a), int(b), t, bool(c)) for a, b, t, c in d["sentences"]),
        table=d.get("table", ""), cells=tuple((h, v) for h, v in d.get("cells", [])), lead=d.get("lead", ""),
    )


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def meta_from_json(d: dict[str, Any]) -> DocMeta:
    return DocMeta(**{k: d.get(k, "") for k in DocMeta.__dataclass_fields__})


def current_build(root: Path) -> Path:
    """The live build directory under ``root`` (index/<fingerprint>)."""
    pointer = root / "CURRENT"
    if not pointer.is_file():
        raise IndexMissing(str(root))
    build = root / "builds" / pointer.read_text(encoding="utf-8").strip()
    if not (build / "manifest.json").is_file():
        raise IndexDamaged(str(root), f"CURRENT points at missing build {build.name}")
    return build


def new_build_dir(root: Path) -> Path:
    d = root / "builds" / f"tmp-{uuid.uuid4().hex[:12]}"
    d.mkdir(parents=True)
    return d


def publish(root: Path, tmp: Path) -> Path:
    """Make ``tmp`` the live build: rename it, then swap the CURRENT pointer atomically."""
    final = tmp.with_name(tmp.name.replace("tmp-", "b-"))
    os.replace(tmp, final)
    pointer_tmp = root / f"CURRENT.{uuid.uuid4().hex[:8]}"
    pointer_tmp.write_text(final.name, encoding="utf-8")
    with open(pointer_tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(pointer_tmp, root / "CURRENT")
    # Old builds are garbage now; so are temp dirs left by crashed builds (an hour old: a build
    # running in another process right now keeps its own).
    for d in (root / "builds").iterdir():
        stale = d.name.startswith("b-") or time.time() - d.stat().st_mtime > 3600
        if d != final and d.is_dir() and stale:
            shutil.rmtree(d, ignore_errors=True)
    return final


def save_array(path: Path, arr: np.ndarray) -> None:
    np.save(path, arr, allow_pickle=False)


def load_array(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)

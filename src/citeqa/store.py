"""On-disk layout of one index build (JSON + NumPy + FAISS files; nothing is pickled).

    index/<fingerprint>/CURRENT            name of the live build (switched atomically)
    index/<fingerprint>/builds/<id>/
        manifest.json   model, settings, per-file content hashes and counts
        docs.jsonl      per document: meta, hash, sections, tables, source, abbreviations it defines
        texts.txt + texts.off.npy   decoded document texts (UTF-8, byte offsets); citations point into them
        units.jsonl + units.off.npy retrieval units with sentence spans (line i is unit i)
        unit_doc.npy    document number of each unit
        vectors.npy     unit embeddings (float16, L2-normalised)
        sent_vectors.npy + sent_ptr.npy   embeddings of the sentences inside multi-sentence chunks
        faiss.index     inner-product index over the unit embeddings (exact, or HNSW with 8-bit storage)
        bm25/           term rows and postings (see bm25.py), vocab.json
        aliases.json    per document, the catalog words that name it

Large files stay on disk when loaded (read with pread): a question reads only the units, vectors and
postings it touches, so serving memory stays far below the index size.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import weakref
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from citeqa import integrity
from citeqa.errors import IndexDamaged, IndexMissing
from citeqa.types import DocMeta, Sentence, Unit


def unit_to_json(u: Unit) -> dict[str, Any]:
    d = asdict(u)
    del d["id"]  # a unit's id is its line number, so unchanged documents' lines are copied as-is
    d["sentences"] = [[s.start, s.end, s.text, int(s.continues)] for s in u.sentences]
    d["cells"] = [list(c) for c in u.cells]
    return d


def unit_from_json(d: dict[str, Any], uid: int) -> Unit:
    return Unit(
        id=uid, doc=d["doc"], section=d["section"], kind=d["kind"], start=int(d["start"]),
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
    # Old builds are garbage now; so are temp dirs left by crashed builds. Under the writer lock no
    # other build can be running, so all of them go; without it (a direct caller of write_build), only
    # temp dirs an hour old, as a build running in another process keeps its own.
    if integrity.holds_lock(root):
        integrity.remove_debris(root, keep=final)
        return final
    for d in (root / "builds").iterdir():
        stale = d.name.startswith("b-") or time.time() - d.stat().st_mtime > 3600
        if d != final and d.is_dir() and stale:
            shutil.rmtree(d, ignore_errors=True)
    return final


def save_array(path: Path, arr: np.ndarray) -> None:
    np.save(path, arr, allow_pickle=False)


def load_array(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


class _File:
    """A read-only file read with ``pread``: a question copies out the few rows it needs, so the
    process holds none of the file (a memory map would; the kernel maps whole cached folios, and
    touching 120 random vectors put a 70 MB file in the process's RSS). Thread-safe: no shared offset."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)  # closed when the snapshot holding it goes away

    def read(self, start: int, size: int) -> bytes:
        if size <= 0:
            return b""
        data = os.pread(self._fd, size, start)
        if len(data) != size:
            raise IndexDamaged(str(self.path.parent), f"{self.path.name}: short read at byte {start}")
        return data


class ArrayFile:
    """A ``.npy`` array on disk, sliced like an array (``a[i]``, ``a[lo:hi]``) without loading it."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = header(f)
            self._start = f.tell()
        if fortran or dtype.hasobject:
            raise ValueError(f"{path.name}: unsupported array layout")
        self.shape: tuple[int, ...] = tuple(shape)
        self.dtype = dtype
        self._row = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize
        if self._start + self._row * (self.shape[0] if self.shape else 0) > path.stat().st_size:
            raise ValueError(f"{path.name}: file shorter than its header says")
        self._file = _File(path)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, lo: int, hi: int) -> np.ndarray:
        lo, hi = max(0, lo), min(hi, len(self))
        n = max(0, hi - lo)
        data = self._file.read(self._start + lo * self._row, n * self._row)
        return np.frombuffer(data, self.dtype).reshape((n, *self.shape[1:]))

    def __getitem__(self, i: int | slice | np.ndarray) -> np.ndarray:
        if isinstance(i, np.ndarray):  # a sample of rows (sorted indexes read in one pass)
            return np.stack([self[int(j)] for j in i]) if len(i) else self.rows(0, 0)
        if isinstance(i, slice):
            lo, hi, step = i.indices(len(self))
            return self.rows(lo, hi)[::step] if step != 1 else self.rows(lo, hi)
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.rows(i, i + 1)[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.rows(0, len(self))
        return a if dtype is None else a.astype(dtype)


class Records:
    """Line-addressed storage: record i of ``path`` spans bytes ``off[i]:off[i+1]``.

    Used for unit JSON and for document texts. Writing copies unchanged byte ranges from the previous
    build without decoding them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.off = np.load(path.with_suffix(".off.npy"), allow_pickle=False)
        if len(self.off) == 0 or int(self.off[-1]) != path.stat().st_size:
            raise ValueError(f"{path.name}: offsets do not match the file size")
        self._file = _File(path)

    def __len__(self) -> int:
        return len(self.off) - 1

    def raw(self, lo: int, hi: int | None = None) -> bytes:
        """Bytes of records ``lo`` up to ``hi`` (exclusive; one record when ``hi`` is None)."""
        hi = lo + 1 if hi is None else hi
        if hi <= lo:
            return b""
        return self._file.read(int(self.off[lo]), int(self.off[hi] - self.off[lo]))

    def text(self, i: int) -> str:
        try:
            return self.raw(i).decode("utf-8")
        except UnicodeDecodeError as e:
            raise IndexDamaged(str(self.path.parent), f"{self.path.name} record {i} is not valid UTF-8: "
                               "the file was changed after it was written") from e


class RecordWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = path.open("wb")
        self._off = [0]

    def add(self, data: bytes) -> None:
        self._f.write(data)
        self._off.append(self._off[-1] + len(data))

    def add_raw(self, data: bytes, lengths: np.ndarray) -> None:
        """Copy several records at once (``lengths`` gives each one's byte size)."""
        self._f.write(data)
        ends = np.cumsum(np.asarray(lengths, np.int64)) + self._off[-1]
        self._off.extend(int(x) for x in ends)

    def close(self) -> None:
        self._f.close()
        np.save(self.path.with_suffix(".off.npy"), np.asarray(self._off, np.int64), allow_pickle=False)

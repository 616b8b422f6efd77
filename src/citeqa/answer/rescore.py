"""Re-scoring the best candidates of a pool with a cross-encoder fine-tuned from the packaged MiniLM.

The encoder reads "[CLS] question [SEP] candidate [SEP]" in one pass, so every question token attends to
every candidate token (a bi-encoder compares two vectors made apart). Its score is

    score = exp(log_scale) * cos(mean(question tokens), mean(candidate tokens)) + head(mean(all tokens))

with the head initialised to zero: before training the score is the cosine of the two segments' pooled
states, which is close to the dense similarity the packaged model was trained for, so fine-tuning starts
from a ranking that already works instead of from a random head. Only the top ``layers`` transformer
layers, the head and the scale are trained; the shipped file holds just those (fp16 safetensors) and the
rest comes from the packaged weights. Training: ``citeqa.training.cross_encoder``.

No sentence-transformers at query time: transformers' BertModel and the packaged ``tokenizer.json``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from citeqa.answer.scorer import ModelError

MODELS_DIR = Path(__file__).resolve().parent / "models"
WEIGHTS = MODELS_DIR / "rescorer.safetensors"
MAX_LEN = 128  # question + candidate tokens; longer candidates are cut at the end


def _torch() -> Any:
    import torch

    return torch


def pair_tokenizer(max_len: int = MAX_LEN) -> Any:
    """The packaged model's own tokenizer, set up for (question, candidate) pairs."""
    from tokenizers import Tokenizer

    from citeqa.encoder import model_dir

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_truncation(max_len, strategy="longest_first")
    tok.no_padding()
    return tok


def encode_pairs(tok: Any, question: str | Sequence[str], texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
    """(ids, type ids) per pair; ``question`` may be one string for all texts."""
    qs = [question] * len(texts) if isinstance(question, str) else list(question)
    encs = tok.encode_batch(list(zip(qs, texts, strict=True)))
    return [(list(e.ids), list(e.type_ids)) for e in encs]


def encode_single(tok: Any, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
    return [(list(e.ids), [0] * len(e.ids)) for e in tok.encode_batch(list(texts))]


def build_net(layers: int, base: Any = None, joint: bool = True) -> Any:
    """The packaged BertModel with the top ``layers`` layers trainable, plus the scale and a zero head."""
    torch = _torch()
    nn = torch.nn
    if base is None:
        from transformers import AutoModel

        from citeqa.encoder import model_dir

        base = AutoModel.from_pretrained(str(model_dir()), attn_implementation="eager")
    n = base.config.num_hidden_layers

    class Net(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.bert = base
            self.head = nn.Linear(base.config.hidden_size, 1)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
            self.log_scale = nn.Parameter(torch.tensor(math.log(20.0)))
            self.layers = layers
            self.joint = joint
            for name, p in self.named_parameters():
                p.requires_grad_(self.trainable(name))

        def trainable(self, name: str) -> bool:
            if not name.startswith("bert."):
                return True
            parts = name.split(".")
            return parts[1] == "encoder" and int(parts[3]) >= n - layers

        def lower(self, ids: Any, types: Any, mask: Any) -> Any:
            """States after the frozen layers (the same for every fine-tuned model: cached in training)."""
            h = self.bert.embeddings(input_ids=ids, token_type_ids=types)
            return self._layers(h, mask, 0, n - layers)

        def _layers(self, h: Any, mask: Any, a: int, b: int) -> Any:
            am = (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
            for layer in self.bert.encoder.layer[a:b]:
                h = layer(h, am)
                h = h[0] if isinstance(h, tuple) else h
            return h

        def top(self, h: Any, types: Any, mask: Any) -> Any:
            h = self._layers(h, mask, n - layers, n)
            m = mask.unsqueeze(-1).to(h.dtype)
            qm = m * (types == 0).unsqueeze(-1).to(h.dtype)
            sm = m * (types == 1).unsqueeze(-1).to(h.dtype)
            q = (h * qm).sum(1) / qm.sum(1).clamp(min=1.0)
            s = (h * sm).sum(1) / sm.sum(1).clamp(min=1.0)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            cos = torch.nn.functional.cosine_similarity(q, s, dim=-1)
            return self.log_scale.exp() * cos + self.head(pooled).squeeze(-1)

        def forward(self, ids: Any, types: Any, mask: Any) -> Any:
            return self.top(self.lower(ids, types, mask), types, mask)

        # Bi-encoder variant: question and candidate encoded apart, as the packaged model was trained.
        def vectors(self, h: Any, mask: Any) -> Any:
            """L2-normalised mean of the top layer's states (the packaged model's own pooling)."""
            h = self._layers(h, mask, n - layers, n)
            m = mask.unsqueeze(-1).to(h.dtype)
            return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1.0), dim=-1)

        def bi_score(self, q: Any, s: Any) -> Any:
            return self.log_scale.exp() * (q * s).sum(-1) + self.head(q * s).squeeze(-1)

        def trained_state(self) -> dict[str, Any]:
            return {k: v for k, v in self.state_dict().items() if self.trainable(k)}

    return Net()


def pad_batch(rows: Sequence[Any], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows of different lengths (token ids, or per-token state arrays) right-padded with zeros into one
    array, and the (rows × longest) int64 mask of real positions."""
    lengths = np.array([len(r) for r in rows])
    first = np.asarray(rows[0])
    out = np.zeros((len(rows), int(lengths.max()), *first.shape[1:]), dtype)
    for r, row in enumerate(rows):
        out[r, : len(row)] = row
    return out, (np.arange(out.shape[1]) < lengths[:, None]).astype(np.int64)


def batch_tensors(pairs: Sequence[tuple[list[int], list[int]]]) -> tuple[Any, Any, Any]:
    torch = _torch()
    ids, mask = pad_batch([i for i, _ in pairs], np.int64)
    types, _ = pad_batch([ty for _, ty in pairs], np.int64)
    return torch.from_numpy(ids), torch.from_numpy(types), torch.from_numpy(mask)


def score_pairs(net: Any, pairs: Sequence[tuple[list[int], list[int]]], batch: int = 32) -> np.ndarray:
    """Scores in the order of ``pairs`` (length-sorted batches, so little padding)."""
    torch = _torch()
    out = np.zeros(len(pairs), np.float32)
    order = np.argsort([len(p[0]) for p in pairs], kind="stable")
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            out[idx] = net(*batch_tensors([pairs[i] for i in idx])).float().numpy()
    return out


def save(net: Any, path: Path, meta: dict[str, Any]) -> int:
    """The trained tensors only, fp16 safetensors (no pickle); returns the file size in bytes."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(_torch().float16).contiguous() for k, v in net.trained_state().items()}
    save_file(tensors, str(path), metadata={"base": "all-MiniLM-L6-v2", "layers": str(net.layers),
                                            "joint": str(int(net.joint)),
                                            "max_len": str(MAX_LEN), "meta": json.dumps(meta)})
    return path.stat().st_size


class Rescorer:
    """Loads the shipped weights once; ``score(question, texts)`` gives one logit-like score per text."""

    def __init__(self, path: Path = WEIGHTS, threads: int = 1) -> None:
        if not path.exists():
            raise ModelError(f"Re-scorer weights {path} are missing; train them with "
                             "`python -m citeqa.training.cross_encoder --ship` or turn the re-scorer off "
                             "(CITEQA_RESCORE=false).")
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            layers, joint = int(meta.get("layers", "2")), meta.get("joint", "1") == "1"
            state = {k: f.get_tensor(k).float() for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
        self.net = build_net(layers, joint=joint).eval()
        missing = set(self.net.trained_state()) - set(state)
        if missing:
            raise ModelError(f"Re-scorer weights {path} lack {sorted(missing)[:3]}; retrain them with "
                             "`python -m citeqa.training.cross_encoder --ship`.")
        self.net.load_state_dict(state, strict=False)
        self.tok = pair_tokenizer()
        self.threads = threads
        self._lock = threading.Lock()

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, np.float32)
        from citeqa.encoder import torch_threads

        with self._lock, torch_threads(self.threads):
            if self.net.joint:
                return score_pairs(self.net, encode_pairs(self.tok, question, texts), batch=len(texts))
            torch = _torch()
            seqs = encode_single(self.tok, [question, *texts])
            with torch.inference_mode():
                ids, types, mask = batch_tensors(seqs)
                v = self.net.vectors(self.net.lower(ids, types, mask), mask)
                return np.asarray(self.net.bi_score(v[:1], v[1:]).float().numpy())


STACK = MODELS_DIR / "rescore_stack.json"
CE_FEATURE = "ce_gap"  # the CE score minus the best CE score among the question's re-scored candidates
LOGIT_FEATURE = "evidence_logit"  # log-odds of the evidence model's probability


def rerank(scored: Sequence[Any], ce: np.ndarray, stack: Any, feature_names: Sequence[str]) -> list[Any]:
    """The first ``len(ce)`` items of ``scored`` (best first) re-ordered by the stacked model, whose
    features are ``ce_gap``, ``evidence_logit`` and/or evidence features; the rest keep their place.

    The re-ordered items keep the sorted probabilities of the evidence model: the best item still carries
    the best probability, so refusal and selection, calibrated on those probabilities, read the same
    values; only which candidate holds them changes.
    """
    from dataclasses import replace

    k = len(ce)
    if k < 2:
        return list(scored)
    head = list(scored[:k])
    pos = {n: i for i, n in enumerate(feature_names)}
    p = np.clip(np.array([s.score for s in head], dtype=float), 1e-6, 1 - 1e-6)
    cols = []
    for name in stack.features:
        if name == CE_FEATURE:
            cols.append(ce - ce.max())
        elif name == LOGIT_FEATURE:
            cols.append(np.log(p / (1 - p)))
        else:
            cols.append(np.array([s.features[pos[name]] for s in head], dtype=float))
    order = np.argsort(-stack.decision(np.column_stack(cols)), kind="stable")
    probs = sorted((s.score for s in head), reverse=True)
    return [replace(head[j], score=q) for j, q in zip(order, probs, strict=True)] + list(scored[k:])


_LOADED: dict[str, tuple[Rescorer, Any]] = {}
_LOAD_LOCK = threading.Lock()


def load(models_dir: str | Path | None = None) -> tuple[Rescorer, Any]:
    """The re-scorer and its stacked model from ``models_dir`` (default: the shipped ones), loaded once."""
    from citeqa.answer.scorer import load_model

    folder = Path(models_dir) if models_dir else MODELS_DIR
    key = str(folder)
    with _LOAD_LOCK:
        if key not in _LOADED:
            # A models folder brings its own re-scorer (a leave-one-corpus-out fold must not borrow the
            # shipped one, which saw the held-out corpus).
            weights, stack = folder / WEIGHTS.name, folder / STACK.name
            _LOADED[key] = (Rescorer(weights), load_model(str(stack)))
        return _LOADED[key]

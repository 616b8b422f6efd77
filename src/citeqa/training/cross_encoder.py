"""Train the cross-encoder re-scorer (``citeqa.answer.rescore``) and judge it leave-one-corpus-out.

    python -m citeqa.training.cross_encoder                 # LOCO: logistic, CE alone, stacked -> report
    python -m citeqa.training.cross_encoder --ship          # also fit on all corpora, write the shipped weights

What is judged is the product's use: the out-of-corpus logistic evidence model picks each question's top
``POOL_K`` candidates and the CE re-orders them (the rest keep the logistic order below them). Figures
are top-1 / top-3 / top-5 gold evidence over answerable questions, as ``citeqa.training.train`` counts.

Training per fold: the CE's training corpora only. Each answerable question with a gold candidate is one
softmax group: its gold candidates, the ``N_HARD`` best negatives of a logistic model fitted on the same
training corpora, and ``N_RAND`` other negatives of its pool; the loss is -log P(a gold candidate wins)
(listwise), each corpus weighing the same. The top ``LAYERS`` layers, a zero-initialised head and the
cosine scale are trained, so step 0 is the segment-cosine ranking (see ``rescore``).

Stacked: the logistic model refitted on its features + the CE score (relative to the question's best),
over the top-``POOL_K`` rows of the training corpora. The CE score of a training corpus A there comes
from a CE trained on the other training corpus only (nested: never on A, never on the held-out corpus),
which is why ``--stack`` costs six more, smaller fits.

Why the first attempt (top layer only, random head on the mean pool, pointwise BCE, one epoch) scored a mean
LOCO top-1 of 0.119 alone: that is what a random order of the logistic top-10 gives (0.111: seeds 0.108,
covidqa 0.093, pubmedqa 0.130), while the same encoder untrained, read as the segment cosine, already gives
0.310. Its lower-layer states were cached on disk keyed only by row number and layer count, so after the
dataset was rebuilt (new pools) they could belong to other candidates than the labels; and its random head
had to learn a ranking from scratch. Here states are cached in memory for one run only, keyed by
(corpus, row) of the dataset loaded, and the head starts at zero on top of the cosine.

Measured (load 6-7, 1 thread; figures in README "Training the answer models"): mean LOCO top-1 logistic
0.493; CE alone 0.382, bi-encoder alone 0.390; stacked 0.477 / 0.487 (top-5 0.831 / 0.826 vs 0.817);
two-feature blend 0.416 (bi). Not used by default: it lowers the mean top-1, and re-scoring 5 candidates
costs ~200 ms p50 / ~350 ms p95 on a busy 2-core machine (``benchmarks/rescore_latency.py``).

Deterministic: fixed seeds, fixed group order, ``torch.use_deterministic_algorithms``; figures can still
move in the last digits with the thread count (CPU reduction order).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from citeqa.answer import rescore
from citeqa.answer.scorer import Model, logistic_from_sklearn
from citeqa.training import dataset
from citeqa.training import train as T

SEED = 13
LAYERS = 2  # top transformer layers fine-tuned (of 6)
POOL_K = 10  # candidates per question the CE re-scores
N_HARD = 5
N_RAND = 2
MAX_POS = 2
EPOCHS = 2
GROUPS_PER_STEP = 2
LR_LAYERS = 3e-5
LR_HEAD = 1e-3
CORPORA = ("seeds", "covidqa", "pubmedqa")
JOINT = True  # cross-encoder (question and candidate in one pass); False: bi-encoder (``--bi``)


def _torch() -> Any:
    import torch

    return torch


def _seed(seed: int = SEED) -> None:
    torch = _torch()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def q_rows(d: dict[str, Any]) -> list[np.ndarray]:
    return [np.flatnonzero(d["qidx"] == i) for i in range(len(d["questions"]))]


def texts_of(d: dict[str, Any], qr: list[np.ndarray], i: int, rows: np.ndarray) -> list[str]:
    first = qr[i][0]
    return [d["questions"][i]["cands"][int(r - first)]["text"] for r in rows]


def logistic(data: dict[str, dict[str, Any]], names: list[str]) -> dict[str, list[np.ndarray]]:
    """Probabilities of every corpus under the logistic evidence model fitted on ``names``."""
    m = T.fit_evidence([data[n] for n in names], "logistic")
    return {n: T.question_probs(m, data[n]) for n in data}


def answerable_qs(d: dict[str, Any]) -> list[int]:
    return [i for i, q in enumerate(d["questions"]) if q["answerable"] and not q.get("synthetic")]


def groups_for(d: dict[str, Any], probs: list[np.ndarray], qr: list[np.ndarray], rng: np.random.Generator
               ) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(question, rows, labels) softmax groups: gold + hard + random negatives."""
    out = []
    for i in answerable_qs(d):
        r = qr[i]
        y = d["y"][r]
        if not len(r) or y.sum() == 0:
            continue
        order = np.argsort(-probs[i], kind="stable")
        pos = [j for j in order if y[j] == 1][:MAX_POS]
        neg = [j for j in order if y[j] == 0]
        hard, rest = neg[:N_HARD], neg[N_HARD:]
        extra = list(rng.choice(rest, size=min(N_RAND, len(rest)), replace=False)) if rest else []
        sel = np.array(pos + hard + [int(x) for x in extra])
        out.append((i, r[sel], y[sel].astype(np.float32)))
    return out


class States:
    """Output of the frozen lower layers per (corpus, candidate row), fp16, computed once per run: the
    lower layers are the packaged weights in every fold, so every fit and every scoring reuses them."""

    def __init__(self, data: dict[str, dict[str, Any]]) -> None:
        self.data = data
        self.qrs = {n: q_rows(d) for n, d in data.items()}
        self.tok = rescore.pair_tokenizer()
        self.net = rescore.build_net(LAYERS, joint=JOINT).eval()
        self.cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def ensure(self, name: str, rows_by_q: dict[int, np.ndarray]) -> None:
        torch = _torch()
        d, qr = self.data[name], self.qrs[name]
        pairs, keys = [], []
        for i, rows in rows_by_q.items():
            todo = np.array([r for r in rows if (name, int(r)) not in self.cache], dtype=np.int64)
            question = d["questions"][i]["question"]
            if not JOINT and (qkey(name), i) not in self.cache:
                pairs += rescore.encode_single(self.tok, [question])
                keys.append((qkey(name), i))
            if len(todo):
                texts = texts_of(d, qr, i, todo)
                pairs += (rescore.encode_pairs(self.tok, question, texts) if JOINT
                          else rescore.encode_single(self.tok, texts))
                keys += [(name, int(r)) for r in todo]
        order = np.argsort([len(p[0]) for p in pairs], kind="stable")
        t0 = time.time()
        with torch.inference_mode():
            for s in range(0, len(order), 32):
                idx = order[s:s + 32]
                ids, types, mask = rescore.batch_tensors([pairs[k] for k in idx])
                h = self.net.lower(ids, types, mask).numpy().astype(np.float16)
                for r, k in enumerate(idx):
                    t = len(pairs[k][0])
                    self.cache[keys[k]] = (h[r, :t], np.asarray(pairs[k][1], np.int64))
        if pairs:
            print(f"[ce] lower states of {len(pairs)} {name} pairs in {time.time() - t0:.0f}s", flush=True)

    def batch(self, keys: list[tuple[str, int]]) -> tuple[Any, Any, Any]:
        torch = _torch()
        items = [self.cache[k] for k in keys]
        h, mask = rescore.pad_batch([hh for hh, _ in items], np.float32)
        types, _ = rescore.pad_batch([ty for _, ty in items], np.int64)
        return torch.from_numpy(h), torch.from_numpy(types), torch.from_numpy(mask)


def qkey(name: str) -> str:
    """Cache key of a corpus's questions alone (bi-encoder)."""
    return name + "?question"


def group_scores(net: Any, states: States, groups: list[tuple[tuple[str, int], list[tuple[str, int]]]]) -> list[Any]:
    """Scores of each (question key, candidate keys) group, from the cached lower states."""
    if JOINT:
        flat = [k for _, ks in groups for k in ks]
        scores = net.top(*states.batch(flat))
        out, off = [], 0
        for _, ks in groups:
            out.append(scores[off:off + len(ks)])
            off += len(ks)
        return out
    flat = [k for q, ks in groups for k in (q, *ks)]
    h, _, mask = states.batch(flat)
    v = net.vectors(h, mask)
    out, off = [], 0
    for _, ks in groups:
        out.append(net.bi_score(v[off:off + 1], v[off + 1:off + 1 + len(ks)]))
        off += 1 + len(ks)
    return out


def fit(data: dict[str, dict[str, Any]], names: list[str], states: States, epochs: int = EPOCHS,
        log: str = "") -> Any:
    """Fine-tune a fresh net on the answerable questions of ``names``."""
    torch = _torch()
    _seed()
    rng = np.random.default_rng(SEED)
    probs = logistic(data, names)
    items: list[tuple[tuple[str, int], list[tuple[str, int]], np.ndarray, float]] = []
    for n in names:
        gs = groups_for(data[n], probs[n], states.qrs[n], rng)
        states.ensure(n, {i: rows for i, rows, _ in gs})
        items += [((qkey(n), i), [(n, int(r)) for r in rows], y, 1.0 / len(gs)) for i, rows, y in gs]
    w_mean = float(np.mean([it[3] for it in items]))
    net = rescore.build_net(LAYERS, joint=JOINT)
    net.train()
    head = [p for k, p in net.named_parameters() if not k.startswith("bert.")]
    body = [p for k, p in net.named_parameters() if k.startswith("bert.") and p.requires_grad]
    opt = torch.optim.AdamW([{"params": body, "lr": LR_LAYERS}, {"params": head, "lr": LR_HEAD}], weight_decay=0.01)
    steps = epochs * math.ceil(len(items) / GROUPS_PER_STEP)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / steps))
    t0 = time.time()
    for ep in range(epochs):
        perm = rng.permutation(len(items))
        total = 0.0
        for s in range(0, len(perm), GROUPS_PER_STEP):
            chunk = [items[k] for k in perm[s:s + GROUPS_PER_STEP]]
            scores = group_scores(net, states, [(it[0], it[1]) for it in chunk])
            loss = scores[0].new_zeros(())
            for sc, (_, _, y, w) in zip(scores, chunk, strict=True):
                yt = torch.from_numpy(y)
                lp = torch.logsumexp(sc.masked_fill(yt == 0, -1e4), 0) - torch.logsumexp(sc, 0)
                loss = loss - lp * (w / w_mean)
            loss = loss / len(chunk)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(chunk)
            if (s // GROUPS_PER_STEP) % 50 == 49:
                print(f"[ce] {log} epoch {ep + 1} step {s // GROUPS_PER_STEP + 1}: {time.time() - t0:.0f}s", flush=True)
        print(f"[ce] {log} epoch {ep + 1}/{epochs}: loss {total / len(items):.4f} "
              f"({len(items)} groups, {time.time() - t0:.0f}s)", flush=True)
    net.eval()
    return net


def top_rows(d: dict[str, Any], probs: list[np.ndarray], qr: list[np.ndarray], k: int = POOL_K,
             only_answerable: bool = True) -> dict[int, np.ndarray]:
    qs = answerable_qs(d) if only_answerable else range(len(d["questions"]))
    return {i: qr[i][np.argsort(-probs[i], kind="stable")[:k]] for i in qs if len(qr[i])}


def score_rows(net: Any, states: States, name: str, rows: dict[int, np.ndarray]) -> dict[int, float]:
    torch = _torch()
    states.ensure(name, rows)
    groups = [((qkey(name), i), [(name, int(r)) for r in rr]) for i, rr in rows.items()]
    out: dict[int, float] = {}
    with torch.inference_mode():
        for s in range(0, len(groups), 6):
            chunk = groups[s:s + 6]
            for (_, ks), sc in zip(chunk, group_scores(net, states, chunk), strict=True):
                out.update({k[1]: float(v) for k, v in zip(ks, sc.float().numpy(), strict=True)})
    return out


def keys_for(d: dict[str, Any], base: list[np.ndarray], qr: list[np.ndarray], rows: dict[int, np.ndarray],
             score: dict[int, float]) -> list[np.ndarray]:
    """Ranking keys: the re-scored rows by ``score`` above the others (kept in ``base`` order)."""
    out = []
    for i, r in enumerate(qr):
        key = np.asarray(base[i], dtype=float) - 1e6
        if i in rows:
            for row in rows[i]:
                key[int(row - r[0])] = score[int(row)]
        out.append(key)
    return out


def hits(d: dict[str, Any], keys: list[np.ndarray]) -> list[float]:
    res = []
    for k in (1, 3, 5):
        h, _, n = T._top_hits(d, keys, k)
        res.append(round(h / max(n, 1), 3))
    return res


def stack_x(d: dict[str, Any], rows: dict[int, np.ndarray], score: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """Evidence features + the CE score relative to the question's best re-scored candidate."""
    xs, ids = [], []
    for r in rows.values():
        s = np.array([score[int(x)] for x in r])
        xs.append(np.column_stack([d["X"][r][:, T._EV_COLS], s - s.max()]))
        ids.append(r)
    return np.vstack(xs), np.concatenate(ids)


def fit_stack(parts: list[tuple[dict[str, Any], dict[int, np.ndarray], dict[int, float]]]) -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    xs, ys, ws = [], [], []
    for d, rows, score in parts:
        x, ids = stack_x(d, rows, score)
        q = d["qidx"][ids]
        w = 1.0 / np.bincount(q)[q]
        xs.append(x)
        ys.append(d["y"][ids])
        ws.append(w / w.sum())
    x, y, w = np.vstack(xs), np.concatenate(ys), np.concatenate(ws)
    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(C=0.05, max_iter=3000, random_state=T.SEED)
    lr.fit(scaler.transform(x), y, sample_weight=w / w.mean())
    return scaler, lr


def _eval(d: dict[str, Any], base: list[np.ndarray], qr: list[np.ndarray], rows: dict[int, np.ndarray],
          score: dict[int, float]) -> dict[str, list[float]]:
    """Top-1/3/5 when the CE re-orders the logistic top-10 and top-5."""
    five = {i: r[:5] for i, r in rows.items()}
    return {"top10": hits(d, keys_for(d, base, qr, rows, score)), "top5": hits(d, keys_for(d, base, qr, five, score))}


def run(stack: bool, ship: bool, out: Path, threads: int, epochs: int, loco_dir: Path | None = None,
        models_out: Path = rescore.MODELS_DIR) -> dict[str, Any]:
    torch = _torch()
    torch.set_num_threads(threads)
    names = [n for n in CORPORA if (dataset.CACHE / f"{n}.npz").exists()]
    data = {n: dataset.load(n) for n in names}
    states = States(data)
    qrs = states.qrs
    report: dict[str, Any] = {"config": {"layers": LAYERS, "pool_k": POOL_K, "n_hard": N_HARD, "n_rand": N_RAND,
                                         "epochs": epochs, "groups_per_step": GROUPS_PER_STEP, "lr_layers": LR_LAYERS,
                                         "lr_head": LR_HEAD, "max_len": rescore.MAX_LEN, "threads": threads,
                                         "joint": JOINT},
                              "corpora": {}}
    scored: dict[str, tuple[list[np.ndarray], dict[int, np.ndarray], dict[int, float]]] = {}
    for held in names:  # step 0 (the packaged weights' segment cosine) first: it is cheap
        base = logistic(data, [m for m in names if m != held])[held]
        rows = top_rows(data[held], base, qrs[held])
        report["corpora"][held] = {"logistic": hits(data[held], base), "pool_recall": _pool_recall(data[held], base),
                                   "untrained_ce": _eval(data[held], base, qrs[held], rows,
                                                         score_rows(states.net, states, held, rows))}
        print(f"[ce] {held}: {json.dumps(report['corpora'][held])}", flush=True)
    for held in names:
        others = [m for m in names if m != held]
        d, qr = data[held], qrs[held]
        t0 = time.time()
        net = fit(data, others, states, epochs, log=f"fold {held}")
        train_s = time.time() - t0
        base = logistic(data, others)[held]
        rows = top_rows(d, base, qr)
        score = score_rows(net, states, held, rows)
        if loco_dir is not None:
            rescore.save(net, loco_dir / held / rescore.WEIGHTS.name, {"trained_on": others, **report["config"]})
        scored[held] = (base, rows, score)
        row = report["corpora"][held]
        row.update({"train_seconds": round(train_s, 1), "ce_alone": _eval(d, base, qr, rows, score)})
        print(f"[ce] {held}: {json.dumps(row)}", flush=True)
        out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    if stack:
        # Nested CEs: trained on one corpus, scoring another's top rows (picked by the logistic model
        # fitted on that same single corpus), the stacked model's training rows for the third's fold.
        nested: dict[tuple[str, str], tuple[dict[int, np.ndarray], dict[int, float]]] = {}
        for b in names:
            net = nested_net(data, b, states, epochs, loco_dir)
            probs = logistic(data, [b])
            for a in names:
                if a != b:
                    rows = top_rows(data[a], probs[a], qrs[a])
                    nested[(a, b)] = (rows, score_rows(net, states, a, rows))
        for held in names:
            a, b = [m for m in names if m != held]
            d, qr = data[held], qrs[held]
            base, rows, score = scored[held]
            scaler, lr = fit_stack([(data[a], *nested[(a, b)]), (data[b], *nested[(b, a)])])
            x, ids = stack_x(d, rows, score)
            p = dict(zip((int(i) for i in ids), lr.decision_function(scaler.transform(x)), strict=True))
            row = report["corpora"][held]
            row["stacked"] = _eval(d, base, qr, rows, p)
            row["stack_ce_coef"] = round(float(lr.coef_[0, -1]), 3)
            if loco_dir is not None:
                _stack_model(scaler, lr).save(loco_dir / held / rescore.STACK.name)
            print(f"[ce] {held} stacked: {json.dumps(row['stacked'])} coef {row['stack_ce_coef']}", flush=True)
    first = report["corpora"][names[0]]
    report["mean"] = {"logistic": _mean(report, names, lambda r: r["logistic"])}
    for k in ("ce_alone", "untrained_ce", "stacked"):
        for pool in ("top10", "top5"):
            if k in first:
                report["mean"][f"{k}/{pool}"] = _mean(report, names, lambda r, k=k, pool=pool: r[k][pool])
    print(f"[ce] mean (top-1, top-3, top-5): {json.dumps(report['mean'])}", flush=True)
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    if ship:
        t0 = time.time()
        net = fit(data, names, states, epochs, log="ship")
        report["ship_train_seconds"] = round(time.time() - t0, 1)
        report["weights_bytes"] = rescore.save(net, models_out / rescore.WEIGHTS.name,
                                               {"trained_on": names, **report["config"]})
        # The shipped stacked model reads each corpus's out-of-corpus CE scores (its LOCO fold's CE).
        scaler, lr = fit_stack([(data[n], scored[n][1], scored[n][2]) for n in names])
        _stack_model(scaler, lr).save(models_out / rescore.STACK.name)
        report["data"] = {n: len(answerable_qs(data[n])) for n in names}
        (models_out / "RESCORER.md").write_text(card(report), encoding="utf-8")
        out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def card(report: dict[str, Any]) -> str:
    """The model card shipped beside ``rescorer.safetensors`` (written by ``--ship``)."""
    c = report["config"]
    rows = ["| held-out corpus | logistic | CE alone, top-10 | CE alone, top-5 | stacked, top-10 | stacked, top-5 |",
            "| --- | --- | --- | --- | --- | --- |"]

    def f(v: list[float]) -> str:
        return " / ".join(f"{x:.3f}" for x in v)

    for n, r in report["corpora"].items():
        st = r.get("stacked", {"top10": [float("nan")] * 3, "top5": [float("nan")] * 3})
        rows.append(f"| {n} | {f(r['logistic'])} | {f(r['ce_alone']['top10'])} | {f(r['ce_alone']['top5'])} | "
                    f"{f(st['top10'])} | {f(st['top5'])} |")
    m = report["mean"]
    rows.append(f"| **mean** | {f(m['logistic'])} | {f(m['ce_alone/top10'])} | {f(m['ce_alone/top5'])} | "
                f"{f(m.get('stacked/top10', [float('nan')] * 3))} | {f(m.get('stacked/top5', [float('nan')] * 3))} |")
    return "\n".join([
        "# citeqa evidence re-scorer (cross-encoder)", "",
        "Written by `python -m citeqa.training.cross_encoder --stack --ship` (deterministic; minutes on two",
        "cores once `python -m citeqa.training.dataset` has cached the candidates). Do not edit by hand.", "",
        "| file | what |", "| --- | --- |",
        f"| `rescorer.safetensors` | the top {c['layers']} layers of the packaged all-MiniLM-L6-v2, fine-tuned as a "
        "cross-encoder over (question, candidate) pairs, plus a head and a cosine scale (fp16; the rest of the "
        "encoder is the packaged weights) |",
        "| `rescore_stack.json` | logistic regression over the evidence features + `ce_gap` (the CE score minus "
        "the question's best), which re-orders the logistic model's best candidates |", "",
        "## Data", "",
        "Every answerable question of the three corpora with a gold candidate in its pool ("
        + ", ".join(f"{n}: {k}" for n, k in report.get("data", {}).items()) + " answerable questions): one softmax "
        f"group per question of its gold candidates (at most {MAX_POS}), the {c['n_hard']} negatives the logistic "
        f"model ranks highest and {c['n_rand']} other negatives of its pool; loss -log P(a gold candidate wins), "
        f"each corpus weighing the same; {c['epochs']} epochs, AdamW (layers {c['lr_layers']}, head "
        f"{c['lr_head']}), {c['groups_per_step']} questions per step, at most {c['max_len']} tokens per pair. "
        "Step 0 ranks by the cosine of the question's and the candidate's pooled token states.", "",
        "## Leave-one-corpus-out figures", "",
        "Top-1 / top-3 / top-5 gold evidence over answerable questions; the CE (and the stacked model) re-order "
        "the logistic model's best 10 or 5 candidates, everything fitted without the held-out corpus (the "
        "stacked model's CE scores of a training corpus come from a CE trained on the other training corpus "
        "only).", "", *rows, "",
        f"Fit on all corpora: {report.get('ship_train_seconds', 0):.0f} s at {c['threads']} thread(s). "
        "Inference: about 25 ms per candidate on one core of the benchmark machine (torch).", ""])


def nested_net(data: dict[str, dict[str, Any]], b: str, states: States, epochs: int, loco_dir: Path | None) -> Any:
    """The CE trained on corpus ``b`` alone (saved under ``loco_dir`` and reused when there)."""
    path = loco_dir / f"nested_{b}.safetensors" if loco_dir is not None else None
    if path is not None and path.exists():
        return rescore.Rescorer(path).net
    net = fit(data, [b], states, epochs, log=f"nested on {b}")
    if path is not None:
        rescore.save(net, path, {"trained_on": [b]})
    return net


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)))


def blend_x(d: dict[str, Any], probs: list[np.ndarray], qr: list[np.ndarray], rows: dict[int, np.ndarray],
            score: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """[logit of the evidence model, CE score - the question's best CE score] for the re-scored rows."""
    xs, ids = [], []
    for i, r in rows.items():
        s = np.array([score[int(x)] for x in r])
        xs.append(np.column_stack([_logit(probs[i][r - qr[i][0]]), s - s.max()]))
        ids.append(r)
    return np.vstack(xs), np.concatenate(ids)


def blend(loco_dir: Path, epochs: int, threads: int, out: Path) -> dict[str, Any]:
    """Two-feature stacking: the evidence model's logit + the CE gap, weights fitted on the training corpora
    with nested CE scores (CE trained on the other training corpus), the fold CEs read from ``loco_dir``."""
    from sklearn.linear_model import LogisticRegression

    torch = _torch()
    torch.set_num_threads(threads)
    names = [n for n in CORPORA if (dataset.CACHE / f"{n}.npz").exists()]
    data = {n: dataset.load(n) for n in names}
    states = States(data)
    qrs = states.qrs
    single = {b: logistic(data, [b]) for b in names}
    nested: dict[tuple[str, str], tuple[dict[int, np.ndarray], dict[int, float]]] = {}
    for b in names:
        net = nested_net(data, b, states, epochs, loco_dir)
        for a in names:
            if a != b:
                rows = top_rows(data[a], single[b][a], qrs[a])
                nested[(a, b)] = (rows, score_rows(net, states, a, rows))
    report: dict[str, Any] = {"corpora": {}}
    for held in names:
        a, b = [m for m in names if m != held]
        xs, ys, ws = [], [], []
        for m, o in ((a, b), (b, a)):
            x, ids = blend_x(data[m], single[o][m], qrs[m], *nested[(m, o)])
            q = data[m]["qidx"][ids]
            w = 1.0 / np.bincount(q)[q]
            xs.append(x)
            ys.append(data[m]["y"][ids])
            ws.append(w / w.sum())
        w = np.concatenate(ws)
        lr = LogisticRegression(C=1.0, max_iter=1000, random_state=T.SEED)
        lr.fit(np.vstack(xs), np.concatenate(ys), sample_weight=w / w.mean())
        Model("rescore_stack", (rescore.LOGIT_FEATURE, rescore.CE_FEATURE), "logistic", np.zeros(2), np.ones(2),
              np.asarray(lr.coef_[0], dtype=float), float(lr.intercept_[0]),
              extra={"fit": "blend: evidence logit + CE gap", "trained_on": [a, b]}).save(
            loco_dir / held / f"blend_{rescore.STACK.name}")
        d, qr = data[held], qrs[held]
        base = logistic(data, [a, b])[held]
        rows = top_rows(d, base, qr)
        score = score_rows(rescore.Rescorer(loco_dir / held / rescore.WEIGHTS.name).net, states, held, rows)
        x, ids = blend_x(d, base, qr, rows, score)
        p = dict(zip((int(i) for i in ids), lr.decision_function(x), strict=True))
        row = {"logistic": hits(d, base), "ce_alone": _eval(d, base, qr, rows, score),
               "blend": _eval(d, base, qr, rows, p), "coef": [round(float(c), 3) for c in lr.coef_[0]]}
        report["corpora"][held] = row
        print(f"[ce] blend {held}: {json.dumps(row)}", flush=True)
    report["mean"] = {"logistic": _mean(report, names, lambda r: r["logistic"])}
    for k in ("ce_alone", "blend"):
        for pool in ("top10", "top5"):
            report["mean"][f"{k}/{pool}"] = _mean(report, names, lambda r, k=k, pool=pool: r[k][pool])
    print(f"[ce] blend mean (top-1, top-3, top-5): {json.dumps(report['mean'])}", flush=True)
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def _stack_model(scaler: Any, lr: Any) -> Any:
    return logistic_from_sklearn("rescore_stack", (*T.EVIDENCE_FEATURES, rescore.CE_FEATURE), scaler, lr,
                                 extra={"ce_weights": rescore.WEIGHTS.name, "pool_k": POOL_K})


def _pool_recall(d: dict[str, Any], base: list[np.ndarray]) -> float:
    return round(T._top_hits(d, base, POOL_K)[0] / max(1, T._top_hits(d, base, 1)[2]), 3)


def _mean(report: dict[str, Any], names: list[str], get: Any) -> list[float]:
    return [round(float(np.mean([get(report["corpora"][n])[j] for n in names])), 3) for j in range(3)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stack", action="store_true", help="also the stacked logistic model (6 nested CE fits)")
    ap.add_argument("--ship", action="store_true", help="also fit on all corpora and write the shipped weights")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--models-out", type=Path, default=rescore.MODELS_DIR, help="where --ship writes")
    ap.add_argument("--blend", action="store_true", help="only the two-feature blend, from --loco-dir's fold CEs")
    ap.add_argument("--bi", action="store_true", help="bi-encoder re-scorer instead of the cross-encoder")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=dataset.CACHE / "ce_report.json")
    ap.add_argument("--loco-dir", type=Path, default=None,
                    help="also write each held-out corpus's CE + stacked model (beside train --loco-dir's models)")
    args = ap.parse_args(argv)
    global JOINT
    JOINT = not args.bi
    if args.blend:
        blend(args.loco_dir, args.epochs, args.threads, args.out)
        return 0
    run(args.stack, args.ship, args.out, args.threads, args.epochs, args.loco_dir, args.models_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

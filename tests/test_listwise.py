"""The listwise evidence fitter (an option of ``citeqa.training.train``): within each question the gold
candidate must come out on top, and the written model must be an ordinary logistic model file whose
probabilities are calibrated to the rows' base rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from citeqa.answer.scorer import load_model
from citeqa.training import listwise


def test_listwise_ranks_the_gold_candidate_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    xs, ys, gs = [], [], []
    for q in range(60):
        n = 12
        x = rng.normal(size=(n, 3))
        y = np.zeros(n)
        gold = rng.integers(n)
        y[gold] = 1
        x[gold, 0] += 3.5  # the first feature marks the answer, relative to its pool
        x[:, 1] += rng.normal() * 3  # a per-question shift that says nothing about which candidate answers
        xs.append(x), ys.append(y), gs.append(np.full(n, q))
    x, y, g = np.vstack(xs), np.concatenate(ys), np.concatenate(gs)
    model = listwise.fit("evidence", ("a", "b", "c"), x, y, g, np.full(len(y), 1 / len(y)))
    assert model.kind == "logistic"
    p = model.predict(x)
    top1 = np.mean([y[g == q][np.argmax(p[g == q])] for q in range(60)])
    assert top1 >= 0.8
    assert abs(p.mean() - y.mean()) < 0.03  # Platt scaling: probabilities on the rows' scale
    model.save(tmp_path / "evidence.json")
    assert np.allclose(load_model(str(tmp_path / "evidence.json")).predict(x), p)

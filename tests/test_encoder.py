"""The encoder runtimes on the real packaged weights: their vectors against sentence-transformers', span
pooling, and the index fingerprint naming the runtime."""

from __future__ import annotations

import numpy as np
import pytest

from citeqa.config import Settings
from citeqa.encoder import MAX_TOKENS, MiniLMEncoder, encoder_for, tokenizer
from citeqa.ingest import load_catalog, parse_document
from citeqa.snapshot import has_sentence_vectors, sentence_spans
from conftest import SEED_FILES


@pytest.fixture(scope="module")
def seed_texts() -> list[str]:
    """Every text one seed (the TOWER trial report, with its tables) sends to the encoder."""
    settings = Settings()
    path = next(p for p in SEED_FILES if p.name.startswith("003_"))
    pd = parse_document(path, load_catalog(SEED_FILES, settings.catalog_file), settings)
    return [u.embed_text for u in pd.units] + [s.text for u in pd.units if has_sentence_vectors(u)
                                                for s in u.sentences]


@pytest.fixture(scope="module")
def reference(seed_texts: list[str]) -> np.ndarray:
    from citeqa.embed import reference_embedder

    return reference_embedder().encode(seed_texts)


# onnx-q8 (the default): 8-bit weights and arithmetic, measured 0.9992 min / 0.9996 mean on all seed texts;
# the bar is 0.99, and a text's vector must not depend on the batch it was encoded in.
@pytest.mark.parametrize(("runtime", "floor", "mean"),
                         [("torch", 0.9999, 0.9999), ("onnx", 0.9999, 0.9999), ("onnx-q8", 0.998, 0.9994)])
def test_runtime_vectors_match_sentence_transformers(runtime: str, floor: float, mean: float,
                                                     seed_texts: list[str], reference: np.ndarray) -> None:
    vecs = encoder_for(runtime, Settings().encoder_cache_dir).encode(seed_texts)
    cos = (vecs * reference).sum(axis=1)
    assert len(seed_texts) > 100
    assert cos.min() >= floor, (runtime, float(cos.min()), seed_texts[int(cos.argmin())][:80])
    assert cos.mean() >= mean
    # Texts encoded apart (a question; a batch of other lengths) get the vectors they got in the large batch
    # (onnx-q8: 0.99996 at worst, a float rounding that lands on the other side of an 8-bit step).
    alone = encoder_for(runtime, Settings().encoder_cache_dir).encode(seed_texts[-3:])
    assert float((alone * vecs[-3:]).sum(axis=1).min()) > 0.9999


def test_pooled_spans_come_from_the_same_pass_and_stop_at_the_window() -> None:
    enc = encoder_for("onnx", Settings().encoder_cache_dir)
    first = "Blinatumomab improved overall survival."
    second = "Neutropenia was less common than with chemotherapy."
    text = f"RESULTS: {first} {second}"
    spans = ((9, 9 + len(first)), (10 + len(first), len(text)))
    vecs, pooled = enc.encode_spans([text, first], [spans, ()])
    assert pooled[1] is None  # no spans asked
    got = pooled[0]
    assert got is not None and got.shape == (2, 384)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # In context, each sentence's vector is nearer its own words than the other sentence's.
    alone = enc.encode([first, second])
    assert float(got[0] @ alone[0]) > float(got[0] @ alone[1])
    assert float(got[1] @ alone[1]) > float(got[1] @ alone[0])
    # A text longer than the model's window: a span cut by it cannot be pooled (the caller encodes it alone).
    long_text = " ".join(["The trial enrolled four hundred and five patients."] * 40)
    assert len(tokenizer().encode(long_text).ids) == MAX_TOKENS  # truncated at the window
    _, cut = enc.encode_spans([long_text], [((0, 50), (len(long_text) - 50, len(long_text)))])
    assert cut[0] is None
    _, inside = enc.encode_spans([long_text], [((0, 50), (51, 101))])
    assert inside[0] is not None and inside[0].shape == (2, 384)


def test_sentence_spans_locate_every_sentence_of_the_seed_chunks() -> None:
    settings = Settings()
    found = total = 0
    for path in SEED_FILES:
        for u in parse_document(path, load_catalog(SEED_FILES, settings.catalog_file), settings).units:
            if not has_sentence_vectors(u):
                continue
            total += 1
            spans = sentence_spans(u)
            if spans:
                found += 1
                assert [u.embed_text[a:b] for a, b in spans] == [s.text for s in u.sentences]
    assert total > 50 and found / total > 0.95


def test_fingerprint_names_the_runtime_and_keeps_old_indexes() -> None:
    legacy = Settings(embed_runtime="torch", sentence_vectors="separate")
    assert "embed_runtime" not in legacy.index_shape()  # indexes built before the setting keep their folder
    prints = {Settings(embed_runtime=r, sentence_vectors=s).fingerprint()
              for r in ("torch", "onnx", "onnx-q8") for s in ("separate", "pooled")}
    assert len(prints) == 6


def test_unknown_runtime_is_refused_with_the_choices() -> None:
    from citeqa.errors import CiteqaError

    with pytest.raises(CiteqaError, match="onnx-q8, onnx, torch"):
        MiniLMEncoder("tensorrt")

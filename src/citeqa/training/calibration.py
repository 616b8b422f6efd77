"""Within-corpus check of the shipped refusal model's calibration.

The shipped models answer new questions about documents of the kinds they were trained on (new seeds
questions, new COVID-19 articles, new PubMed abstracts). Each corpus's questions are split in two halves;
the evidence model is fitted on the other half of every corpus (and the judged-only papers), the refusal
model on either out-of-corpus or out-of-fold evidence scores of that half, and false refusals and refused
unanswerable questions are counted on the held-out half.

    python -m citeqa.training.calibration [--budgets 0.02 0.03]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from citeqa.training import dataset, train

TRAINED = ("seeds", "covidqa", "pubmedqa")


def _half(d: dict[str, Any], split: int) -> np.ndarray:
    # Bit 3 of the hash, not the value the out-of-fold folds take modulo 5: a split of its own.
    return np.array([(train.id_hash(q) >> 3) % 2 == split for q in d["questions"]])


def within_corpus(budgets: tuple[float, ...], kind: str = "logistic") -> dict[tuple[str, float, str], list[int]]:
    """(calibration, budget, corpus) -> [false refusals, answerable, refused unanswerable, unanswerable]."""
    data = {n: dataset.load(n) for n in TRAINED}
    extra = [dataset.load(n) for n in ("papers",) if (dataset.CACHE / f"{n}.npz").exists()]
    counts: dict[tuple[str, float, str], list[int]] = {}
    for split in (0, 1):
        held = {n: _half(d, split) for n, d in data.items()}
        fit = {n: train._subset(d, ~held[n]) for n, d in data.items()}
        test = {n: train._subset(d, held[n]) for n, d in data.items()}
        evidence = train.fit_evidence([*fit.values(), *extra], kind)
        scores = {
            "out-of-corpus": {n: train.question_probs(
                train.fit_evidence([fit[m] for m in TRAINED if m != n] + extra, kind), fit[n]) for n in TRAINED},
            "out-of-fold": train.out_of_fold_probs(fit, extra, kind),
        }
        for label, probs in scores.items():
            ax, ay = zip(*(train.answerable_matrix(fit[n], probs[n], False) for n in TRAINED), strict=True)
            for budget in budgets:
                model = train.fit_answerable(np.vstack(ax), np.concatenate(ay), budget)
                for n in TRAINED:
                    tx, ty = train.answerable_matrix(test[n], train.question_probs(evidence, test[n]), False)
                    refused = model.predict(tx[:, train._ANS_COLS]) < model.threshold
                    c = counts.setdefault((label, budget, n), [0, 0, 0, 0])
                    c[0] += int(refused[ty == 1].sum())
                    c[1] += int((ty == 1).sum())
                    c[2] += int(refused[ty == 0].sum())
                    c[3] += int((ty == 0).sum())
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.02, 0.03])
    args = ap.parse_args(argv)
    for (label, budget, corpus), (fr, ans, ur, una) in sorted(within_corpus(tuple(args.budgets)).items()):
        print(f"{label:13s} budget {budget:.2f} {corpus:9s} false refusals {fr / max(ans, 1):.3f} ({fr}/{ans})  "
              f"unanswerable refused {ur / max(una, 1):.3f} ({ur}/{una})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

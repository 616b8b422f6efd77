"""Learned models as plain JSON (nothing is unpickled): standardised logistic regression, optionally
followed by gradient-boosted trees exported node by node.

Files live in ``answer/models/``; ``citeqa.training.train`` writes them together with a model card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from citeqa.errors import CiteqaError

MODELS_DIR = Path(__file__).with_name("models")


class ModelError(CiteqaError):
    """A model file is missing or malformed."""


@dataclass(frozen=True)
class Tree:
    feature: np.ndarray  # int, -1 at leaves
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    missing_left: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        # All rows walk down together, one tree level per step (trees are shallow).
        node = np.zeros(len(x), dtype=np.int64)
        rows = np.arange(len(x))
        while True:
            feat = self.feature[node]
            inner = feat >= 0
            if not inner.any():
                return np.asarray(self.value[node], dtype=np.float64)
            v = x[rows, np.where(inner, feat, 0)]
            go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)


@dataclass(frozen=True)
class Model:
    """P(y=1 | x) from a model file; ``features`` names the columns it expects, in order."""

    name: str
    features: tuple[str, ...]
    kind: str  # "logistic" | "trees"
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    trees: tuple[Tree, ...] = ()
    baseline: float = 0.0
    learning_rate: float = 1.0
    threshold: float = 0.5  # decision threshold chosen on out-of-fold predictions
    extra: dict[str, Any] | None = None

    def decision(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if self.kind == "trees":
            raw = np.full(len(x), self.baseline)
            for t in self.trees:
                raw += self.learning_rate * t.predict(x)
            return raw
        z = (x - self.mean) / self.scale
        out: np.ndarray = z @ self.coef + self.intercept
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(self.decision(x), -30, 30)))
        return out

    # --- files ---------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "features": list(self.features),
                             "threshold": self.threshold, "extra": self.extra or {}}
        if self.kind == "logistic":
            d.update(mean=self.mean.tolist(), scale=self.scale.tolist(), coef=self.coef.tolist(),
                     intercept=self.intercept)
        else:
            d.update(baseline=self.baseline, learning_rate=self.learning_rate, trees=[
                {k: getattr(t, k).tolist() for k in ("feature", "threshold", "left", "right", "value",
                                                     "missing_left")} for t in self.trees])
        return d

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=0), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Model:
        feats = tuple(d["features"])
        if d["kind"] == "logistic":
            return cls(d["name"], feats, "logistic", np.array(d["mean"]), np.array(d["scale"]),
                       np.array(d["coef"]), float(d["intercept"]), threshold=float(d.get("threshold", 0.5)),
                       extra=d.get("extra") or {})
        trees = tuple(Tree(np.array(t["feature"], dtype=np.int64), np.array(t["threshold"]),
                           np.array(t["left"], dtype=np.int64), np.array(t["right"], dtype=np.int64),
                           np.array(t["value"]), np.array(t["missing_left"], dtype=bool)) for t in d["trees"])
        z = np.zeros(len(feats))
        return cls(d["name"], feats, "trees", z, z + 1, z, 0.0, trees, float(d["baseline"]),
                   float(d["learning_rate"]), float(d.get("threshold", 0.5)), d.get("extra") or {})

    @classmethod
    def load(cls, path: Path) -> Model:
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError as e:
            raise ModelError(f"Model file {path} is missing; run `python -m citeqa.training.train` to "
                             "create it, or reinstall citeqa.") from e
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"Model file {path} is malformed ({e}); run `python -m citeqa.training.train` "
                             "to rebuild it.") from e


def check_features(model: Model, names: tuple[str, ...]) -> None:
    if not set(model.features) <= set(names):
        raise ModelError(f"Model {model.name!r} was trained on other features than this citeqa computes; "
                         "retrain with `python -m citeqa.training.train`.")


def columns(model: Model, names: tuple[str, ...]) -> np.ndarray:
    """Indices of the model's features among the computed ``names`` (a model may use a subset)."""
    pos = {n: i for i, n in enumerate(names)}
    return np.array([pos[n] for n in model.features], dtype=np.int64)


@lru_cache(maxsize=16)
def load_model(path: str) -> Model:
    return Model.load(Path(path))


def model_path(models_dir: str | Path | None, name: str) -> Path:
    return Path(models_dir or MODELS_DIR) / f"{name}.json"


def logistic_from_sklearn(name: str, features: tuple[str, ...], scaler: Any, lr: Any, threshold: float = 0.5,
                          extra: dict[str, Any] | None = None) -> Model:
    scale = np.where(scaler.scale_ == 0, 1.0, scaler.scale_)
    return Model(name, features, "logistic", np.asarray(scaler.mean_, dtype=float), np.asarray(scale, dtype=float),
                 np.asarray(lr.coef_[0], dtype=float), float(lr.intercept_[0]), threshold=threshold, extra=extra)


def trees_from_sklearn(name: str, features: tuple[str, ...], gb: Any, threshold: float = 0.5,
                       extra: dict[str, Any] | None = None) -> Model:
    """Export a fitted ``HistGradientBoostingClassifier`` (binary) node by node."""
    trees = []
    for (pred,) in gb._predictors:
        nodes = pred.nodes
        is_leaf = nodes["is_leaf"].astype(bool)
        trees.append(Tree(
            np.where(is_leaf, -1, nodes["feature_idx"]).astype(np.int64),
            nodes["num_threshold"].astype(float), nodes["left"].astype(np.int64), nodes["right"].astype(np.int64),
            nodes["value"].astype(float), nodes["missing_go_to_left"].astype(bool)))
    z = np.zeros(len(features))
    return Model(name, features, "trees", z, z + 1, z, 0.0, tuple(trees),
                 float(np.ravel(gb._baseline_prediction)[0]), 1.0, threshold, extra)

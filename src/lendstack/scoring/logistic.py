"""Plain standardised logistic regression: the baseline every credit team understands.

Numbers are median-imputed and standardised, categories one-hot encoded over the training
levels (unseen or missing: all zeros). It is fitted with scikit-learn and kept as plain arrays
so it scores a single row, and explains it, without pandas or sklearn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from lendstack.scoring.features import FeatureKind, FeatureSpec


@dataclass(frozen=True, slots=True)
class LinearModel:
    """Per feature: numeric (median, mean, std, coefficient) or one coefficient per category."""

    medians: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    coefficients: tuple[tuple[float, ...], ...]
    kinds: tuple[FeatureKind, ...]
    intercept: float

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature log-odds terms, last column the intercept; rows sum to the logit."""
        out = np.zeros((X.shape[0], X.shape[1] + 1))
        for j, kind in enumerate(self.kinds):
            col = X[:, j]
            coef = np.asarray(self.coefficients[j])
            if kind is FeatureKind.NUMERIC:
                filled = np.where(np.isnan(col), self.medians[j], col)
                out[:, j] = coef[0] * (filled - self.means[j]) / self.scales[j]
            elif len(coef):
                ok = ~np.isnan(col)
                out[ok, j] = coef[col[ok].astype(np.int64)]
        out[:, -1] = self.intercept
        return out

    def logit(self, X: np.ndarray) -> np.ndarray:
        """Log-odds without building the per-feature matrix: numbers in one matrix product."""
        numeric = [j for j, k in enumerate(self.kinds) if k is FeatureKind.NUMERIC]
        out = np.full(X.shape[0], self.intercept)
        if numeric:
            cols = X[:, numeric]
            medians = np.asarray(self.medians)[numeric]
            filled = np.where(np.isnan(cols), medians, cols)
            scale = np.asarray([self.coefficients[j][0] / self.scales[j] for j in numeric])
            out += filled @ scale - float(np.asarray(self.means)[numeric] @ scale)
        for j, kind in enumerate(self.kinds):
            if kind is FeatureKind.CATEGORICAL and self.coefficients[j]:
                coef = np.asarray((*self.coefficients[j], 0.0))
                col = X[:, j]
                out += coef[np.where(np.isnan(col), len(coef) - 1, col).astype(np.int64)]
        return out


def _design(X: np.ndarray, spec: FeatureSpec, stats: tuple[np.ndarray, ...]) -> np.ndarray:
    medians, means, scales = stats
    blocks: list[np.ndarray] = []
    for j, feat in enumerate(spec.features):
        col = X[:, j]
        if feat.kind is FeatureKind.NUMERIC:
            filled = np.where(np.isnan(col), medians[j], col)
            blocks.append(((filled - means[j]) / scales[j])[:, None])
        else:
            onehot = np.zeros((X.shape[0], len(feat.categories)))
            ok = ~np.isnan(col)
            onehot[np.flatnonzero(ok), col[ok].astype(np.int64)] = 1.0
            blocks.append(onehot)
    return np.hstack(blocks)


def _stats(X: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, ...]:
    p = X.shape[1]
    medians, means, scales = np.zeros(p), np.zeros(p), np.ones(p)
    for j, feat in enumerate(spec.features):
        if feat.kind is FeatureKind.NUMERIC:
            col = X[:, j]
            med = float(np.nanmedian(col)) if np.any(~np.isnan(col)) else 0.0
            filled = np.where(np.isnan(col), med, col)
            medians[j], means[j] = med, float(filled.mean())
            scales[j] = float(filled.std()) or 1.0
    return medians, means, scales


def fit_logistic(X: np.ndarray, y: np.ndarray, spec: FeatureSpec) -> LinearModel:
    """Fit the baseline; `y` is 1 for default."""
    stats = _stats(X, spec)
    model = LogisticRegression(max_iter=2000).fit(_design(X, spec, stats), y.astype(np.int64))
    flat = model.coef_.ravel()
    coefs: list[tuple[float, ...]] = []
    at = 0
    for feat in spec.features:
        width = 1 if feat.kind is FeatureKind.NUMERIC else len(feat.categories)
        coefs.append(tuple(float(c) for c in flat[at : at + width]))
        at += width
    return LinearModel(
        tuple(float(v) for v in stats[0]),
        tuple(float(v) for v in stats[1]),
        tuple(float(v) for v in stats[2]),
        tuple(coefs),
        tuple(f.kind for f in spec.features),
        float(model.intercept_[0]),
    )


def linear_to_dict(model: LinearModel) -> dict[str, Any]:
    return {
        "medians": list(model.medians),
        "means": list(model.means),
        "scales": list(model.scales),
        "coefficients": [list(c) for c in model.coefficients],
        "kinds": [k.value for k in model.kinds],
        "intercept": model.intercept,
    }


def linear_from_dict(data: Mapping[str, Any]) -> LinearModel:
    return LinearModel(
        tuple(data["medians"]),
        tuple(data["means"]),
        tuple(data["scales"]),
        tuple(tuple(c) for c in data["coefficients"]),
        tuple(FeatureKind(k) for k in data["kinds"]),
        data["intercept"],
    )

"""Drift: population stability of the score and every feature, and characteristic analysis.

The baseline is taken from the training data at train time and saved with the model, so
monitoring needs only the current applications. PSI bands follow the industry convention:
below 0.10 stable, 0.10-0.25 worth a look, 0.25 and above a material shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from lendstack.scoring.features import FeatureKind, FeatureSpec
from lendstack.scoring.scorecard import CompiledScorecard

_FLOOR = 1e-4
_QUANTILE_BINS = 10


class Stability(StrEnum):
    STABLE = "stable"
    WATCH = "watch"
    SHIFT = "shift"


def band(psi: float) -> Stability:
    if psi < 0.10:
        return Stability.STABLE
    return Stability.WATCH if psi < 0.25 else Stability.SHIFT


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two bin-share vectors (floored to avoid log 0)."""
    e = np.maximum(np.asarray(expected, dtype=float), _FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _edges(values: np.ndarray) -> list[float]:
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return []
    qs = np.quantile(finite, np.linspace(0, 1, _QUANTILE_BINS + 1)[1:-1])
    return sorted({float(q) for q in qs})


def _shares_numeric(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Shares per bin (-inf, e0], (e0, e1], ..., (e_last, inf), then missing."""
    out = np.zeros(len(edges) + 2)
    ok = ~np.isnan(values)
    idx = np.searchsorted(np.asarray(edges), values[ok], side="left")
    np.add.at(out, idx, 1.0)
    out[-1] = np.sum(~ok)
    return out / max(len(values), 1)


def _shares_categorical(values: np.ndarray, n_levels: int) -> np.ndarray:
    out = np.zeros(n_levels + 1)
    ok = ~np.isnan(values)
    np.add.at(out, values[ok].astype(np.int64), 1.0)
    out[-1] = np.sum(~ok)
    return out / max(len(values), 1)


def build_profile(spec: FeatureSpec, X: np.ndarray, pd_: np.ndarray) -> dict[str, Any]:
    """Training baseline: bin edges and shares for the score and each feature."""
    score_edges = _edges(pd_)
    features = {}
    for j, feat in enumerate(spec.features):
        if feat.kind is FeatureKind.NUMERIC:
            edges = _edges(X[:, j])
            shares = _shares_numeric(X[:, j], edges)
        else:
            edges = []
            shares = _shares_categorical(X[:, j], len(feat.categories))
        features[feat.name] = {"edges": edges, "shares": [float(s) for s in shares]}
    return {
        "score": {
            "edges": score_edges,
            "shares": [float(s) for s in _shares_numeric(pd_, score_edges)],
        },
        "features": features,
    }


@dataclass(frozen=True, slots=True)
class DriftRow:
    name: str
    psi: float
    stability: Stability


def drift(
    profile: dict[str, Any], spec: FeatureSpec, X: np.ndarray, pd_: np.ndarray
) -> list[DriftRow]:
    """PSI of the score (first row) and each feature against the training baseline."""
    base = profile["score"]
    score_psi = psi(base["shares"], _shares_numeric(pd_, base["edges"]))
    rows = [DriftRow("score (PD)", score_psi, band(score_psi))]
    for j, feat in enumerate(spec.features):
        ref = profile["features"][feat.name]
        if feat.kind is FeatureKind.NUMERIC:
            now = _shares_numeric(X[:, j], ref["edges"])
        else:
            now = _shares_categorical(X[:, j], len(feat.categories))
        value = psi(ref["shares"], now)
        rows.append(DriftRow(feat.name, value, band(value)))
    return rows


@dataclass(frozen=True, slots=True)
class CharacteristicRow:
    """One scorecard bin: training share, current share, and the points shift it causes."""

    feature: str
    bin: str
    points: float
    expected: float
    actual: float

    @property
    def shift(self) -> float:
        return (self.actual - self.expected) * self.points


def characteristic_analysis(
    model_card: CompiledScorecard,
    train_bin_shares: dict[str, list[float]],
    X: np.ndarray,
    spec: FeatureSpec,
) -> list[CharacteristicRow]:
    """Per scorecard bin, how the population moved and how many points that moved the score."""
    rows = []
    for ch in model_card.characteristics:
        name = spec.features[ch.index].name
        bins = ch.bins_of(X[:, ch.index])
        actual = np.bincount(bins, minlength=len(ch.points)) / max(len(bins), 1)
        expected = train_bin_shares[name]
        for b, label in enumerate(ch.labels):
            rows.append(CharacteristicRow(name, label, ch.points[b], expected[b], float(actual[b])))
    return rows


def card_bin_shares(
    model_card: CompiledScorecard, X: np.ndarray, spec: FeatureSpec
) -> dict[str, list[float]]:
    """Training share of each scorecard bin, saved for characteristic analysis later."""
    out = {}
    for ch in model_card.characteristics:
        bins = ch.bins_of(X[:, ch.index])
        shares = np.bincount(bins, minlength=len(ch.points)) / max(len(bins), 1)
        out[spec.features[ch.index].name] = [float(s) for s in shares]
    return out

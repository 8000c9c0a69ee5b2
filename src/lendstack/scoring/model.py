"""A trained credit model in memory, and its scoring API (batch and single-row).

`CreditModel.score_row` is the in-process path the underwriting decision engine calls: one
applicant as a plain mapping in, PD, points and reasons out, with no pandas anywhere. The
trees get one numpy row with `num_threads=1` (thread start-up on one row costs more than the
prediction), the scorecard and logistic parts are array lookups, and one TreeSHAP call yields
both the tree margin and its per-feature contributions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lendstack.scoring.champion import Champion
from lendstack.scoring.explain import Reason, centre, top_adverse
from lendstack.scoring.fairness import GroupRow
from lendstack.scoring.features import FeatureKind, FeatureSpec


@dataclass(frozen=True, slots=True)
class RowScore:
    """One applicant's result. `points` is the champion PD on the points scale."""

    pd: float
    points: float
    scorecard_points: float
    reasons: tuple[Reason, ...] = ()
    scorecard_reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchScore:
    pd: np.ndarray
    points: np.ndarray
    scorecard_points: np.ndarray


@dataclass(frozen=True, slots=True)
class CreditModel:
    """Champion, its reason reference point, drift baseline and training facts."""

    champion: Champion
    reference: np.ndarray
    metadata: dict[str, Any]
    profile: dict[str, Any] = field(default_factory=dict)
    fairness: tuple[GroupRow, ...] = ()

    @property
    def spec(self) -> FeatureSpec:
        return self.champion.spec

    def score_matrix(self, X: np.ndarray) -> BatchScore:
        """Batch scoring of encoded rows, no reasons: the throughput path."""
        Z, card = self.champion.score_parts(X)
        pd_ = self.champion.blend.pd(Z)
        return BatchScore(pd_, self.champion.scorecard.scaling.points_from_pd(pd_), card)

    def reasons_matrix(self, X: np.ndarray) -> list[tuple[Reason, ...]]:
        impacts = centre(self.champion.contributions(X), self.reference)
        return [top_adverse(self.spec, X[i], impacts[i]) for i in range(X.shape[0])]

    def explain_matrix(self, X: np.ndarray) -> np.ndarray:
        """Centred contributions (n, p+1): rows sum to the blended raw log-odds."""
        return centre(self.champion.contributions(X), self.reference)

    def score_encoded_many(self, X: np.ndarray) -> list[RowScore]:
        """`score_encoded(x, reasons=False)` for every row of `X`, bit for bit, in one pass.

        The decision path's vectorised form: one tree prediction over the matrix, every
        scorecard and logistic column binned once, then the single-row arithmetic replayed
        per row where its rounding depends on the shape (the per-row term sums, the 1x3
        blend product). `score_matrix` sums in another order and may differ in the last bit;
        decisions compare PDs with the policy's cut-off, so they must come from this path.
        """
        champ = self.champion
        n = X.shape[0]
        if n == 0:
            return []
        gbm = np.asarray(champ.booster.predict(X, raw_score=True), dtype=np.float64)
        card_terms = champ.scorecard.contributions(X)
        _, card_points = champ.scorecard.logit_and_points(X)
        lin_terms = champ.logistic.contributions(X)
        blend = champ.blend
        weights = np.asarray(blend.weights)
        raw = np.empty(n)
        for i in range(n):
            z = np.array([[float(gbm[i]), card_terms[i].sum(), lin_terms[i].sum()]])
            raw[i] = (blend.intercept + z @ weights)[0]
        pd_ = blend.calibrator(raw)
        points = champ.scorecard.scaling.points_from_pd(pd_)
        return [RowScore(float(pd_[i]), float(points[i]), float(card_points[i])) for i in range(n)]

    def score_row(self, row: Mapping[str, Any], reasons: bool = True) -> RowScore:
        """Score one applicant given as a mapping of column name to value."""
        x = self.spec.encode_row(row)
        return self.score_encoded(x, reasons)

    def score_encoded(self, x: np.ndarray, reasons: bool = True) -> RowScore:
        champ = self.champion
        X = x[None, :]
        if reasons:
            gbm = np.asarray(champ.booster.predict(X, pred_contrib=True, num_threads=1))[0]
            gbm_logit = float(gbm.sum())
        else:
            gbm_logit = float(champ.booster.predict(X, raw_score=True, num_threads=1)[0])
        card_terms, card_points, shortfall = _scorecard_row(champ, x)
        lin_terms = _linear_row(champ, x)
        z = np.array([[gbm_logit, card_terms.sum(), lin_terms.sum()]])
        pd_ = float(champ.blend.pd(z)[0])
        scaling = champ.scorecard.scaling
        points = float(scaling.points_from_pd(np.array([pd_]))[0])
        if not reasons:
            return RowScore(pd_, points, card_points)
        w = champ.blend.weights
        impacts = w[0] * gbm + w[1] * card_terms + w[2] * lin_terms - self.reference
        return RowScore(
            pd_,
            points,
            card_points,
            top_adverse(self.spec, x, impacts),
            top_adverse(self.spec, x, shortfall),
        )


def _scorecard_row(champ: Champion, x: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Log-odds terms (+ intercept last), total points and points short of each maximum."""
    p = len(x)
    terms = np.zeros(p + 1)
    shortfall = np.zeros(p + 1)
    total = 0.0
    for ch in champ.scorecard.characteristics:
        b = ch.bin_of(float(x[ch.index]))
        terms[ch.index] = ch.coefficient * ch.woe[b]
        total += ch.points[b]
        shortfall[ch.index] = max(ch.points) - ch.points[b]
    terms[-1] = champ.scorecard.intercept
    return terms, total, shortfall


def _linear_row(champ: Champion, x: np.ndarray) -> np.ndarray:
    lin = champ.logistic
    terms = np.zeros(len(x) + 1)
    for j, kind in enumerate(lin.kinds):
        v = float(x[j])
        coef = lin.coefficients[j]
        if kind is FeatureKind.NUMERIC:
            v = lin.medians[j] if v != v else v
            terms[j] = coef[0] * (v - lin.means[j]) / lin.scales[j]
        elif v == v and coef:
            terms[j] = coef[int(v)]
    terms[-1] = lin.intercept
    return terms

"""The default pipeline: three heterogeneous models, blended and calibrated on training data only.

Boosted trees win on large tables with interactions; a binned scorecard wins on small, noisy
ones (Lessmann et al. 2015 found heterogeneous ensembles best overall). Rather than guess
which table this is, the pipeline fits LightGBM, the WOE scorecard and a plain logistic
regression on inner folds of the training data, and learns the blend and the calibration
from their out-of-fold scores. Nothing outside the training rows is looked at, so the same
pipeline can sit inside an outer cross-validation and be evaluated honestly.

Every component is additive in log-odds per feature (TreeSHAP for the trees, coefficient x
value for the linear ones), so the blend is too: that is what makes champion reason codes exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import lightgbm as lgb
import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import StratifiedKFold

from lendstack.scoring.blend import Blend, fit_blend
from lendstack.scoring.features import FeatureSpec
from lendstack.scoring.gbm import (
    MAX_ROUNDS,
    GBMConfig,
    booster_contributions,
    booster_logit,
    fit_booster,
    rounds_by_early_stopping,
)
from lendstack.scoring.logistic import LinearModel, fit_logistic
from lendstack.scoring.metrics import Metric, compute_metrics, sigmoid
from lendstack.scoring.scorecard import (
    CompiledScorecard,
    Scaling,
    ScorecardFitter,
)

Progress = Callable[[str], None]


class Component(StrEnum):
    GBM = "lightgbm"
    SCORECARD = "scorecard"
    LOGISTIC = "logistic"


COMPONENTS = tuple(Component)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Everything the default pipeline lets a user change; none of it is tuned per dataset."""

    seed: int = 42
    inner_folds: int = 4
    n_jobs: int = 2
    holdout_min_rows: int = 50_000
    gbm: GBMConfig = field(default_factory=GBMConfig)
    scaling: Scaling = field(default_factory=Scaling)


@dataclass(frozen=True, slots=True)
class Champion:
    """The fitted default pipeline plus what its inner cross-validation saw."""

    spec: FeatureSpec
    booster: lgb.Booster
    scorecard: CompiledScorecard
    logistic: LinearModel
    blend: Blend
    gbm_rounds: int
    inner_oof: np.ndarray = field(default_factory=lambda: np.empty((0, 0)), compare=False)

    def component_logits(self, X: np.ndarray) -> np.ndarray:
        return self.score_parts(X)[0]

    def score_parts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Component log-odds (n, 3) and scorecard points, each column binned once."""
        card_logit, card_points = self.scorecard.logit_and_points(X)
        Z = np.column_stack([booster_logit(self.booster, X), card_logit, self.logistic.logit(X)])
        return Z, card_points

    def raw(self, X: np.ndarray) -> np.ndarray:
        return self.blend.raw(self.component_logits(X))

    def pd(self, X: np.ndarray) -> np.ndarray:
        return self.blend.pd(self.component_logits(X))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Blended per-feature log-odds terms; last column the constant; rows sum to `raw`."""
        w = self.blend.weights
        out = w[0] * booster_contributions(self.booster, X)
        out += w[1] * self.scorecard.contributions(X)
        out += w[2] * self.logistic.contributions(X)
        out[:, -1] += self.blend.intercept
        return out


@dataclass(frozen=True, slots=True)
class _FoldResult:
    index: np.ndarray
    logits: np.ndarray
    rounds: int


def _inner_fold(
    X: np.ndarray,
    y: np.ndarray,
    tr: np.ndarray,
    va: np.ndarray,
    spec: FeatureSpec,
    config: PipelineConfig,
    k: int,
) -> _FoldResult:
    """One inner fold: every learned step (binning included) refitted on the fold's rows.

    Binning is refitted too: bins chosen on rows that are then scored make the scorecard look
    better out of fold than it is, and the blend would over-weight it.
    """
    booster, best = rounds_by_early_stopping(
        X[tr], y[tr], X[va], y[va], spec, config.gbm, config.seed + k
    )
    logits = np.column_stack(
        [
            booster_logit(booster, X[va], best),
            ScorecardFitter(config.scaling).fit(X[tr], y[tr], spec).logit(X[va]),
            fit_logistic(X[tr], y[tr], spec).logit(X[va]),
        ]
    )
    return _FoldResult(va, logits, best)


def _linear_parts(
    X: np.ndarray, y: np.ndarray, spec: FeatureSpec, config: PipelineConfig
) -> tuple[CompiledScorecard, LinearModel]:
    return ScorecardFitter(config.scaling).fit(X, y, spec), fit_logistic(X, y, spec)


def inner_tasks(
    X: np.ndarray, y: np.ndarray, spec: FeatureSpec, config: PipelineConfig
) -> list[Any]:
    """The independent first-phase fits: each inner fold, and the final linear parts.

    From `holdout_min_rows` rows on, one held-out slice (the first inner fold) replaces the
    full inner CV: a quarter of a large table already pins the blend down, and the other
    folds would triple the training time for nothing.
    """
    splits = list(
        StratifiedKFold(config.inner_folds, shuffle=True, random_state=config.seed).split(X, y)
    )
    if len(y) >= config.holdout_min_rows:
        splits = splits[:1]
    tasks = [
        delayed(_inner_fold)(X, y, tr, va, spec, config, k) for k, (tr, va) in enumerate(splits)
    ]
    tasks.append(delayed(_linear_parts)(X, y, spec, config))
    return tasks


def run_tasks(tasks: list[Any], n_jobs: int, step: Progress, label: str) -> list[Any]:
    """Run independent fits in `n_jobs` single-threaded worker processes, in order.

    Each task is single-threaded (LightGBM too), so `n_jobs` processes use `n_jobs` cores
    without OpenMP threads fighting over them; results do not depend on `n_jobs`.
    """
    results = []
    for k, result in enumerate(Parallel(n_jobs=n_jobs, return_as="generator")(tasks)):
        results.append(result)
        step(f"{label} {k + 1}/{len(tasks)}")
    return results


def assemble(
    X: np.ndarray, y: np.ndarray, spec: FeatureSpec, config: PipelineConfig, results: list[Any]
) -> Champion:
    """Second phase: final trees sized by the inner folds, blend and calibration."""
    folds: list[_FoldResult] = results[:-1]
    card, logistic = results[-1]
    rows = np.sort(np.concatenate([f.index for f in folds]))
    oof = np.full((len(y), len(COMPONENTS)), np.nan)
    for fold in folds:
        oof[fold.index] = fold.logits
    # Trees for the full set: the inner folds' mean, scaled up for the larger training set.
    rounds = min(MAX_ROUNDS, max(1, round(float(np.mean([f.rounds for f in folds])) * 1.1)))
    booster = fit_booster(X, y, spec, config.gbm, rounds, config.seed)
    blend, _ = fit_blend(oof[rows], y[rows], config.seed)
    return Champion(spec, booster, card, logistic, blend, rounds, oof)


def fit_champion(
    X: np.ndarray,
    y: np.ndarray,
    spec: FeatureSpec,
    config: PipelineConfig,
    progress: Progress | None = None,
) -> Champion:
    """Fit the whole default pipeline on one training set (rows of `X`, `y` = 1 for default)."""
    step = progress or (lambda _msg: None)
    results = run_tasks(inner_tasks(X, y, spec, config), config.n_jobs, step, "fit")
    champion = assemble(X, y, spec, config, results)
    step("final trees and blend")
    return champion


def scored_rows(champion: Champion) -> np.ndarray:
    """Rows that have out-of-fold scores: all of them, or the held-out slice on big tables."""
    return np.flatnonzero(~np.isnan(champion.inner_oof[:, 0]))


def inner_metrics(champion: Champion, y: np.ndarray) -> dict[str, dict[Metric, float]]:
    """Out-of-fold metrics from the inner folds (the blend row is mildly optimistic: its
    weights were chosen on these same rows). `lendstack model evaluate` is the honest figure."""
    rows = scored_rows(champion)
    oof, y = champion.inner_oof[rows], y[rows]
    out = {c.value: compute_metrics(y, sigmoid(oof[:, i])) for i, c in enumerate(COMPONENTS)}
    out["champion"] = compute_metrics(y, champion.blend.pd(oof))
    return out

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

import lightgbm as lgb
import numpy as np
from sklearn.model_selection import StratifiedKFold

from lendstack.scoring.blend import Blend, fit_blend
from lendstack.scoring.features import FeatureSpec
from lendstack.scoring.gbm import (
    GBMConfig,
    booster_contributions,
    booster_logit,
    fit_booster,
    rounds_by_early_stopping,
)
from lendstack.scoring.logistic import LinearModel, fit_logistic
from lendstack.scoring.metrics import Metric, compute_metrics
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
        return np.column_stack(
            [booster_logit(self.booster, X), self.scorecard.logit(X), self.logistic.logit(X)]
        )

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


@dataclass(slots=True)
class _Inner:
    oof: np.ndarray
    rounds: list[int]


def _inner_cv(
    X: np.ndarray,
    y: np.ndarray,
    spec: FeatureSpec,
    config: PipelineConfig,
    progress: Progress,
) -> _Inner:
    """Out-of-fold log-odds for each component, every learned step refitted per fold.

    The scorecard's binning is refitted too: bins chosen on rows that are then scored make
    the scorecard look better out of fold than it is, and the blend would over-weight it.
    """
    folds = StratifiedKFold(config.inner_folds, shuffle=True, random_state=config.seed)
    oof = np.zeros((len(y), len(COMPONENTS)))
    rounds: list[int] = []
    for k, (tr, va) in enumerate(folds.split(X, y)):
        booster, best = rounds_by_early_stopping(
            X[tr], y[tr], X[va], y[va], spec, config.gbm, config.seed + k
        )
        rounds.append(best)
        oof[va, 0] = booster_logit(booster, X[va], best)
        oof[va, 1] = ScorecardFitter(config.scaling).fit(X[tr], y[tr], spec).logit(X[va])
        oof[va, 2] = fit_logistic(X[tr], y[tr], spec).logit(X[va])
        progress(f"inner fold {k + 1}/{config.inner_folds}")
    return _Inner(oof, rounds)


def fit_champion(
    X: np.ndarray,
    y: np.ndarray,
    spec: FeatureSpec,
    config: PipelineConfig,
    progress: Progress | None = None,
) -> Champion:
    """Fit the whole default pipeline on one training set (rows of `X`, `y` = 1 for default)."""
    step = progress or (lambda _msg: None)
    inner = _inner_cv(X, y, spec, config, step)
    card = ScorecardFitter(config.scaling).fit(X, y, spec)
    # Trees for the full set: the inner folds' mean, scaled up for the larger training set.
    rounds = max(1, round(float(np.mean(inner.rounds)) * 1.1))
    booster = fit_booster(X, y, spec, config.gbm, rounds, config.seed)
    logistic = fit_logistic(X, y, spec)
    blend, _ = fit_blend(inner.oof, y, config.seed)
    step("final models")
    return Champion(spec, booster, card, logistic, blend, rounds, inner.oof)


def inner_metrics(champion: Champion, y: np.ndarray) -> dict[str, dict[Metric, float]]:
    """Out-of-fold metrics from the inner folds (the blend row is mildly optimistic: its
    weights were chosen on these same rows). `lendstack model evaluate` is the honest figure."""
    oof = champion.inner_oof
    out = {
        c.value: compute_metrics(y, 1 / (1 + np.exp(-oof[:, i]))) for i, c in enumerate(COMPONENTS)
    }
    out["champion"] = compute_metrics(y, champion.blend.pd(oof))
    return out

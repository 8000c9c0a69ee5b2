"""The LightGBM part of the champion: fixed, conservative defaults plus early stopping.

There is no per-dataset tuning. The defaults (small leaves, slow learning rate, row and column
subsampling, L2) suit the few-thousand to few-million row tables credit teams have; the only
thing learned from the data is the number of trees, by early stopping inside the training
data's own inner folds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from lendstack.scoring.features import FeatureSpec

# A cap on model size, not a tuning knob: TreeSHAP reason codes cost time in proportion to the
# number of trees, and one applicant's reasons must stay within ~2 ms. Early stopping ends well
# before the cap on typical credit tables; on very large ones the cap trades a little AUC for
# bounded decision latency and training time.
MAX_ROUNDS = 500
PATIENCE = 100


@dataclass(frozen=True, slots=True)
class GBMConfig:
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_child_samples: int = 20
    subsample: float = 0.8
    colsample_bytree: float = 0.7
    reg_lambda: float = 1.0
    num_threads: int = 1

    def params(self, seed: int) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "subsample": self.subsample,
            "subsample_freq": 1,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "min_data_per_group": 20,
            "cat_smooth": 10.0,
            "max_cat_to_onehot": 8,
            "num_threads": self.num_threads,
            "deterministic": True,
            "force_col_wise": True,
            "seed": seed,
            "verbose": -1,
        }


def _dataset(X: np.ndarray, y: np.ndarray, spec: FeatureSpec, reference: Any = None) -> Any:
    return lgb.Dataset(
        X,
        label=y,
        feature_name=[f"f{j}" for j in range(X.shape[1])],
        categorical_feature=list(spec.categorical_indices),
        reference=reference,
        free_raw_data=False,
    )


def rounds_by_early_stopping(
    X: np.ndarray,
    y: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    spec: FeatureSpec,
    config: GBMConfig,
    seed: int,
) -> tuple[lgb.Booster, int]:
    """Train until validation log loss stops improving; return the booster and its best size."""
    train = _dataset(X, y, spec)
    valid = _dataset(X_valid, y_valid, spec, reference=train)
    booster = lgb.train(
        config.params(seed),
        train,
        MAX_ROUNDS,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(PATIENCE, verbose=False)],
    )
    best = max(1, int(booster.best_iteration))
    return booster, best


def fit_booster(
    X: np.ndarray, y: np.ndarray, spec: FeatureSpec, config: GBMConfig, rounds: int, seed: int
) -> lgb.Booster:
    return lgb.train(config.params(seed), _dataset(X, y, spec), rounds)


def booster_logit(booster: lgb.Booster, X: np.ndarray, best: int | None = None) -> np.ndarray:
    return np.asarray(booster.predict(X, raw_score=True, num_iteration=best))


def booster_contributions(booster: lgb.Booster, X: np.ndarray) -> np.ndarray:
    """TreeSHAP: per-feature log-odds terms, last column the expected value (the reference)."""
    return np.asarray(booster.predict(X, pred_contrib=True))

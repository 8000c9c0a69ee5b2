"""Discrimination and calibration metrics used by evaluation, training metadata and reports.

Credit teams read AUC/Gini and KS for ranking, Brier and log loss for probability quality, and
ECE for "does a 5% PD mean 5% of these borrowers default". All take `y` in {0, 1} and `p` the
predicted probability of default.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

_EPS = 1e-12


class Metric(StrEnum):
    AUC = "auc"
    GINI = "gini"
    KS = "ks"
    BRIER = "brier"
    LOG_LOSS = "log_loss"
    ECE = "ece"
    ECE_FLOOR = "ece_floor"


def auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p))


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Largest gap between the cumulative score distributions of defaulters and the rest."""
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    q = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-count bins of predicted PD.

    Equal-count bins, because credit PDs crowd at the low end: equal-width bins would put most
    borrowers in one bin and hide miscalibration where the lending actually happens. The value
    is the count-weighted mean |observed default rate - mean predicted PD|.
    """
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk):
            total += len(chunk) * abs(float(np.mean(y[chunk])) - float(np.mean(p[chunk])))
    return total / len(p)


def ece_floor(p: np.ndarray, bins: int = 10, draws: int = 200, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model with these PDs would show on this many rows.

    Binned ECE is biased upward by sampling noise: on a few hundred rows it reads 0.05 or more
    even for a model whose PDs are exactly right. Simulating outcomes from the PDs themselves
    gives that noise floor, so an ECE can be read against it rather than against zero.
    """
    rng = np.random.default_rng(seed)
    q = np.sort(p)
    starts = np.array([c[0] for c in np.array_split(np.arange(len(q)), min(bins, len(q)))])
    counts = np.diff(np.r_[starts, len(q)])
    mean_p = np.add.reduceat(q, starts) / counts
    total = 0.0
    for batch in np.array_split(np.arange(draws), max(1, draws // 20)):
        sims = (rng.uniform(size=(len(batch), len(q))) < q).astype(np.float64)
        observed = np.add.reduceat(sims, starts, axis=1) / counts
        total += float(np.sum(np.abs(observed - mean_p) @ counts)) / len(q)
    return total / draws


def compute_metrics(y: np.ndarray, p: np.ndarray) -> dict[Metric, float]:
    """All headline metrics for one set of predictions."""
    a = auc(y, p)
    return {
        Metric.AUC: a,
        Metric.GINI: 2 * a - 1,
        Metric.KS: ks_statistic(y, p),
        Metric.BRIER: brier(y, p),
        Metric.LOG_LOSS: log_loss(y, p),
        Metric.ECE: ece(y, p),
        Metric.ECE_FLOOR: ece_floor(p),
    }


@dataclass(frozen=True, slots=True)
class Summary:
    """Mean and standard deviation of one metric across folds."""

    mean: float
    std: float


def summarise(per_fold: list[dict[Metric, float]]) -> dict[Metric, Summary]:
    return {
        m: Summary(
            float(np.mean([f[m] for f in per_fold])), float(np.std([f[m] for f in per_fold]))
        )
        for m in Metric
    }


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(q / (1 - q))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))

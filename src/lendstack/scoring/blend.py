"""Blending the component models and calibrating the blend, learned from out-of-fold scores.

The stack is a ridge-penalised logistic regression on the standardised log-odds of the
components. Standardising makes the penalty pull the weights toward each other, which is
what a heterogeneous ensemble wants on small, noisy tables, where weights picked freely from
a few hundred out-of-fold rows mostly fit noise; the penalty is per row summed, so on large
tables the data dominates and the weights are what the data says.

Calibration is then chosen, isotonic or Platt, by cross-validated log loss over the same
out-of-fold rows. Isotonic is interpolated between block centres, so ranking (and AUC)
survives calibration instead of collapsing into ties.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from lendstack.scoring.metrics import log_loss, sigmoid

STACK_C = 0.1
_CAL_FOLDS = 5


class Calibration(StrEnum):
    PLATT = "platt"
    ISOTONIC = "isotonic"


@dataclass(frozen=True, slots=True)
class Calibrator:
    """Maps the blended log-odds `s` to a PD. Platt: sigmoid(a*s+b); isotonic: interpolation."""

    method: Calibration
    slope: float = 1.0
    offset: float = 0.0
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()

    def __call__(self, s: np.ndarray) -> np.ndarray:
        if self.method is Calibration.PLATT:
            return sigmoid(self.slope * s + self.offset)
        return np.interp(s, np.asarray(self.knots_x), np.asarray(self.knots_y))


@dataclass(frozen=True, slots=True)
class Blend:
    """s = intercept + sum(weights * component_logits); PD = calibrator(s)."""

    weights: tuple[float, ...]
    intercept: float
    calibrator: Calibrator

    def raw(self, Z: np.ndarray) -> np.ndarray:
        return self.intercept + Z @ np.asarray(self.weights)

    def pd(self, Z: np.ndarray) -> np.ndarray:
        return self.calibrator(self.raw(Z))


def _fit_stack(Z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    mu, sd = Z.mean(axis=0), Z.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    model = LogisticRegression(C=STACK_C).fit((Z - mu) / sd, y.astype(np.int64))
    weights = model.coef_.ravel() / sd
    return weights, float(model.intercept_[0] - weights @ mu)


def _fit_platt(s: np.ndarray, y: np.ndarray) -> Calibrator:
    model = LogisticRegression(C=1e6).fit(s[:, None], y.astype(np.int64))
    return Calibrator(Calibration.PLATT, float(model.coef_[0, 0]), float(model.intercept_[0]))


def _fit_isotonic(s: np.ndarray, y: np.ndarray) -> Calibrator:
    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(s, y)
    fitted = iso.predict(s)
    order = np.argsort(s, kind="stable")
    xs, ys = s[order], fitted[order]
    # One knot per constant block, at the block's mean score.
    starts = np.flatnonzero(np.r_[True, np.diff(ys) != 0])
    ends = np.r_[starts[1:], len(ys)]
    kx = [float(xs[a:b].mean()) for a, b in zip(starts, ends, strict=True)]
    ky = [float(ys[a]) for a in starts]
    return Calibrator(Calibration.ISOTONIC, knots_x=tuple(kx), knots_y=tuple(ky))


_FITTERS = {Calibration.PLATT: _fit_platt, Calibration.ISOTONIC: _fit_isotonic}


def _cv_loss(Z: np.ndarray, y: np.ndarray, method: Calibration, seed: int) -> float:
    folds = StratifiedKFold(_CAL_FOLDS, shuffle=True, random_state=seed)
    losses = []
    for train, test in folds.split(Z, y):
        weights, intercept = _fit_stack(Z[train], y[train])
        s_train = intercept + Z[train] @ weights
        cal = _FITTERS[method](s_train, y[train])
        losses.append(log_loss(y[test], cal(intercept + Z[test] @ weights)) * len(test))
    return float(sum(losses) / len(y))


def fit_blend(Z_oof: np.ndarray, y: np.ndarray, seed: int) -> tuple[Blend, dict[str, float]]:
    """Learn weights and calibration from out-of-fold component log-odds (one column each)."""
    losses = {m: _cv_loss(Z_oof, y, m, seed) for m in Calibration}
    method = min(Calibration, key=lambda m: (losses[m], m is Calibration.ISOTONIC))
    weights, intercept = _fit_stack(Z_oof, y)
    calibrator = _FITTERS[method](intercept + Z_oof @ weights, y)
    blend = Blend(tuple(float(w) for w in weights), intercept, calibrator)
    return blend, {f"cv_log_loss_{m.value}": v for m, v in losses.items()}


def blend_to_dict(blend: Blend) -> dict[str, Any]:
    cal = blend.calibrator
    return {
        "weights": list(blend.weights),
        "intercept": blend.intercept,
        "calibration": {
            "method": cal.method.value,
            "slope": cal.slope,
            "offset": cal.offset,
            "knots_x": list(cal.knots_x),
            "knots_y": list(cal.knots_y),
        },
    }


def blend_from_dict(data: Mapping[str, Any]) -> Blend:
    c = data["calibration"]
    cal = Calibrator(
        Calibration(c["method"]), c["slope"], c["offset"], tuple(c["knots_x"]), tuple(c["knots_y"])
    )
    return Blend(tuple(data["weights"]), data["intercept"], cal)

from __future__ import annotations

import numpy as np
import pytest

from lendstack.scoring.blend import Calibration, _fit_isotonic, _fit_platt, fit_blend
from lendstack.scoring.metrics import auc, brier, ece, ks_statistic, log_loss


def test_metrics_on_a_hand_example() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    assert auc(y, p) == pytest.approx(0.75)
    # Thresholds: after 0.9 tpr .5 fpr 0; after 0.6 tpr .5 fpr .5; after 0.4 tpr 1 fpr .5.
    assert ks_statistic(y, p) == pytest.approx(0.5)
    assert brier(y, p) == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    assert log_loss(y, p) == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.4, 0.9])))


def test_ece_is_zero_when_bins_match_and_positive_when_shifted() -> None:
    y = np.array([0, 1] * 50, dtype=float)
    assert ece(y, np.full(100, 0.5), bins=1) == pytest.approx(0.0)
    assert ece(y, np.full(100, 0.7), bins=1) == pytest.approx(0.2)


def test_calibrators_are_monotone_and_sensible() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=4000)
    y = (rng.uniform(size=4000) < 1 / (1 + np.exp(-(0.5 + 2 * s)))).astype(float)
    grid = np.linspace(-3, 3, 200)
    for cal in (_fit_platt(s, y), _fit_isotonic(s, y)):
        out = cal(grid)
        assert np.all(np.diff(out) >= 0)
        assert np.all((out > 0) & (out < 1))
    platt = _fit_platt(s, y)
    assert platt.slope == pytest.approx(2.0, abs=0.2)
    assert platt.offset == pytest.approx(0.5, abs=0.15)


def test_blend_learns_to_ignore_a_useless_component() -> None:
    rng = np.random.default_rng(1)
    signal = rng.normal(size=5000)
    y = (rng.uniform(size=5000) < 1 / (1 + np.exp(-signal))).astype(float)
    Z = np.column_stack([signal, rng.normal(size=5000), signal + rng.normal(size=5000)])
    blend, losses = fit_blend(Z, y, seed=0)
    assert abs(blend.weights[1]) < 0.1 * blend.weights[0]
    assert blend.calibrator.method in set(Calibration)
    assert set(losses) == {"cv_log_loss_platt", "cv_log_loss_isotonic"}

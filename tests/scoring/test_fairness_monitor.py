from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lendstack.scoring import fairness_table, psi
from lendstack.scoring.fairness import group_labels
from lendstack.scoring.monitor import Stability, band


def test_air_against_most_approved_group_with_ci() -> None:
    groups = np.array(["a"] * 400 + ["b"] * 400)
    pd_ = np.r_[np.full(320, 0.1), np.full(80, 0.9), np.full(200, 0.1), np.full(200, 0.9)]
    y = np.r_[np.zeros(380), np.ones(20), np.zeros(300), np.ones(100)]
    rows = {r.group: r for r in fairness_table("g", groups, pd_, y, cutoff=0.5, resamples=500)}
    assert rows["a"].approval_rate == pytest.approx(0.8)
    assert rows["b"].approval_rate == pytest.approx(0.5)
    assert rows["b"].air == pytest.approx(0.5 / 0.8)
    assert rows["a"].air == pytest.approx(1.0)
    assert rows["b"].default_rate == pytest.approx(0.25)
    assert rows["b"].air_low < rows["b"].air < rows["b"].air_high
    # Binomial standard errors: the CI half-width should be near 1.96 * delta-method SE.
    se = 0.625 * np.sqrt(0.5 * 0.5 / 400 / 0.25 + 0.8 * 0.2 / 400 / 0.64)
    assert rows["b"].air_high - rows["b"].air_low == pytest.approx(2 * 1.96 * se, rel=0.25)


def test_too_few_resamples_refused() -> None:
    with pytest.raises(ValueError, match="200"):
        fairness_table("g", np.array(["a", "b"]), np.array([0.1, 0.2]), None, 0.5, resamples=50)


def test_numeric_protected_attribute_is_banded() -> None:
    ages = pd.Series(np.arange(18, 78))
    labels = group_labels(ages)
    assert len(set(labels)) == 5


def test_psi_and_bands() -> None:
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    value = psi(np.array([0.5, 0.5]), np.array([0.7, 0.3]))
    assert value == pytest.approx(0.2 * np.log(0.7 / 0.5) - 0.2 * np.log(0.3 / 0.5))
    assert band(0.05) is Stability.STABLE
    assert band(0.10) is Stability.WATCH
    assert band(0.25) is Stability.SHIFT

"""observed_fairness (scoring.fairness) and the age bands: figures worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lendstack.scoring.fairness import AIR_FLAG, observed_fairness
from lendstack.storage.model_monitoring import age_band
from lendstack.underwriting.identity import gender_of, make_resident_id


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    groups = np.array(["a"] * 100 + ["b"] * 100 + ["c"] * 50, dtype=object)
    approved = np.r_[
        np.ones(90), np.zeros(10), np.ones(70), np.zeros(30), np.ones(40), np.zeros(10)
    ]
    loan_groups = np.array(["a"] * 40 + ["b"] * 20, dtype=object)
    defaulted = np.r_[np.ones(4), np.zeros(36), np.ones(5), np.zeros(15)]
    return groups, approved.astype(bool), loan_groups, defaulted


def test_rates_air_and_flags() -> None:
    rows = {r.group: r for r in observed_fairness("g", *_data(), resamples=500)}
    assert (rows["a"].approval_rate, rows["b"].approval_rate, rows["c"].approval_rate) == (
        0.9,
        0.7,
        0.8,
    )
    assert rows["a"].air == 1.0
    assert rows["b"].air == pytest.approx(0.7 / 0.9)
    assert rows["b"].flagged
    assert rows["c"].air == pytest.approx(0.8 / 0.9)
    assert not rows["c"].flagged
    assert rows["a"].default_rate == 0.1
    assert rows["b"].default_rate == 0.25
    assert rows["c"].matured == 0
    assert math.isnan(rows["c"].default_rate)
    for r in rows.values():
        assert r.approval_low <= r.approval_rate <= r.approval_high
        assert r.air_low <= r.air + 1e-12
        assert r.air <= r.air_high + 1e-12
    assert AIR_FLAG == 0.8


def test_ci_width_shrinks_with_more_data_and_seed_reproduces() -> None:
    small = observed_fairness("g", *_data(), resamples=500, seed=1)
    again = observed_fairness("g", *_data(), resamples=500, seed=1)

    def cis(rows: list) -> list[tuple[float, ...]]:  # type: ignore[type-arg]
        return [(r.approval_low, r.approval_high, r.air_low, r.air_high) for r in rows]

    assert cis(small) == cis(again)
    assert cis(small) != cis(observed_fairness("g", *_data(), resamples=500, seed=2))
    g, a, lg, d = _data()
    big = observed_fairness("g", np.tile(g, 16), np.tile(a, 16), lg, d, resamples=500, seed=1)
    width = {r.group: r.approval_high - r.approval_low for r in small}
    assert all(r.approval_high - r.approval_low < width[r.group] for r in big)


def test_too_few_resamples_refused() -> None:
    with pytest.raises(ValueError, match="resamples"):
        observed_fairness("g", *_data(), resamples=50)


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (17, "<18"),
        (18, "18-24"),
        (24, "18-24"),
        (25, "25-34"),
        (54, "45-54"),
        (55, "55+"),
        (80, "55+"),
    ],
)
def test_age_bands(age: int, band: str) -> None:
    assert age_band(age) == band


def test_gender_from_the_17th_digit() -> None:
    from datetime import date

    assert gender_of(make_resident_id("440305", date(1990, 1, 1), 123)) == "male"
    assert gender_of(make_resident_id("440305", date(1990, 1, 1), 124)) == "female"
    assert gender_of("440305199205171235") == "male"  # the example applicant: 3 is odd


def test_a_tiny_group_does_not_set_the_reference() -> None:
    groups = np.array(["big"] * 100 + ["tiny"] * 5, dtype=object)
    approved = np.r_[np.ones(60), np.zeros(40), np.ones(5)].astype(bool)
    rows = {
        r.group: r
        for r in observed_fairness("g", groups, approved, groups[:0], np.empty(0), resamples=300)
    }
    assert rows["big"].air == 1.0  # 0.6 is the reference, not the 5-of-5 group
    assert rows["tiny"].air == pytest.approx(1.0 / 0.6)

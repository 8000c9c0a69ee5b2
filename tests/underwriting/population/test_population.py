"""The applicant generator: schema-valid, deterministic, calibrated, internally consistent."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import numpy as np
import pytest

from lendstack.core.errors import ValidationError
from lendstack.underwriting import identity
from lendstack.underwriting.application import Application, Purpose
from lendstack.underwriting.population import (
    FORBIDDEN_PURPOSES,
    Population,
    PopulationConfig,
    generate_population,
)


def test_every_application_validates(
    population: Population, applications: list[Application]
) -> None:
    assert len(applications) == len(population) == 20_000
    first = next(population.applications())
    assert Application.model_validate(first).normalised() == first


def test_same_seed_same_population_other_seed_differs() -> None:
    config = PopulationConfig(seed=11, n=2_000)
    a, b = generate_population(config), generate_population(config)
    assert list(a.applications()) == list(b.applications())
    np.testing.assert_array_equal(a.outcomes.latent_pd, b.outcomes.latent_pd)
    np.testing.assert_array_equal(a.outcomes.defaulted, b.outcomes.defaulted)
    other = generate_population(PopulationConfig(seed=12, n=2_000))
    assert list(other.applications()) != list(a.applications())


def test_bad_rate_in_calibrated_band(population: Population) -> None:
    """REGULATION.md §10: prime platforms run ~2% 90+ DPD on what they approve."""
    outcomes = population.outcomes
    screened = population.screened
    assert 0.04 <= outcomes.bad_rate <= 0.08
    assert 0.02 <= outcomes.defaulted[screened].mean() <= 0.04
    assert 0.6 <= screened.mean() <= 0.8
    assert abs(outcomes.latent_pd.mean() - outcomes.bad_rate) < 0.005


def test_latent_pd_is_a_strong_but_imperfect_ranker(population: Population) -> None:
    assert 0.8 < population.outcomes.latent_auc < 0.95


def test_inquiry_windows_nest(population: Population) -> None:
    c = population.columns
    assert np.all(c["inquiries_3m"] <= c["inquiries_6m"])
    assert np.all(c["inquiries_6m"] <= c["inquiries_12m"])
    assert c["inquiries_3m"].max() > 0


def test_ids_match_province_and_age(
    applications: list[Application], population: Population
) -> None:
    ages = population.columns["age"]
    for app, age in zip(applications[:3_000], ages[:3_000], strict=True):
        rid = app.applicant.resident_id
        assert identity.PROVINCE_CODES[rid[:2]] == app.applicant.province
        assert app.age == age
    assert ages.min() >= 18
    assert ages.max() <= 61


@pytest.mark.parametrize(
    ("first", "months"),
    [(date(2024, 2, 29), 1), (date(2024, 2, 29), 24), (date(2024, 2, 29), 120),
     (date(2025, 1, 31), 3), (date(2024, 12, 31), 2), (date(2025, 10, 1), 24)],
)  # fmt: skip
def test_borrowers_are_18_to_60_on_every_day_of_the_span(first: date, months: int) -> None:
    """The simulator re-dates a borrower's application to any month of the span, so the
    borrower must be an adult (and within the age rule's 60) on its first and last day; the
    birth dates moved to get there must not make resident IDs collide."""
    cfg = PopulationConfig(seed=3, n=5_000, start=first, months=months)
    rids = generate_population(cfg).columns["resident_id"]
    shift = first.month - 1 + months  # the span ends the same day-of-month `months` later
    end_month = date(first.year + shift // 12, shift % 12 + 1, 1)
    last = end_month + timedelta(days=first.day - 2)
    assert min(identity.age_on(r, first) for r in rids) >= 18
    assert max(identity.age_on(r, last) for r in rids) <= 60
    assert len(set(rids)) == len(rids)


def test_shares_look_like_the_market(
    population: Population, applications: list[Application]
) -> None:
    c = population.columns
    students = c["is_student"]
    assert 0.01 < students.mean() < 0.08
    assert c["age"][students].max() <= 23
    assert np.median(c["monthly_income_fen"][students]) < np.median(c["monthly_income_fen"])
    amounts = c["amount_fen"] / 100
    assert 3_000 <= np.median(amounts) <= 20_000
    assert np.mean((amounts >= 3_000) & (amounts <= 20_000)) > 0.6
    assert set(np.unique(c["term_months"])) <= {3, 6, 12, 24}
    assert np.all(c["term_months"][c["repayment_method"] == "bullet"] <= 12)
    assert Counter(c["repayment_method"].tolist()).most_common(1)[0][0] == "equal-installment"
    assert 0.005 < c["forbidden_purpose"].mean() < 0.05
    assert set(c["purpose"][c["forbidden_purpose"]]) <= set(FORBIDDEN_PURPOSES)
    assert {a.loan.purpose for a in applications} <= set(Purpose)
    assert np.mean([a.consents.bureau_query for a in applications]) > 0.98
    assert 0.002 < 1 - np.mean(c["consent_automated"]) < 0.05
    dates = {a.application_date for a in applications}
    assert min(dates) >= date(2025, 10, 1)
    assert max(dates) < date(2026, 10, 1)


def test_low_z_borrows_from_more_lenders(population: Population) -> None:
    z = population.outcomes.z
    lenders = population.columns["active_lenders"]
    assert lenders[z < -1].mean() > 1.5 * lenders[z > 1].mean()
    assert population.speculation.min() >= 0
    assert population.speculation.max() <= 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"months": 0},
        {"tier_shares": (0.5, 0.5, 0.5, 0.5)},
        {"lender_shares": (1.0, 0.0)},
        {"student_share_young": 1.5},
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PopulationConfig(**kwargs)  # type: ignore[arg-type]

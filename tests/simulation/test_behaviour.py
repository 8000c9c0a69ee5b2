"""Borrower behaviour: reproducible draws, and hazards that move the way the model says."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from lendstack.simulation import load_scenario, parse_scenario
from lendstack.simulation.behaviour import (
    Action,
    BorrowerRisk,
    applicants,
    cures,
    demand_factor,
    due_choice,
    gold_drawdown,
    miss_probability,
    uniform,
)

BASE = load_scenario("baseline")


def _risk(pd: float, burden: float = 0.5, tier: int = 3, diverted: bool = False) -> BorrowerRisk:
    return BorrowerRisk(np.array([pd]), np.array([burden]), np.array([tier]), np.array([diverted]))


def test_uniform_is_reproducible_and_keyed() -> None:
    draws = [uniform(7, loan, 100, "due") for loan in range(2_000)]
    assert draws == [uniform(7, loan, 100, "due") for loan in range(2_000)]
    assert all(0.0 <= u < 1.0 for u in draws)
    assert abs(float(np.mean(draws)) - 0.5) < 0.03  # 2,000 draws: sd of the mean ≈ 0.0065
    assert uniform(7, 1, 100, "due") != uniform(8, 1, 100, "due")


def test_monthly_hazard_reproduces_the_annual_latent_pd() -> None:
    p = miss_probability(_risk(0.12), 0, BASE, 1)
    cure = BASE.behaviour.cure_rate
    h = p / (1 - p) / BASE.behaviour.miss_scale  # odds without the calibration
    h = h / (1 + h) * (1 - cure) ** 2
    assert 1 - (1 - h) ** 12 == pytest.approx(0.12, rel=1e-6)


def test_income_shock_raises_the_hazard_only_where_and_when_it_applies() -> None:
    shock = load_scenario("income-shock")
    risk = _risk(0.05, burden=0.6, tier=4)
    assert miss_probability(risk, 0, shock, 5) == pytest.approx(miss_probability(risk, 0, BASE, 5))
    assert miss_probability(risk, 0, shock, 6) > miss_probability(risk, 0, BASE, 6)
    tier1 = _risk(0.05, burden=0.6, tier=1)
    assert miss_probability(tier1, 0, shock, 6) == pytest.approx(
        miss_probability(tier1, 0, BASE, 6)
    )


def test_gold_crash_hits_diverted_borrowers_only() -> None:
    gold = load_scenario("gold-crash")
    assert gold_drawdown(gold, 8) == 0.0
    assert gold_drawdown(gold, 9) == pytest.approx(0.25)
    speculator, saver = _risk(0.03, diverted=True), _risk(0.03)
    assert miss_probability(speculator, 0, gold, 9) > 10 * miss_probability(speculator, 0, gold, 8)
    assert miss_probability(saver, 0, gold, 9) == pytest.approx(miss_probability(saver, 0, gold, 8))


def test_due_choices_follow_their_probabilities() -> None:
    tally = Counter(due_choice(7, loan, 20_000, 0.10, BASE).action for loan in range(20_000))
    b = BASE.behaviour
    # binomial sd at n = 20,000 is < 0.0022 for these shares; allow 4 sd
    assert tally[Action.DEFAULT] / 20_000 == pytest.approx(0.10, abs=0.009)
    assert tally[Action.LATE] / 20_000 == pytest.approx(b.late_share, abs=0.006)
    assert tally[Action.PREPAY] / 20_000 == pytest.approx(b.prepay_rate, abs=0.004)
    late = [due_choice(7, n, 1, 0.0, BASE) for n in range(5_000)]
    assert all(2 <= c.lag_days <= 21 for c in late if c.action is Action.LATE)


def test_cures_only_at_thirty_day_marks_and_never_after_180() -> None:
    always = replace(BASE, behaviour=replace(BASE.behaviour, cure_rate=1.0))
    assert cures(7, 1, 10, 30, always)
    assert cures(7, 1, 10, 60, always)
    assert not cures(7, 1, 10, 31, always)
    assert not cures(7, 1, 10, 210, always)


def test_demand_answers_approvals_and_price() -> None:
    assert demand_factor(BASE, None, None) == 1.0
    assert demand_factor(BASE, 0.8, 0.18) > demand_factor(BASE, 0.4, 0.18)
    assert demand_factor(BASE, 0.5, 0.12) > demand_factor(BASE, 0.5, 0.24)
    assert demand_factor(BASE, 0.01, 0.36) >= 0.25
    assert demand_factor(BASE, 1.0, 0.01) <= 4.0


def test_applicants_rate_and_repeat_borrowers() -> None:
    scenario = parse_scenario('name = "d"\n[demand]\nbase_rate = 0.2\nrepeat_rate = 0.0\n')
    rng = np.random.default_rng(1)
    has_loan = np.arange(20_000) % 2 == 0
    who = applicants(rng, has_loan, scenario, 1.0)
    assert not has_loan[who].any()  # repeat_rate 0: nobody with a loan applies
    assert len(who) / 10_000 == pytest.approx(0.2, abs=0.016)  # 4 sd of a binomial share

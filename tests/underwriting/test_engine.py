"""The decision engine on the shipped pack, model and policy: one scenario per behaviour.

Each test starts from the approvable example and changes one thing, so a failure points at
the stage that broke. Invariants over a generated population close the file.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from example_app import application
from lendstack.servicing import ProductCatalog
from lendstack.underwriting.application import Application
from lendstack.underwriting.decision import Decision, LimitSource, Outcome, ReasonSource
from lendstack.underwriting.engine import BorrowerHistory, Engine
from lendstack.underwriting.policy import load_policy
from lendstack.underwriting.population import PopulationConfig, generate_population
from lendstack.underwriting.rules import RuleKind, RuleResult, Verdict, default_pack, load_pack
from lendstack.wiring import load_credit_model

FRESH = BorrowerHistory()


@pytest.fixture(scope="module")
def engine() -> Engine:
    loaded = load_credit_model(None)
    return Engine(default_pack(), loaded.model, loaded.features, load_policy(), ProductCatalog())


def decide(engine: Engine, history: BorrowerHistory = FRESH, **changes: Any) -> Decision:
    return engine.decide(application(**changes), history)


def codes(decision: Decision, source: ReasonSource | None = None) -> list[str]:
    return [r.code for r in decision.reasons if source is None or r.source is source]


def test_example_is_approved_with_a_full_disclosure(engine: Engine) -> None:
    d = decide(engine)
    assert d.outcome is Outcome.APPROVE
    assert d.offer is not None
    assert d.offer.amount == Decimal("20000.00")
    assert d.offer.schedule.total_principal == d.offer.amount
    assert len(d.offer.schedule.installments) == 12
    assert d.offer.apr.apr_irr <= Decimal("0.24")
    assert d.price is not None
    assert d.offer.schedule.terms.annual_rate == d.price.apr
    assert d.reasons == ()  # approvals carry no adverse reasons
    bindings = dict(d.bindings)
    assert bindings["apr_cap"].startswith("CN.PRICING")
    assert "amount_cap" in bindings


def test_forbidden_purpose_is_declined_by_its_rule(engine: Engine) -> None:
    d = decide(engine, **{"loan.purpose": "securities"})
    assert d.outcome is Outcome.DECLINE
    assert any("PURPOSE" in c for c in codes(d, ReasonSource.RULE))


def test_students_are_refused_by_microlenders_only(engine: Engine) -> None:
    student = {"applicant.is_student": True, "applicant.employment_type": "student"}
    micro = decide(engine, **student, lender_type="online_microlender")
    assert micro.outcome is Outcome.DECLINE
    assert any("STUDENT" in c for c in codes(micro, ReasonSource.RULE))
    bank = decide(engine, **student)
    assert not any("STUDENT" in c for c in codes(bank))


def test_refusing_automated_decisions_always_refers(engine: Engine) -> None:
    d = decide(engine, **{"consents.automated_decision": False})
    assert d.outcome is Outcome.REFER
    assert "P08" in codes(d)
    assert d.offer is not None  # the reviewer sees what would have been offered


def test_duplicate_within_the_window_is_declined(engine: Engine) -> None:
    d = engine.decide(application(), BorrowerHistory(duplicate_of="dcs_earlier"))
    assert d.outcome is Outcome.DECLINE
    assert codes(d)[0] == "P01"


def test_amount_beyond_affordability_gets_a_counter_offer(engine: Engine) -> None:
    d = decide(engine, **{"loan.amount": "150000.00"})
    assert d.outcome is Outcome.COUNTER_OFFER
    assert d.offer is not None
    assert d.limit is not None
    assert d.offer.amount == d.limit.amount < Decimal("150000.00")
    assert d.offer.amount % 100 == 0
    assert "P07" in codes(d)
    assert len(codes(d, ReasonSource.MODEL)) <= 4
    spare = Decimal("18000.00") - Decimal("1500.00")
    assert d.offer.monthly_burden <= spare * load_policy().limits.affordability_share


def test_existing_balance_with_us_counts_against_the_cap(engine: Engine) -> None:
    d = engine.decide(application(), BorrowerHistory(existing_balance=Decimal("195000.00")))
    assert d.outcome is Outcome.COUNTER_OFFER
    assert d.limit is not None
    assert d.offer is not None
    assert d.limit.binding is LimitSource.REGULATORY
    assert d.offer.amount == Decimal("5000")
    regulatory = [c for c in d.limit.candidates if c[0] is LimitSource.REGULATORY]
    assert regulatory[0][2] == dict(d.bindings)["amount_cap"]


def test_cap_already_used_up_is_declined(engine: Engine) -> None:
    d = engine.decide(application(), BorrowerHistory(existing_balance=Decimal("200000.00")))
    assert d.outcome is Outcome.DECLINE
    assert "P06" in codes(d)


def test_bullet_beyond_a_year_is_declined_by_the_term_rule(engine: Engine) -> None:
    d = decide(engine, **{"loan.repayment_method": "bullet", "loan.term_months": 24})
    assert d.outcome is Outcome.DECLINE
    reason = next(r for r in d.reasons if r.code == "P05")
    assert reason.rule_id is not None


def test_consumer_finance_companies_are_capped_by_the_stricter_guidance(engine: Engine) -> None:
    bank = decide(engine)
    cfc = decide(engine, lender_type="consumer_finance_company")
    assert dict(cfc.bindings)["apr_cap"] != dict(bank.bindings)["apr_cap"]


def _risky(**more: Any) -> dict[str, Any]:
    return {
        "bureau.worst_dpd_24m": 95,
        "bureau.inquiries_3m": 9,
        "bureau.inquiries_6m": 14,
        "bureau.inquiries_12m": 20,
        "platform.on_time_share": 0.6,
        "applicant.monthly_obligations": "9000.00",
        **more,
    }


def test_high_risk_is_declined_with_at_most_four_model_reasons(engine: Engine) -> None:
    d = decide(engine, **_risky())
    assert d.outcome is Outcome.DECLINE
    assert d.score is not None
    assert d.score.pd > 0.05
    model_reasons = codes(d, ReasonSource.MODEL)
    assert 1 <= len(model_reasons) <= 4
    assert {"P02", "P03"} & set(codes(d))


def test_a_price_above_the_cap_is_declined_never_clamped(engine: Engine) -> None:
    # PD ≈ 6.7% needs APR 21%: inside the 24% cap, above the tight pack's 20%.
    changes = {
        "bureau.inquiries_3m": 4,
        "bureau.inquiries_6m": 6,
        "bureau.inquiries_12m": 8,
        "platform.on_time_share": 0.85,
    }
    tight = load_pack("cn-2026-tight")
    strict = Engine(tight, engine.model, engine.features, engine.policy, engine.catalog)
    loose = decide(engine, **changes)
    d = strict.decide(application(**changes), FRESH)
    assert loose.outcome is Outcome.APPROVE
    assert loose.price is not None
    assert d.price is not None
    assert loose.price.apr == d.price.apr > Decimal("0.20")
    assert d.outcome is Outcome.DECLINE
    assert "cannot be priced within the legal cap" in d.reasons[0].text
    assert d.offer is None


def test_no_bureau_consent_is_declined_unscored(engine: Engine) -> None:
    d = decide(engine, **{"consents.bureau_query": False})
    assert d.outcome is Outcome.DECLINE
    assert d.score is None


Check = Callable[[Application, Decision], None]


def _invariants(app: Application, d: Decision) -> None:
    if d.outcome is Outcome.DECLINE:
        assert d.reasons
    if d.outcome is Outcome.APPROVE:
        assert d.offer is not None
        assert d.offer.amount == app.loan.amount
    if d.outcome is Outcome.COUNTER_OFFER:
        assert d.offer is not None
        assert d.offer.amount < app.loan.amount
    if d.offer is not None:
        assert d.offer.schedule.total_principal == d.offer.amount
        assert d.offer.apr.apr_irr <= Decimal("0.24")
        assert d.offer.amount <= Decimal(200000)
    assert len([r for r in d.reasons if r.source is ReasonSource.MODEL]) <= 4


def test_invariants_over_a_generated_population(engine: Engine) -> None:
    population = generate_population(PopulationConfig(seed=11, n=400))
    outcomes: set[Outcome] = set()
    for raw in population.applications():
        app = Application.model_validate(raw)
        d = engine.decide(app, FRESH)
        _invariants(app, d)
        outcomes.add(d.outcome)
    assert outcomes == set(Outcome)


class _ErroringRules:
    """A real rule set whose offer-level evaluation also reports one rule that errored."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def evaluate(self, facts: Any) -> tuple[RuleResult, ...]:
        broken = RuleResult(
            "T.BROKEN", RuleKind.DTI_MAX, Verdict.ERROR, None, None, "could not be checked"
        )
        return (*self._inner.evaluate(facts), broken)


class _PackWithABrokenRule:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def select(self, on: Any, lender_type: str) -> Any:
        return _ErroringRules(self._inner.select(on, lender_type))


def test_a_rule_that_errors_refers_and_never_approves(engine: Engine) -> None:
    broken = Engine(
        _PackWithABrokenRule(engine.pack),  # type: ignore[arg-type]
        engine.model,
        engine.features,
        engine.policy,
        engine.catalog,
    )
    d = broken.decide(application(), FRESH)
    assert d.outcome is Outcome.REFER
    reason = next(r for r in d.reasons if r.code == "P09")
    assert reason.rule_id == "T.BROKEN"
    assert any(r["verdict"] == "error" for r in d.rule_results)

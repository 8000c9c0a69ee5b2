"""Each rule kind at its boundary and just beyond it, and failing closed on broken facts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from lendstack.underwriting.rules import FUNDING_KINDS, RuleKind, Verdict

DAY = date(2026, 1, 15)
D = Decimal

# (kind, params, facts that sit exactly on the limit, facts just beyond it)
BOUNDARIES = [
    (
        "credit_line_max",
        {"max": 200000},
        {"existing_balance": D("50000.00"), "amount": D("150000.00")},
        {"existing_balance": D("50000.00"), "amount": D("150000.01")},
    ),
    (
        "income_share_max",
        {"share": "1/3"},
        {"monthly_income": D("3000.00"), "existing_balance": D("2000"), "amount": D("10000.00")},
        {"monthly_income": D("3000.00"), "existing_balance": D("2000"), "amount": D("10000.01")},
    ),
    (
        "income_share_max",
        {"share": "0.3333"},
        {"monthly_income": D("3000.00"), "existing_balance": D("0"), "amount": D("11998.80")},
        {"monthly_income": D("3000.00"), "existing_balance": D("0"), "amount": D("11998.81")},
    ),
    ("apr_max", {"max": "0.24"}, {"apr_irr": D("0.24")}, {"apr_irr": D("0.2400001")}),
    (
        "bullet_term_max",
        {"max": 12, "methods": ["bullet", "interest-first"]},
        {"repayment_method": "bullet", "term_months": 12},
        {"repayment_method": "bullet", "term_months": 13},
    ),
    (
        "bullet_term_max",
        {"max": 12, "methods": ["bullet", "interest-first"]},
        {"repayment_method": "interest-first", "term_months": 12},
        {"repayment_method": "interest-first", "term_months": 13},
    ),
    ("term_max", {"max": 60}, {"term_months": 60}, {"term_months": 61}),
    (
        "forbidden_purposes",
        {"purposes": ["securities", "loan_repayment"]},
        {"purpose": "travel"},
        {"purpose": "loan_repayment"},
    ),
    ("no_students", {}, {"is_student": False}, {"is_student": True}),
    (
        "required_consents",
        {"consents": ["bureau_query", "data_sharing"]},
        {"consents": frozenset({"bureau_query", "data_sharing"})},
        {"consents": frozenset({"bureau_query", "marketing"})},
    ),
    ("age_range", {"min": 18, "max": 60}, {"age": 18}, {"age": 17}),
    ("age_range", {"min": 18, "max": 60}, {"age": 60}, {"age": 61}),
    ("active_lenders_max", {"max": 5}, {"active_lenders": 5}, {"active_lenders": 6}),
    (
        "dti_max",
        {"max": "0.55"},
        {"monthly_obligations": D("3000.00"), "monthly_installment": D("2500.00")},
        {"monthly_obligations": D("3000.00"), "monthly_installment": D("2500.01")},
    ),
]


def _one(pack, rule, kind, params):
    return pack([rule(f"T.{kind.upper()}", kind=kind, params=params)]).select(DAY, "bank")


@pytest.mark.parametrize(("kind", "params", "at", "beyond"), BOUNDARIES)
def test_pass_at_the_limit_fail_just_beyond(pack, rule, facts, kind, params, at, beyond):
    rs = _one(pack, rule, kind, params)
    (ok,) = rs.evaluate(facts(**at))
    (bad,) = rs.evaluate(facts(**beyond))
    assert ok.verdict is Verdict.PASS, ok.message
    assert bad.verdict is Verdict.FAIL, bad.message
    assert ok.kind is bad.kind is RuleKind(kind)
    assert bad.message
    assert bad.rule_id == f"T.{kind.upper()}"


def test_kinds_are_all_covered_by_boundary_cases():
    """Co-lending kinds bind the funding plan, not facts (tests/underwriting/test_decision_funding.py)."""
    assert {case[0] for case in BOUNDARIES} == {k.value for k in RuleKind if k not in FUNDING_KINDS}


def test_messages_read_like_reason_codes(pack, rule, facts):
    (apr,) = _one(pack, rule, "apr_max", {"max": "0.24"}).evaluate(facts(apr_irr=D("0.2650")))
    assert apr.message == "APR 0.2650 > 0.24"
    assert (apr.observed, apr.limit) == ("0.2650", "0.24")
    consents = _one(pack, rule, "required_consents", {"consents": ["bureau_query", "data_sharing"]})
    (missing,) = consents.evaluate(facts(consents=frozenset({"bureau_query"})))
    assert missing.message == "missing consent: data_sharing"


def test_bullet_rule_ignores_amortising_methods(pack, rule, facts):
    rs = _one(pack, rule, "bullet_term_max", {"max": 12, "methods": ["bullet"]})
    (result,) = rs.evaluate(facts(repayment_method="equal-installment", term_months=36))
    assert result.verdict is Verdict.PASS


def test_dti_with_zero_income_is_an_error_not_a_pass(pack, rule, facts):
    rs = _one(pack, rule, "dti_max", {"max": "0.55"})
    (result,) = rs.evaluate(facts(monthly_income=D("0")))
    assert result.verdict is Verdict.ERROR
    assert "monthly income" in result.message
    assert "T.DTI_MAX" in result.message


@pytest.mark.parametrize(
    ("kind", "params", "broken"),
    [
        ("credit_line_max", {"max": 200000}, {"amount": None}),
        ("credit_line_max", {"max": 200000}, {"amount": D("-1")}),
        ("income_share_max", {"share": "1/3"}, {"monthly_income": 5000.0}),
        ("required_consents", {"consents": ["bureau_query"]}, {"consents": "bureau_query"}),
        ("no_students", {}, {"is_student": None}),
        ("age_range", {"min": 18, "max": 60}, {"age": "30"}),
        ("forbidden_purposes", {"purposes": ["securities"]}, {"purpose": None}),
        ("term_max", {"max": 60}, {"term_months": None}),
    ],
)
def test_broken_facts_give_error_never_pass(pack, rule, facts, kind, params, broken):
    (result,) = _one(pack, rule, kind, params).evaluate(facts(**broken))
    assert result.verdict is Verdict.ERROR, result.message
    assert "could not be checked" in result.message


def test_evaluate_with_no_facts_at_all_fails_closed_on_every_rule():
    from lendstack.underwriting.rules import default_pack

    for lender_type in ("bank", "consumer_finance_company", "online_microlender"):
        results = default_pack().select(DAY, lender_type).evaluate(None)  # type: ignore[arg-type]
        assert {r.verdict for r in results} <= {Verdict.ERROR, Verdict.DISABLED}
        assert any(r.verdict is Verdict.ERROR for r in results)


def test_unpriced_offer_is_an_error_in_evaluate(pack, rule, facts):
    rs = pack([rule("T.APR"), rule("T.DTI", kind="dti_max", params={"max": "0.55"})]).select(
        DAY, "bank"
    )
    results = rs.evaluate(facts(apr_irr=None, monthly_installment=None))
    assert [r.verdict for r in results] == [Verdict.ERROR, Verdict.ERROR]
    assert all("not priced" in r.message for r in results)


def test_screen_skips_amount_and_term_and_passes_unpriced_offers(pack, rule, facts):
    rs = pack(
        [
            rule("T.LINE", kind="credit_line_max", params={"max": 1000}),
            rule("T.TERM", kind="term_max", params={"max": 6}),
            rule("T.APR"),
            rule("T.DTI", kind="dti_max", params={"max": "0.55"}),
            rule("T.AGE", kind="age_range", params={"min": 18, "max": 60}),
            rule("T.PURPOSE", kind="forbidden_purposes", params={"purposes": ["securities"]}),
            rule("T.OFF", kind="no_students", params={}, enabled=False),
        ]
    ).select(DAY, "bank")
    unpriced = facts(apr_irr=None, monthly_installment=None, purpose="securities")
    screened = {r.rule_id: r for r in rs.screen(unpriced)}
    assert list(screened) == ["T.APR", "T.DTI", "T.AGE", "T.PURPOSE", "T.OFF"]
    assert screened["T.APR"].verdict is Verdict.PASS
    assert screened["T.APR"].message == "not priced yet"
    assert screened["T.DTI"].message == "not priced yet"
    assert screened["T.PURPOSE"].verdict is Verdict.FAIL
    assert screened["T.OFF"].verdict is Verdict.DISABLED
    priced = {r.rule_id: r for r in rs.screen(facts(apr_irr=D("0.30")))}
    assert priced["T.APR"].verdict is Verdict.FAIL


def test_headroom_and_installment_caps(pack, rule, facts):
    rs = pack(
        [
            rule("T.LINE", kind="credit_line_max", params={"max": 200000}),
            rule("T.DTI", kind="dti_max", params={"max": "0.55"}),
        ]
    ).select(DAY, "bank")
    over = rs.amount_headroom(facts(existing_balance=D("250000.00")))
    assert over is not None
    assert over.value == 0
    cap = rs.max_installment(facts(monthly_income=D("3333.33"), monthly_obligations=D("0")))
    assert cap is not None
    assert cap.value == D("1833.33")
    none_left = rs.max_installment(facts(monthly_obligations=D("9000")))
    assert none_left is not None
    assert none_left.value == 0

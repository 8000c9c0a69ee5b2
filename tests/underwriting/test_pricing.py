"""Risk-based pricing: built from its parts, on the grid, monotone in risk, never clamped."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.errors import ValidationError
from lendstack.servicing import RepaymentMethod
from lendstack.underwriting.policy import load_policy, parse_policy
from lendstack.underwriting.pricing import flat_fee_rate, price, term_default_probability

POLICY = load_policy().pricing
TERMS = st.sampled_from([3, 6, 12, 24, 36])
METHODS = st.sampled_from(list(RepaymentMethod))


def test_zero_risk_costs_the_other_parts_rounded_up() -> None:
    p = price(0.0, RepaymentMethod.EQUAL_INSTALLMENT, 12, POLICY)
    assert p.expected_loss == 0
    # 3.5% + 4% + 3% = 10.5%, already on the half-percent grid
    assert p.apr == Decimal("0.105")


def test_a_worked_example() -> None:
    # PD 4% over 12 months, LGD 85%: loss 3.4% of principal; an equal-installment loan keeps
    # (13/24 + 2%) = 56.1667% of it outstanding on average: EL = 0.034 / 0.561667 = 0.0605341,
    # rounded up to the millionth.
    p = price(0.04, RepaymentMethod.EQUAL_INSTALLMENT, 12, POLICY)
    assert p.expected_loss == Decimal("0.060535")
    assert p.apr == Decimal("0.170")  # 0.165531 rounded up to the grid


@given(pd=st.floats(0, 1), method=METHODS, term=TERMS)
def test_apr_is_on_the_grid_and_covers_its_parts(
    pd: float, method: RepaymentMethod, term: int
) -> None:
    p = price(pd, method, term, POLICY)
    parts = p.funding_cost + p.expected_loss + p.operating_cost + p.margin
    assert p.apr >= parts
    assert p.apr - parts < POLICY.grid
    assert (p.apr / POLICY.grid) == (p.apr / POLICY.grid).to_integral_value()


@given(a=st.floats(0, 1), b=st.floats(0, 1), method=METHODS, term=TERMS)
def test_riskier_never_cheaper(a: float, b: float, method: RepaymentMethod, term: int) -> None:
    lo, hi = sorted((a, b))
    assert price(lo, method, term, POLICY).apr <= price(hi, method, term, POLICY).apr


def test_term_default_probability_compounds() -> None:
    assert term_default_probability(0.1, 12) == Decimal("0.1")
    assert term_default_probability(0.1, 24) == Decimal("0.19")


def test_flat_fee_inverts_the_usual_rule_of_thumb() -> None:
    # 12 monthly parts: a 0.6% monthly flat fee is about 13.3% APR, so 13.3% maps back to ~0.6%.
    assert flat_fee_rate(Decimal("0.1329"), 12) == Decimal("0.0060")


def test_policy_errors_name_the_field() -> None:
    text = (resources.files("lendstack.underwriting") / "policies" / "default.toml").read_text()
    with pytest.raises(ValidationError) as info:
        parse_policy(text.replace('lgd = "0.85"', 'lgd = "-1"'), "test")
    assert info.value.field == "pricing.lgd"
    with pytest.raises(ValidationError) as info:
        parse_policy(text.replace('["0.02", "100000"]', '["0.02", "300000"]'), "test")
    assert info.value.field == "limits.pd_curve"
    with pytest.raises(ValidationError) as info:
        parse_policy(text.replace("equal-installment =", "balloon ="), "test")
    assert info.value.field.startswith("products")

"""IRR and the PBOC 〔2021〕 No. 3 APR disclosure, checked against numpy-financial."""

import math
from decimal import Decimal, localcontext

import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.core import rates
from lendstack.core.errors import ValidationError
from lendstack.core.rates import AprDisclosure, disclose, npv, periodic_irr

fen = st.integers(1, 10_000_000).map(lambda n: Decimal(n) / 100)


@st.composite
def loan_flows(draw: st.DrawFn) -> list[Decimal]:
    """A disbursement followed by n repayments totalling 0.9–2× the amount."""
    amount = draw(st.integers(10_000, 50_000_000))
    n = draw(st.integers(1, 36))
    weights = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n).filter(any))
    total = amount * draw(st.integers(90, 200)) // 100
    pays = [total * w // sum(weights) for w in weights]
    return [Decimal(amount) / 100, *(-Decimal(p) / 100 for p in pays)]


def test_known_annuity() -> None:
    flows = [Decimal(12000), *[Decimal("-1100.16")] * 12]
    apr = disclose(flows, Decimal(12000), 12)
    assert isinstance(apr, AprDisclosure)
    assert abs(apr.apr_irr - Decimal("0.18")) < Decimal("1e-6")
    assert apr.apr_effective == ((1 + apr.monthly_irr) ** 12 - 1).quantize(Decimal("1e-10"))
    assert apr.apr_irr == (apr.monthly_irr * 12).quantize(Decimal("1e-10"))
    # simple: (13201.92 - 12000) / 12000 / 1 year
    assert apr.apr_simple == Decimal("0.1001600000")


def test_zero_cost_has_zero_rate() -> None:
    assert periodic_irr([Decimal(300), Decimal(-100), Decimal(-100), Decimal(-100)]) == 0


def test_negative_rate_is_found() -> None:
    assert periodic_irr([Decimal(100), Decimal(-90)]) == Decimal("-0.1")


@pytest.mark.parametrize(
    "flows",
    [[Decimal(1), Decimal(2)], [Decimal(-1), Decimal(-2)], [Decimal(0), Decimal(0)], [Decimal(5)]],
)
def test_no_sign_change_is_a_validation_error(flows: list[Decimal]) -> None:
    with pytest.raises(ValidationError) as err:
        periodic_irr(flows)
    assert err.value.field == "flows"


def test_floats_are_refused() -> None:
    with pytest.raises(ValidationError):
        periodic_irr([100.0, -110.0])  # type: ignore[list-item]


def test_disclose_validates_amount_and_term() -> None:
    flows = [Decimal(100), Decimal(-110)]
    with pytest.raises(ValidationError):
        disclose(flows, Decimal(0), 1)
    with pytest.raises(ValidationError):
        disclose(flows, Decimal(100), 0)


@settings(max_examples=60, deadline=None)
@given(loan_flows())
def test_irr_matches_numpy_financial(flows: list[Decimal]) -> None:
    expected = npf.irr([float(f) for f in flows])
    got = periodic_irr(flows)
    assert not math.isnan(expected)
    assert abs(float(got) - expected) < 1e-9


@settings(max_examples=100, deadline=None)
@given(loan_flows())
def test_npv_at_the_irr_is_zero(flows: list[Decimal]) -> None:
    rate = periodic_irr(flows)
    assert abs(npv(flows, rate)) < Decimal("1e-15") * flows[0]


@given(loan_flows())
def test_disclosure_relations(flows: list[Decimal]) -> None:
    apr = disclose(flows, flows[0], len(flows) - 1)
    assert apr.apr_irr == (apr.monthly_irr * 12).quantize(Decimal("1e-10"))
    if apr.monthly_irr > 0:
        assert apr.apr_effective >= apr.apr_irr
    cost = -sum(flows)
    assert apr.apr_simple == (cost * 12 / (flows[0] * (len(flows) - 1))).quantize(Decimal("1e-10"))


# The solver as it was before the bracket kept its NPVs (each NPV was evaluated with its
# slope, and the one at the bracket's lower end twice): the same rate, digit for digit.


def _old_bracket(values: tuple[Decimal, ...]) -> tuple[Decimal, Decimal]:
    for points in rates._BRACKET_GRIDS:
        prev = points[0]
        prev_sign = rates._sign(rates._npv_and_slope(values, prev)[0])
        if prev_sign == 0:
            return prev, prev
        for point in points[1:]:
            sign = rates._sign(rates._npv_and_slope(values, point)[0])
            if sign != prev_sign:
                return (prev, point) if prev < point else (point, prev)
            prev = point
    raise ValidationError("no root", field="flows")


def _old_irr(flows: list[Decimal]) -> Decimal:
    values = tuple(flows)
    with localcontext() as ctx:
        ctx.prec = rates._PRECISION
        lo, hi = _old_bracket(values)
        f_lo = rates._npv_and_slope(values, lo)[0]
        rate = lo if lo == hi else rates._solve(values, lo, hi, f_lo)
    return +rate


subsidised = st.builds(
    lambda amount, back: [Decimal(amount) / 100, -Decimal(back) / 100],
    st.integers(10_000, 1_000_000),
    st.integers(1_000, 9_999),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(loan_flows(), subsidised))
def test_the_solver_keeping_the_brackets_npvs_gives_the_same_digits(flows: list[Decimal]) -> None:
    assert str(periodic_irr(flows)) == str(_old_irr(flows))
    with localcontext() as ctx:
        ctx.prec = rates._PRECISION
        for rate in (Decimal(0), Decimal("0.013"), Decimal("-0.5")):
            assert rates._npv(flows, rate) == rates._npv_and_slope(flows, rate)[0]

"""Schedules for every repayment method: exact principal, no negatives, level installments, APR."""

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy_financial as npf
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lendstack.core.dates import add_months
from lendstack.core.daycount import DayCount, simple_interest
from lendstack.core.errors import InvariantViolation, ValidationError
from lendstack.core.money import Rounding, quantize_fen
from lendstack.core.rates import npv
from lendstack.servicing.domain import (
    Installment,
    LoanTerms,
    PrepaymentMode,
    RepaymentMethod,
    Schedule,
    annuity_payment,
    generate,
    level_installment,
    reamortize,
)

EI = RepaymentMethod.EQUAL_INSTALLMENT
FEN = Decimal("0.01")


@st.composite
def loan_terms(
    draw: st.DrawFn,
    methods: st.SearchStrategy[RepaymentMethod] = st.sampled_from(RepaymentMethod),
    max_term: int = 360,
    max_rate_bp: int = 3600,
) -> LoanTerms:
    method = draw(methods)
    free = method is RepaymentMethod.INTEREST_FREE_FEE
    return LoanTerms(
        principal=Decimal(draw(st.integers(100, 50_000_000))) / 100,
        annual_rate=Decimal(0) if free else Decimal(draw(st.integers(0, max_rate_bp))) / 10_000,
        term_months=draw(st.integers(1, max_term)),
        method=method,
        start_date=draw(st.dates(date(2000, 1, 1), date(2060, 12, 31))),
        day_count=draw(st.sampled_from(DayCount)),
        rounding=draw(st.sampled_from(Rounding)),
        fee_rate=Decimal(draw(st.integers(0, 100))) / 10_000,
        upfront_fee_rate=Decimal(draw(st.integers(0, 200))) / 10_000,
    )


def terms(**overrides: Any) -> LoanTerms:
    base: dict[str, Any] = {
        "principal": Decimal(12000),
        "annual_rate": Decimal("0.18"),
        "term_months": 12,
        "method": EI,
        "start_date": date(2024, 1, 15),
    }
    return LoanTerms(**(base | overrides))


# --- worked examples ---------------------------------------------------------------------


def test_known_equal_installment_thirty_360() -> None:
    """12,000 CNY, 12 months, 18%, 30/360: 1,100.16 a month (the annuity formula)."""
    s = generate(terms(day_count=DayCount.THIRTY_360))
    expected = Decimal(str(round(-npf.pmt(0.18 / 12, 12, 12000), 2)))
    assert expected == Decimal("1100.16")
    assert all(i.total == expected for i in s.installments[:-1])
    assert s.installments[0].interest == Decimal("180.00")  # 12,000 × 1.5%: a full 30/360 month
    assert s.installments[-1].total - expected < Decimal("0.10")
    assert s.total_principal == Decimal(12000)
    assert abs(s.apr().apr_irr - Decimal("0.18")) < Decimal("0.0001")


def test_month_end_due_dates() -> None:
    s = generate(terms(start_date=date(2024, 1, 31), term_months=3))
    assert [i.due_date for i in s.installments] == [
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
    ]
    assert [i.start_date for i in s.installments] == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
    ]
    assert [i.days for i in s.installments] == [29, 31, 30]


def test_interest_uses_the_day_count_per_period() -> None:
    s = generate(terms(start_date=date(2024, 1, 31), day_count=DayCount.ACT_360))
    first = s.installments[0]
    assert first.interest == quantize_fen(Decimal(12000) * Decimal("0.18") * 29 / 360)


def test_equal_principal_example() -> None:
    s = generate(
        terms(method=RepaymentMethod.EQUAL_PRINCIPAL, principal=Decimal(1000), term_months=3)
    )
    assert [i.principal for i in s.installments] == [
        Decimal("333.33"),
        Decimal("333.33"),
        Decimal("333.34"),
    ]
    interests = [i.interest for i in s.installments]
    assert interests == sorted(interests, reverse=True)


def test_huabei_example() -> None:
    """6,000 over 12 periods at 0.73%: 500 + 43.80 each, APR well above the 8.76% "simple"."""
    s = generate(
        terms(
            method=RepaymentMethod.INTEREST_FREE_FEE,
            annual_rate=Decimal(0),
            principal=Decimal(6000),
            fee_rate=Decimal("0.0073"),
        )
    )
    assert {i.total for i in s.installments} == {Decimal("543.80")}
    assert s.total_interest == 0
    apr = s.apr()
    assert apr.apr_simple == Decimal("0.0876000000")
    assert Decimal("0.15") < apr.apr_irr < Decimal("0.17")


def test_interest_first_and_bullet_examples() -> None:
    first = generate(terms(method=RepaymentMethod.INTEREST_FIRST, term_months=3))
    assert [i.principal for i in first.installments] == [0, 0, Decimal(12000)]
    bullet = generate(
        terms(method=RepaymentMethod.BULLET, term_months=6, fee_rate=Decimal("0.001"))
    )
    (only,) = bullet.installments
    assert only.due_date == date(2024, 7, 15)
    assert only.interest == quantize_fen(Decimal(12000) * Decimal("0.18") * 182 / 365)
    assert only.fee == Decimal("72.00")  # 0.1% a month for 6 months
    assert bullet.cash_flows()[1:6] == (0, 0, 0, 0, 0)
    assert len(bullet.cash_flows()) == 7


def test_upfront_fee_reduces_the_disbursement_and_raises_the_apr() -> None:
    plain = generate(terms())
    charged = generate(terms(upfront_fee_rate=Decimal("0.02")))
    assert charged.upfront_fee == Decimal("240.00")
    assert charged.cash_flows()[0] == Decimal("11760.00")
    assert charged.total_cost == plain.total_cost + Decimal(240)
    assert charged.apr().apr_irr > plain.apr().apr_irr


def test_zero_rate_equal_installment_is_principal_over_n() -> None:
    s = generate(terms(annual_rate=Decimal(0), principal=Decimal(100), term_months=3))
    assert [i.total for i in s.installments] == [
        Decimal("33.33"),
        Decimal("33.33"),
        Decimal("33.34"),
    ]
    assert s.apr().apr_irr == 0


def test_rounding_mode_is_the_products() -> None:
    up = generate(terms(rounding=Rounding.UP, principal=Decimal(1000), term_months=7))
    down = generate(terms(rounding=Rounding.DOWN, principal=Decimal(1000), term_months=7))
    assert up.installments[0].total > down.installments[0].total


def test_annuity_formula() -> None:
    a = annuity_payment(Decimal(12000), Decimal("0.015"), 12)
    assert abs(float(a) - -npf.pmt(0.015, 12, 12000)) < 1e-9


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"principal": Decimal(0)}, "principal"),
        ({"principal": Decimal(-5)}, "principal"),
        ({"principal": Decimal("100.001")}, "principal"),
        ({"principal": 100.5}, "principal"),
        ({"annual_rate": Decimal(1)}, "rate"),
        ({"annual_rate": Decimal("-0.01")}, "rate"),
        ({"annual_rate": 0.18}, "rate"),
        ({"term_months": 0}, "term"),
        ({"term_months": 361}, "term"),
        ({"term_months": True}, "term"),
        ({"fee_rate": Decimal("1.5")}, "fee_rate"),
        ({"upfront_fee_rate": Decimal(-1)}, "upfront_fee_rate"),
        ({"method": "weekly"}, "method"),
        ({"day_count": "ACT/ACT"}, "day_count"),
        ({"method": RepaymentMethod.INTEREST_FREE_FEE}, "rate"),
        ({"anchor_date": date(2024, 2, 1)}, "anchor_date"),
        ({"first_number": 0}, "first_number"),
        ({"start_date": "2024-01-15"}, "start_date"),
        ({"start_date": datetime(2024, 1, 15, 12)}, "start_date"),
        ({"anchor_date": "2024-01-01"}, "anchor_date"),
        (
            {"method": RepaymentMethod.BULLET, "installment_amount": Decimal(100)},
            "installment_amount",
        ),
        ({"installment_amount": Decimal("0.001")}, "installment_amount"),
    ],
)
def test_bad_terms_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        terms(**overrides)
    assert err.value.field == field


def test_strings_become_enums_and_ints_decimals() -> None:
    t = terms(method="equal-principal", day_count="30/360", rounding="half-even", principal=500)
    assert t.method is RepaymentMethod.EQUAL_PRINCIPAL
    assert t.day_count is DayCount.THIRTY_360
    assert t.rounding is Rounding.HALF_EVEN
    assert t.principal == Decimal("500.00")


def test_installment_that_never_amortises_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        generate(terms(installment_amount=Decimal(100)))
    assert err.value.field == "installment_amount"


def test_schedule_refuses_a_broken_principal_sum() -> None:
    t = terms(term_months=1)
    wrong = Installment(1, t.start_date, date(2024, 2, 15), Decimal(11999), Decimal(0), Decimal(0))
    with pytest.raises(InvariantViolation):
        Schedule(t, (wrong,))
    with pytest.raises(InvariantViolation):
        Schedule(t, ())


# --- properties --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(loan_terms())
def test_principal_sums_exactly_and_nothing_is_negative(t: LoanTerms) -> None:
    s = generate(t)
    assert s.total_principal == t.principal
    for i in s.installments:
        assert min(i.principal, i.interest, i.fee) >= 0
        for amount in (i.principal, i.interest, i.fee):
            assert amount == amount.quantize(FEN)
    assert [i.number for i in s.installments] == list(range(1, len(s.installments) + 1))
    assert s.installments[-1].principal > 0  # never a trailing empty installment
    assert s.total_cost == s.total_interest + s.total_fees + s.upfront_fee


@settings(max_examples=200, deadline=None)
@given(loan_terms())
def test_due_dates_follow_the_anchor(t: LoanTerms) -> None:
    s = generate(t)
    n = t.term_months
    if t.method is RepaymentMethod.BULLET:
        assert [i.due_date for i in s.installments] == [add_months(t.start_date, n)]
    else:
        assert [i.due_date for i in s.installments] == [
            add_months(t.start_date, k) for k in range(1, n + 1)
        ]
    assert s.term_months == n
    assert len(s.cash_flows()) == n + 1


@settings(max_examples=200, deadline=None)
@given(loan_terms(st.just(EI), max_term=60))
def test_equal_installments_are_level_except_the_last(t: LoanTerms) -> None:
    totals = [i.total for i in generate(t).installments[:-1]]
    if totals:
        assert max(totals) - min(totals) <= FEN


@settings(max_examples=200, deadline=None)
@given(
    loan_terms(
        st.sampled_from([RepaymentMethod.EQUAL_PRINCIPAL, RepaymentMethod.INTEREST_FREE_FEE])
    )
)
def test_equal_principal_portions_are_level_except_the_last(t: LoanTerms) -> None:
    s = generate(t)
    head = {i.principal for i in s.installments[:-1]}
    level = quantize_fen(t.principal / t.term_months, t.rounding)
    fallback = quantize_fen(t.principal / t.term_months, Rounding.DOWN)
    assert head <= {level} or head == {fallback}
    assert s.installments[-1].principal > 0
    assert len({i.fee for i in s.installments}) == 1


@settings(max_examples=200, deadline=None)
@given(loan_terms())
def test_interest_is_balance_times_rate_times_year_fraction(t: LoanTerms) -> None:
    s = generate(t)
    balance = t.principal
    for i in s.installments:
        raw = simple_interest(balance, t.annual_rate, t.day_count, i.start_date, i.due_date)
        assert i.interest == quantize_fen(raw, t.rounding)
        balance -= i.principal


@settings(max_examples=150, deadline=None)
@given(loan_terms(max_term=60))
def test_cash_flows_reproduce_the_apr(t: LoanTerms) -> None:
    s = generate(t)
    flows = s.cash_flows()
    assert flows[0] == t.principal - s.upfront_fee
    assert -sum(flows[1:]) == t.principal + s.total_interest + s.total_fees
    apr = s.apr()
    assert abs(npv(flows, apr.monthly_irr)) < Decimal("1e-9") * t.principal
    assert abs(apr.apr_irr - apr.monthly_irr * 12) <= Decimal("1e-10")


@settings(max_examples=40, deadline=None)
@given(loan_terms(max_term=48))
def test_apr_matches_numpy_financial(t: LoanTerms) -> None:
    s = generate(t)
    flows = s.cash_flows()
    assume(sum(flows) < 0)  # a loan with a cost has a unique positive monthly IRR
    expected = npf.irr([float(f) for f in flows])
    assert abs(float(s.apr().monthly_irr) - expected) < 1e-9
    assert abs(float(s.apr().apr_irr) - 12 * expected) < 1e-9


def test_apr_on_a_long_schedule_matches_numpy_financial() -> None:
    s = generate(terms(term_months=360, principal=Decimal(1_000_000), annual_rate=Decimal("0.049")))
    expected = npf.irr([float(f) for f in s.cash_flows()])
    assert abs(float(s.apr().monthly_irr) - expected) < 1e-9


def test_long_actual_day_annuity_never_ends_early() -> None:
    """30 years at 18% ACT/365F: 31-day months cost more than the annuity assumes."""
    s = generate(terms(term_months=360, start_date=date(2024, 1, 31)))
    assert len(s.installments) == 360
    assert s.installments[-1].principal > 0
    assert s.total_principal == Decimal(12000)
    level = annuity_payment(Decimal(12000), Decimal("0.015"), 360)
    assert all(i.total <= level + Decimal(4) for i in s.installments)


def test_generate_is_pure() -> None:
    t = terms(start_date=date(2024, 1, 31), fee_rate=Decimal("0.001"))
    assert generate(t) == generate(replace(t))


# --- re-amortisation ---------------------------------------------------------------------

LEVEL = [
    RepaymentMethod.EQUAL_INSTALLMENT,
    RepaymentMethod.EQUAL_PRINCIPAL,
    RepaymentMethod.INTEREST_FREE_FEE,
]


def test_lower_installment_keeps_the_maturity_and_dates() -> None:
    s = generate(terms(start_date=date(2024, 1, 31), term_months=12))
    tail = reamortize(s, Decimal(5000), date(2024, 4, 10), PrepaymentMode.LOWER_INSTALLMENT)
    assert tail.installments[0].number == 3
    assert tail.installments[0].start_date == date(2024, 4, 10)
    assert [i.due_date for i in tail.installments] == [i.due_date for i in s.installments[2:]]
    assert tail.total_principal == Decimal(5000)
    assert tail.installments[1].total < s.installments[3].total


def test_shorten_term_keeps_the_installment() -> None:
    s = generate(terms(start_date=date(2024, 1, 31), term_months=12))
    tail = reamortize(s, Decimal(5000), date(2024, 4, 10), "shorten-term")  # type: ignore[arg-type]
    regular = s.installments[0].total
    assert all(i.total == regular for i in tail.installments[:-1])
    assert tail.installments[-1].total <= regular
    assert tail.maturity_date < s.maturity_date
    assert tail.terms.installment_amount == level_installment(s)


@pytest.mark.parametrize("method", [RepaymentMethod.INTEREST_FIRST, RepaymentMethod.BULLET])
def test_shorten_term_needs_a_level_method(method: RepaymentMethod) -> None:
    s = generate(terms(method=method))
    with pytest.raises(ValidationError) as err:
        reamortize(s, Decimal(5000), date(2024, 4, 10), PrepaymentMode.SHORTEN_TERM)
    assert err.value.field == "mode"
    tail = reamortize(s, Decimal(5000), date(2024, 4, 10), PrepaymentMode.LOWER_INSTALLMENT)
    assert tail.maturity_date == s.maturity_date
    assert tail.installments[-1].principal == Decimal(5000)


@pytest.mark.parametrize(
    ("restart", "field"),
    [(date(2024, 1, 1), "restart"), (date(2025, 1, 15), "restart"), (date(2026, 1, 1), "restart")],
)
def test_restart_must_fall_inside_the_loan(restart: date, field: str) -> None:
    s = generate(terms())
    with pytest.raises(ValidationError) as err:
        reamortize(s, Decimal(100), restart, PrepaymentMode.LOWER_INSTALLMENT)
    assert err.value.field == field


def test_reamortize_refuses_a_zero_balance() -> None:
    s = generate(terms())
    with pytest.raises(ValidationError) as err:
        reamortize(s, Decimal(0), date(2024, 3, 1), PrepaymentMode.LOWER_INSTALLMENT)
    assert err.value.field == "principal"


def _tail_case(draw: st.DrawFn, methods: list[RepaymentMethod]) -> tuple[Schedule, Decimal, date]:
    t = draw(loan_terms(st.sampled_from(methods), max_term=60, max_rate_bp=2400))
    s = generate(t)
    days = (s.maturity_date - t.start_date).days
    restart = date.fromordinal(t.start_date.toordinal() + draw(st.integers(0, days - 1)))
    paid = sum((i.principal for i in s.installments if i.due_date <= restart), Decimal(0))
    outstanding = t.principal - paid
    assume(outstanding > FEN)
    remaining = Decimal(draw(st.integers(1, int(outstanding * 100) - 1))) / 100
    return s, remaining, restart


tail_cases: Callable[..., st.SearchStrategy[tuple[Schedule, Decimal, date]]] = st.composite(
    _tail_case
)


@settings(max_examples=150, deadline=None)
@given(tail_cases(list(RepaymentMethod)), st.sampled_from(PrepaymentMode))
def test_reamortized_tail_invariants(
    case: tuple[Schedule, Decimal, date], mode: PrepaymentMode
) -> None:
    s, remaining, restart = case
    if mode is PrepaymentMode.SHORTEN_TERM and s.terms.method not in LEVEL:
        return
    tail = reamortize(s, remaining, restart, mode)
    assert tail.total_principal == remaining
    assert all(min(i.principal, i.interest, i.fee) >= 0 for i in tail.installments)
    assert tail.installments[0].start_date == restart
    assert tail.maturity_date <= s.maturity_date
    original_dates = {i.due_date for i in s.installments}
    assert {i.due_date for i in tail.installments} <= original_dates
    first_open = next(i for i in s.installments if i.due_date > restart)
    assert tail.installments[0].number == first_open.number
    if mode is PrepaymentMode.LOWER_INSTALLMENT:
        assert tail.maturity_date == s.maturity_date
    assert tail.upfront_fee == 0


@settings(max_examples=150, deadline=None)
@given(
    loan_terms(st.sampled_from([*LEVEL, RepaymentMethod.INTEREST_FIRST]), max_term=60),
    st.data(),
)
def test_restarting_on_a_due_date_with_the_scheduled_balance_changes_nothing(
    t: LoanTerms, data: st.DataObject
) -> None:
    """Re-amortising without any prepayment must reproduce the original tail exactly."""
    assume(t.term_months > 1)
    s = generate(replace(t, fee_rate=Decimal(0)))
    k = data.draw(st.integers(1, t.term_months - 1))
    balance = t.principal - sum((i.principal for i in s.installments[:k]), Decimal(0))
    assume(balance > 0)
    restart = s.installments[k - 1].due_date
    mode = PrepaymentMode.SHORTEN_TERM if t.method in LEVEL else PrepaymentMode.LOWER_INSTALLMENT
    tail = reamortize(s, balance, restart, mode)
    assert tail.installments == s.installments[k:]


def test_a_remembered_schedule_carries_the_callers_own_terms() -> None:
    """`generate` is memoised; terms equal as numbers but written differently (0.18 and
    0.180) hash alike, yet each schedule must carry the terms it was asked for."""
    short = LoanTerms(Decimal("10000"), Decimal("0.18"), 12, EI, date(2026, 1, 15))
    long = replace(short, annual_rate=Decimal("0.180"))
    assert short == long
    assert str(generate(short).terms.annual_rate) == "0.18"
    assert str(generate(long).terms.annual_rate) == "0.180"
    assert generate(short).installments == generate(long).installments
    assert generate(short) is generate(short)  # remembered, not rebuilt


def _interest_by_dates(schedule: Schedule) -> list[Decimal]:
    """Each installment's interest as the per-period path computed it: simple interest on
    the opening balance over the period's own dates."""
    t, balance, out = schedule.terms, schedule.terms.principal, []
    for i in schedule.installments:
        owed = simple_interest(balance, t.annual_rate, t.day_count, i.start_date, i.due_date)
        out.append(quantize_fen(owed, t.rounding))
        balance -= i.principal
    return out


@settings(max_examples=300, deadline=None)
@given(loan_terms(max_term=120), st.data())
def test_interest_from_the_remembered_day_grid_is_interest_by_the_periods_dates(
    t: LoanTerms, data: st.DataObject
) -> None:
    """Periods' days are counted once per grid; every installment's interest is still the
    simple interest of its own dates, on fresh schedules and re-amortised tails alike."""
    s = generate(t)
    assert [i.interest for i in s.installments] == _interest_by_dates(s)
    if s.terms.method is RepaymentMethod.BULLET or len(s.installments) < 2:
        return
    restart = s.installments[data.draw(st.integers(0, len(s.installments) - 2))].due_date
    paid = sum((i.principal for i in s.installments if i.due_date <= restart), Decimal(0))
    assume(t.principal - paid > FEN)
    tail = reamortize(s, t.principal - paid - FEN, restart, PrepaymentMode.LOWER_INSTALLMENT)
    assert [i.interest for i in tail.installments] == _interest_by_dates(tail)

"""The pure restructuring core: exact money, a balanced entry, the new schedule and the hold.

Expectations are computed here from the inputs (the balances a loan is given, and the linear
accrual rule of docs/servicing.md written out with ROUND_HALF_UP), never read back from the
code under test.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.core.errors import Conflict, ValidationError
from lendstack.servicing.domain.booking import contract_for, open_loan, with_id
from lendstack.servicing.domain.delinquency import RiskClass
from lendstack.servicing.domain.ledger import Account, Side
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import Balances, LoanState
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.domain.restructure import (
    ObservationRule,
    RestructureOption,
    RestructureTerms,
    load_rule,
    restructure,
)
from lendstack.servicing.domain.schedule import generate

CATALOG = ProductCatalog()
START = date(2026, 1, 31)
RULE = ObservationRule()
RECEIVABLES = {
    Account.PRINCIPAL_RECEIVABLE,
    Account.INTEREST_RECEIVABLE,
    Account.FEE_RECEIVABLE,
    Account.PENALTY_RECEIVABLE,
}
MODES = {"half-up": ROUND_HALF_UP, "half-even": ROUND_HALF_EVEN, "down": ROUND_DOWN, "up": ROUND_UP}
INCOME = {Account.INTEREST_INCOME, Account.FEE_INCOME, Account.PENALTY_INCOME}


def fen(cents: int) -> Decimal:
    return Decimal(cents) / 100


def a_loan(
    product_id: str, principal: Decimal, rate: Decimal, term: int, **extra: object
) -> LoanState:
    product = CATALOG.get(product_id)
    schedule = generate(product.terms(principal, term, rate, START))
    loan = with_id(open_loan(contract_for(product, schedule), schedule), 7)
    return replace(loan, **extra)  # type: ignore[arg-type]


def net(entry_postings: object, accounts: set[Account]) -> Decimal:
    total = Decimal(0)
    for p in entry_postings:  # type: ignore[attr-defined]
        if p.account in accounts:
            total += p.amount if p.side is Side.DEBIT else -p.amount
    return total


@settings(max_examples=150, deadline=None)
@given(
    product_id=st.sampled_from(
        ["cash-loan-installment", "consumer-loan-equal-principal", "business-loan-interest-first"]
    ),
    principal=st.integers(min_value=500_000, max_value=20_000_000),
    interest=st.integers(min_value=0, max_value=300_000),
    fee=st.integers(min_value=0, max_value=50_000),
    penalty=st.integers(min_value=0, max_value=80_000),
    elapsed=st.integers(min_value=0, max_value=27),
    option=st.sampled_from(list(RestructureOption)),
    non_accrual=st.booleans(),
    term_index=st.integers(min_value=0, max_value=10),
    dpd=st.integers(min_value=0, max_value=89),
)
def test_the_entry_balances_and_the_new_schedule_sums_to_the_new_principal(
    product_id: str,
    principal: int,
    interest: int,
    fee: int,
    penalty: int,
    elapsed: int,
    option: RestructureOption,
    non_accrual: bool,
    term_index: int,
    dpd: int,
) -> None:
    product = CATALOG.get(product_id)
    loan = a_loan(product_id, fen(principal), product.rate_max, product.terms_allowed[0])
    balances = Balances(
        principal=fen(principal), interest=fen(interest), fee=fen(fee), penalty=fen(penalty)
    )
    klass = RiskClass.SPECIAL_MENTION if dpd else RiskClass.NORMAL
    loan = replace(loan, balances=balances, dpd=dpd, risk_class=klass, non_accrual=non_accrual)
    on = START + timedelta(days=elapsed)
    first = loan.installments[0]
    # interest earned in the open period and not yet accrued (nothing accrued: period.accrued=0)
    mode = MODES[product.rounding.value]
    earned = (first.interest * elapsed / first.days).quantize(Decimal("0.01"), mode)
    term = product.terms_allowed[term_index % len(product.terms_allowed)]
    terms = RestructureTerms(on, term, None, option)
    if non_accrual and option is not RestructureOption.PRINCIPAL_ONLY:
        with pytest.raises(Conflict):
            restructure(loan, product, terms, RULE, "r")
        return
    done = restructure(loan, product, terms, RULE, "r")

    waived = {
        RestructureOption.CAPITALISE: Decimal(0),
        RestructureOption.WAIVE_PENALTY: fen(penalty),
        RestructureOption.PRINCIPAL_ONLY: fen(interest) + earned + fen(fee) + fen(penalty),
    }[option]
    expected = fen(principal) + fen(interest) + earned + fen(fee) + fen(penalty) - waived
    assert done.new_principal == expected
    assert sum(i.principal for i in done.schedule.installments) == expected
    assert sum(i.principal for i in done.loan.installments) == expected
    assert done.loan.balances == Balances(principal=expected)
    postings = () if done.entry is None else done.entry.postings
    assert (done.entry is None) == (expected == fen(principal) and waived == 0)
    debits = sum(p.amount for p in postings if p.side is Side.DEBIT)
    credits = sum(p.amount for p in postings if p.side is Side.CREDIT)
    assert debits == credits
    # receivables grow by the accrual brought to date and shrink by the waived penalty only
    assert net(postings, RECEIVABLES) == earned - waived
    # P&L moves by the same amount on an accruing loan; on a non-accrual one only suspense
    suspense = -net(postings, {Account.INTEREST_SUSPENSE})
    assert -net(postings, INCOME) == (0 if non_accrual else earned - waived)
    assert suspense == (earned - waived if non_accrual else 0)
    assert net(postings, {Account.PRINCIPAL_RECEIVABLE}) == expected - fen(principal)
    assert done.waived_interest + done.waived_fee + done.waived_penalty == waived
    assert not done.loan.non_accrual
    assert done.loan.dpd == 0
    assert done.loan.risk_class is RiskClass.SPECIAL_MENTION
    assert done.loan.schedule_version == loan.schedule_version + 1
    assert done.schedule.installments[0].start_date == on
    assert len(done.schedule.installments) == (1 if product.method == "bullet" else term)


def test_a_new_rate_reprices_and_the_penalty_rate_follows_the_product_rule() -> None:
    product = CATALOG.get("cash-loan-installment")
    loan = a_loan("cash-loan-installment", Decimal("12000.00"), Decimal("0.18"), 12)
    terms = RestructureTerms(START, 24, Decimal("0.10"), RestructureOption.CAPITALISE)
    done = restructure(loan, product, terms, RULE, "r")
    assert done.loan.contract.annual_rate == Decimal("0.10")
    assert done.loan.contract.penalty_rate == Decimal("0.10") * product.penalty_multiplier
    # the first full period's interest at the new rate, computed by hand (ACT/365F, 28 days)
    first = done.schedule.installments[0]
    assert first.due_date == date(2026, 2, 28)
    assert first.interest == (Decimal("12000.00") * Decimal("0.10") * 28 / 365).quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )


@pytest.mark.parametrize(
    ("before", "floor"),
    [
        (RiskClass.NORMAL, RiskClass.SPECIAL_MENTION),
        (RiskClass.SPECIAL_MENTION, RiskClass.SPECIAL_MENTION),
        (RiskClass.SUBSTANDARD, RiskClass.SUBSTANDARD),
        (RiskClass.DOUBTFUL, RiskClass.DOUBTFUL),
    ],
)
def test_the_class_is_at_least_special_mention_or_the_worse_class_at_restructuring(
    before: RiskClass, floor: RiskClass
) -> None:
    assert RULE.floor_for(before) is floor


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"term": 7}, "term"),
        ({"rate": Decimal("0.30")}, "rate"),
        ({"rate": Decimal("0.01")}, "rate"),
    ],
)
def test_terms_outside_the_product_are_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    product = CATALOG.get("cash-loan-installment")
    loan = a_loan("cash-loan-installment", Decimal("5000.00"), Decimal("0.18"), 12)
    term = int(change.get("term", 12))  # type: ignore[call-overload]
    rate = change.get("rate")
    terms = RestructureTerms(START, term, rate, RestructureOption.CAPITALISE)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        restructure(loan, product, terms, RULE, "r")
    assert info.value.field == field


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"status": LoanStatus.PAID_OFF}, "loan"),
        ({"status": LoanStatus.CHARGED_OFF}, "loan"),
        ({"non_accrual": True}, "option"),  # capitalising suspended income
    ],
)
def test_closed_loans_and_capitalising_suspended_income_are_refused(
    extra: dict[str, object], field: str
) -> None:
    product = CATALOG.get("cash-loan-installment")
    loan = a_loan("cash-loan-installment", Decimal("5000.00"), Decimal("0.18"), 12, **extra)
    terms = RestructureTerms(START, 12, None, RestructureOption.CAPITALISE)
    with pytest.raises(Conflict) as info:
        restructure(loan, product, terms, RULE, "r")
    assert info.value.field == field


def test_the_rule_file_holds_the_regulatory_minimum_and_nothing_below_is_accepted() -> None:
    rule = load_rule()
    assert (rule.months, rule.on_time_installments, rule.floor) == (
        12,
        2,
        RiskClass.SPECIAL_MENTION,
    )
    assert rule.until(date(2024, 2, 29)) == date(2025, 2, 28)
    with pytest.raises(ValidationError):
        ObservationRule(months=11)
    with pytest.raises(ValidationError):
        ObservationRule(on_time_installments=1)
    with pytest.raises(ValidationError):
        ObservationRule(floor=RiskClass.NORMAL)

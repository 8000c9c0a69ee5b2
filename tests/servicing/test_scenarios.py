"""Scenario tests per repayment method, through the real services, COB and ledger.

They run on SQLite and, with LENDSTACK_TEST_DATABASE_URL set, on PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from lendstack.core.money import ZERO
from lendstack.servicing.domain.ledger import Account
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.schedule import PrepaymentMode

START = date(2026, 1, 31)  # month-end start exercises the end-of-month rule

METHODS = [
    ("cash-loan-installment", "12000", 6, "0.18", {}),
    ("guaranteed-installment", "8000", 6, "0.12", {"fee_rate": "0.002"}),
    ("consumer-loan-equal-principal", "6000", 6, "0.10", {}),
    ("huabei-installment", "3000", 6, None, {"fee_rate": "0.006"}),
    ("business-loan-interest-first", "20000", 3, "0.15", {}),
    ("short-term-bullet", "5000", 3, "0.2", {}),
]


@pytest.mark.parametrize(("product", "amount", "term", "rate", "fees"), METHODS)
def test_on_time_loan_pays_off_and_earns_exactly_its_schedule(
    book, product, amount, term, rate, fees
):
    loan = book.book(product, amount, term, rate, START, **fees)
    for item in loan.installments:
        # Paid on the due date before that day's close: held as credit, applied at billing.
        book.close_through(item.due_date - timedelta(days=1))
        book.pay(loan.id, item.principal + item.interest + item.fee, item.due_date)
    book.close_through(loan.installments[-1].due_date + timedelta(days=2))
    final = book.loan(loan.id)
    assert final.status is LoanStatus.PAID_OFF
    assert final.balances.receivable == ZERO
    assert final.balances.credit == ZERO
    assert final.dpd == 0
    interest = sum((i.interest for i in loan.installments), ZERO)
    fees_total = sum((i.fee for i in loan.installments), ZERO)
    assert book.balance(Account.INTEREST_INCOME) == interest
    assert book.balance(Account.FEE_INCOME) == fees_total
    assert book.balance(Account.PENALTY_INCOME) == ZERO
    book.assert_ties()


@pytest.mark.parametrize(("product", "amount", "term", "rate", "fees"), METHODS)
def test_unpaid_loan_ages_through_classes_and_is_charged_off(
    book, product, amount, term, rate, fees
):
    loan = book.book(product, amount, term, rate, START, **fees)
    first_due = loan.installments[0].due_date
    book.close_through(first_due + timedelta(days=200))
    final = book.loan(loan.id)
    assert final.status is LoanStatus.CHARGED_OFF
    assert final.charged_off >= Decimal(amount)
    assert book.balance(Account.CHARGE_OFF_EXPENSE) == Decimal(amount)
    assert book.balance(Account.PRINCIPAL_RECEIVABLE) == ZERO
    assert book.balance(Account.INTEREST_SUSPENSE) == ZERO
    moves = book.rows(
        f"SELECT new FROM loan_events WHERE loan_id = {loan.id} AND kind = 'class' ORDER BY business_date"
    )
    assert [m[0] for m in moves] == ["special_mention", "substandard"]
    assert book.rows(f"SELECT kind FROM loan_events WHERE loan_id = {loan.id} AND kind = 'accrual'")
    book.assert_ties()
    # A recovery after charge-off is income, not a receivable.
    on = first_due + timedelta(days=201)
    book.pay(loan.id, "300.00", on)
    assert book.balance(Account.RECOVERY_INCOME) == Decimal("300.00")
    assert book.loan(loan.id).recovered == Decimal("300.00")
    book.assert_ties()


def test_penalty_accrues_daily_on_overdue_principal_after_grace(book):
    loan = book.book("cash-loan-installment", "12000", 12, "0.18", START)
    item = loan.installments[0]
    grace = 3
    late_days = 10
    book.close_through(item.due_date + timedelta(days=grace + late_days))
    state = book.loan(loan.id)
    daily = (item.principal * Decimal("0.18") * Decimal("1.5") / 365).quantize(Decimal("0.01"))
    assert state.balances.penalty == daily * late_days
    assert state.dpd == grace + late_days
    assert state.risk_class.value == "special_mention"
    book.assert_ties()


def test_partial_payment_leaves_the_loan_overdue(book):
    loan = book.book("cash-loan-installment", "12000", 12, "0.18", START)
    item = loan.installments[0]
    book.close_through(item.due_date + timedelta(days=5))
    book.pay(loan.id, "500.00", item.due_date + timedelta(days=6))
    book.close_through(item.due_date + timedelta(days=6))
    state = book.loan(loan.id)
    first = state.installments[0]
    daily = (item.principal * Decimal("0.18") * Decimal("1.5") / 365).quantize(Decimal("0.01"))
    penalty_paid = daily * 2  # grace 3: days due+4 and due+5 had closed before the payment
    assert first.paid_interest == item.interest  # penalty, then interest, then principal
    assert first.paid_principal == Decimal("500.00") - item.interest - penalty_paid
    assert state.dpd == 6
    book.assert_ties()


@pytest.mark.parametrize("mode", list(PrepaymentMode))
def test_partial_prepayment_reamortises(book, mode):
    loan = book.book("cash-loan-installment", "12000", 12, "0.18", START)
    first = loan.installments[0]
    book.close_through(first.due_date)
    book.pay(loan.id, first.total, first.due_date + timedelta(days=1))
    on = first.due_date + timedelta(days=10)
    book.close_through(on - timedelta(days=1))
    book.pay(loan.id, "5000.00", on, prepay=mode)
    state = book.loan(loan.id)
    tail = state.unbilled
    before = [i for i in loan.installments if i.due_date > on]
    assert sum((i.principal for i in tail), ZERO) + first.principal < Decimal("12000")
    if mode is PrepaymentMode.SHORTEN_TERM:
        assert len(tail) < len(before)
    else:
        assert len(tail) == len(before)
        assert tail[0].total < before[0].total
    book.close_through(on + timedelta(days=40))
    book.assert_ties()


def test_full_prepayment_pays_off_at_the_quote(book, uow):
    from lendstack.servicing.services import quote_payoff

    loan = book.book("cash-loan-installment", "12000", 12, "0.18", START)
    on = START + timedelta(days=20)
    book.close_through(on - timedelta(days=1))
    quote = quote_payoff(uow, loan.id, on)
    assert quote.principal == Decimal("12000.00")
    book.pay(loan.id, quote.total, on, prepay=PrepaymentMode.SHORTEN_TERM)
    state = book.loan(loan.id)
    assert state.status is LoanStatus.PAID_OFF
    assert book.balance(Account.INTEREST_INCOME) == quote.interest
    book.close_through(on + timedelta(days=3))
    book.assert_ties()


def test_reversal_recomputes_allocation_of_later_payments(book):
    loan = book.book("cash-loan-installment", "12000", 12, "0.18", START)
    first = loan.installments[0]
    book.close_through(first.due_date)
    day = first.due_date + timedelta(days=1)
    p1 = book.pay(loan.id, "600.00", day)
    p2 = book.pay(loan.id, "600.00", day)
    assert p2.applied.credit > ZERO  # the second overpaid the first installment
    redone = book.reverse(p1.id, day)
    assert len(redone) == 1
    assert redone[0].applied.credit == ZERO  # now it goes to the installment instead
    state = book.loan(loan.id)
    assert state.installments[0].unpaid == first.total - Decimal("600.00")
    statuses = dict(book.rows("SELECT id, status FROM payments"))
    assert statuses[p1.id] == "reversed"
    assert statuses[p2.id] == "reversed"
    book.assert_ties()


def test_same_idempotency_key_has_no_second_effect(book):
    loan = book.book("cash-loan-installment", "12000", 12, "0.18", START)
    book.close_through(START + timedelta(days=2))
    day = START + timedelta(days=3)
    first = book.pay(loan.id, "100.00", day, key="same")
    again = book.pay(loan.id, "100.00", day, key="same")
    assert again.id == first.id
    assert book.rows("SELECT COUNT(*) FROM payments") == [(1,)]
    assert book.balance(Account.BORROWER_CREDIT) == Decimal("100.00")


@pytest.mark.parametrize(("product", "amount", "term", "rate", "fees"), METHODS)
def test_late_partial_reversed_then_prepaid_in_full(book, uow, product, amount, term, rate, fees):
    """One borrower's messy life on every method: late, partial, a reversal, a full payoff."""
    from lendstack.servicing.domain.payments import owed_by_component
    from lendstack.servicing.services import quote_payoff

    loan = book.book(product, amount, term, rate, START, **fees)
    due = loan.installments[0].due_date
    book.close_through(due + timedelta(days=5))
    partial = book.pay(loan.id, "100.00", due + timedelta(days=6))
    book.close_through(due + timedelta(days=6))
    day = due + timedelta(days=7)
    owed = sum(owed_by_component(book.loan(loan.id), day).values(), ZERO)
    book.pay(loan.id, owed, day)
    redone = book.reverse(partial.id, day)
    assert len(redone) == 1
    assert redone[0].amount == owed
    # Without the partial payment the later one no longer covers everything overdue.
    assert book.loan(loan.id).installments[0].unpaid == Decimal("100.00")
    book.close_through(day)
    quote = quote_payoff(uow, loan.id, day + timedelta(days=1))
    book.pay(loan.id, quote.total, day + timedelta(days=1), prepay=PrepaymentMode.LOWER_INSTALLMENT)
    final = book.loan(loan.id)
    assert final.status is LoanStatus.PAID_OFF
    assert final.balances.receivable == ZERO
    book.close_through(day + timedelta(days=3))
    book.assert_ties()

"""A regular payment reads only a loan's billed unpaid installments and whether any is unbilled.

`SqlLoans.for_payment` loads a loan with just those (the billed ones with something unpaid,
and the unbilled ones whose predecessor is not unbilled, so the first unbilled one always);
`take_payments` applies the payment to that narrower state. Here random loans, part billed
and part paid, are paid on the whole state and on the narrowed one: the outcome (what was
applied, the parts, the entry) and everything a save writes (the loan's columns, the
installments that moved) must be the same.
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.core.errors import ValidationError
from lendstack.core.money import ZERO
from lendstack.servicing.domain.bills import Bill, bill_as_of_close, pay_bill
from lendstack.servicing.domain.booking import contract_for, open_loan, with_id
from lendstack.servicing.domain.delinquency import RiskClass
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import (
    AccrualPeriod,
    Balances,
    InstallmentState,
    LoanContract,
    LoanState,
    accrued_through,
)
from lendstack.servicing.domain.payments import (
    InstallmentPart,
    _dues,
    _in_full,
    _owed,
    _settle,
    apply_payment,
    owed_by_component,
)
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.domain.schedule import Schedule
from lendstack.servicing.domain.waterfall import Component, allocate
from lendstack.servicing.services import LoanRequest, quote
from lendstack.storage.mapping import state_columns

CATALOG = ProductCatalog()
PRODUCTS = sorted(p.id for p in CATALOG.all())
START = date(2026, 1, 15)


def narrowed(loan: LoanState) -> LoanState:
    """The installments `for_payment` reads (`_DUE_ITEMS`), computed in Python."""
    items = loan.installments
    kept = tuple(
        item
        for n, item in enumerate(items)
        if (item.billed and item.unpaid > ZERO)
        or (not item.billed and (n == 0 or items[n - 1].billed))
    )
    return replace(loan, installments=kept)


@st.composite
def loans(draw: st.DrawFn) -> LoanState:
    product = CATALOG.get(draw(st.sampled_from(PRODUCTS)))
    term = draw(st.sampled_from(product.terms_allowed))
    low, high = int(product.amount_min * 100), int(min(product.amount_max, Decimal(50_000)) * 100)
    amount = Decimal(draw(st.integers(low, high))) / 100
    schedule = quote(CATALOG, LoanRequest(product.id, amount, term, None, START))
    loan = with_id(open_loan(contract_for(product, schedule), schedule), 7)
    billed = draw(st.integers(0, len(loan.installments)))
    items = []
    for n, item in enumerate(loan.installments):
        if n >= billed:
            items.append(item)
            continue
        share = draw(st.sampled_from((0, 0, 1, 2, 3, 4)))  # quarters of it paid, mostly none
        paid = [
            (v * share / 4).quantize(Decimal("0.01"))
            for v in (item.principal, item.interest, item.fee)
        ]
        items.append(
            replace(
                item, billed=True, paid_principal=paid[0], paid_interest=paid[1], paid_fee=paid[2]
            )
        )
    unpaid = [i for i in items if i.billed]
    principal = loan.balances.principal - sum((i.paid_principal for i in unpaid), ZERO)
    if draw(st.booleans()):  # only the billed principal: a payment may then clear the receivable
        principal = sum((i.unpaid_principal for i in unpaid), ZERO)  # with installments unbilled
    balances = Balances(
        principal=principal,
        interest=sum((i.unpaid_interest for i in unpaid), ZERO),
        fee=sum((i.unpaid_fee for i in unpaid), ZERO),
        penalty=Decimal(draw(st.integers(0, 5_000))) / 100,
        credit=Decimal(draw(st.integers(0, 500))) / 100,
    )
    period = AccrualPeriod(9, START, START + timedelta(days=30), Decimal("4.56"), Decimal("1.23"))
    return replace(
        loan,
        installments=tuple(items),
        balances=balances,
        period=period,
        dpd=draw(st.integers(0, 90)),
        risk_class=RiskClass.SPECIAL_MENTION,
        non_accrual=draw(st.booleans()),
        schedule_version=2,
    )


def written(loan: LoanState, before: LoanState) -> tuple[object, ...]:
    """What `save_many` writes: the loan's columns and the installments that moved."""
    old = {i.number: i for i in before.installments}
    moved = tuple(i for i in loan.installments if old.get(i.number) != i)
    return (state_columns(loan), moved)


@settings(max_examples=300, deadline=None)
@given(loan=loans(), fen=st.integers(1, 3_000_000), days=st.integers(0, 400))
def test_a_payment_on_the_narrowed_loan_is_the_same_payment(
    loan: LoanState, fen: int, days: int
) -> None:
    amount, on = Decimal(fen) / 100, START + timedelta(days=days)
    whole = apply_payment(loan, amount, on, "payment:k")
    narrow = narrowed(loan)
    part = apply_payment(narrow, amount, on, "payment:k")
    assert (part.applied, part.parts, part.entry) == (whole.applied, whole.parts, whole.entry)
    assert written(part.loan, narrow) == written(whole.loan, loan)
    assert part.loan.status == whole.loan.status


@settings(max_examples=50, deadline=None)
@given(loan=loans(), fen=st.integers(1, 3_000_000))
def test_a_payment_keeps_every_field_it_does_not_move(loan: LoanState, fen: int) -> None:
    """`_after_payment` builds the state field by field: none may fall back to a default."""
    after = apply_payment(loan, Decimal(fen) / 100, START + timedelta(days=60), "payment:k").loan
    moved = {"installments", "balances", "status", "closed_on"}
    for f in fields(LoanState):
        if f.name not in moved:
            assert getattr(after, f.name) == getattr(loan, f.name), f.name
    assert after.status in (LoanStatus.ACTIVE, LoanStatus.PAID_OFF)
    assert all(isinstance(i, InstallmentState) for i in after.installments)


# --- a payment of exactly what is owed -----------------------------------------------------


def general_settle(loan: LoanState, amount: Decimal, on: date) -> tuple[object, ...]:
    """The waterfall's way (`allocate`, then `_settle`), which `_in_full` must equal."""
    late, current = _dues(loan, on)
    allocation = allocate(amount, _owed(loan, late, current), loan.contract.waterfall)
    items, parts = _settle(loan, late, current, allocation)
    return allocation.amount(Component.OVERDUE_PENALTY), allocation.remainder, items, parts


def exact(values: object) -> str:
    """Values with each Decimal's own digits (`repr`), so a different exponent shows."""
    return repr(values)


@settings(max_examples=400, deadline=None)
@given(
    loan=loans(),
    days=st.integers(0, 400),
    order=st.permutations(list(Component)),
    own_order=st.booleans(),
)
def test_paying_everything_owed_is_the_waterfall_paying_it(
    loan: LoanState, days: int, order: list[Component], own_order: bool
) -> None:
    """Whatever the product and its waterfall, the shortcut gives the allocation's result:
    the whole penalty, every due in full, no credit, with the same Decimals."""
    if not own_order:
        loan = replace(loan, contract=replace(loan.contract, waterfall=tuple(order)))
    on = START + timedelta(days=days)
    owed = sum(owed_by_component(loan, on).values(), ZERO)
    late, current = _dues(loan, on)
    shortcut = _in_full(loan, late, current, owed)
    assert shortcut is not None
    penalty, credit, items, parts = general_settle(loan, owed, on)
    assert (penalty, credit) == (loan.balances.penalty, ZERO)
    assert exact(shortcut) == exact((items, parts))
    if owed == ZERO:  # nothing to pay: refused either way
        with pytest.raises(ValidationError):
            apply_payment(loan, owed, on, "payment:k")
        return
    paid = apply_payment(loan, owed, on, "payment:k")
    assert paid.applied.credit == ZERO
    assert paid.applied.penalty == loan.balances.penalty
    assert paid.loan.oldest_unpaid_due is None


@settings(max_examples=200, deadline=None)
@given(loan=loans(), days=st.integers(0, 400), off=st.sampled_from(("-0.01", "0.01", "0.001")))
def test_any_other_amount_goes_the_waterfall_way(loan: LoanState, days: int, off: str) -> None:
    on = START + timedelta(days=days)
    owed = sum(owed_by_component(loan, on).values(), ZERO)
    late, current = _dues(loan, on)
    assert _in_full(loan, late, current, owed + Decimal(off)) is None


def test_a_due_allocate_would_refuse_goes_the_waterfall_way() -> None:
    """A negative or sub-fen due: `allocate` raises on it, so the shortcut must not take it."""
    loan = with_id(open_loan(*_booked(PRODUCTS[0])), 7)
    first = replace(loan.installments[0], billed=True)
    on = first.due_date
    for odd in (Decimal("-1.00"), Decimal("0.005")):
        penalised = replace(loan, installments=(first, *loan.installments[1:]))
        penalised = replace(penalised, balances=replace(loan.balances, penalty=odd))
        owed = first.unpaid + odd
        assert _in_full(penalised, [], [first], owed) is None
        with pytest.raises(ValidationError):
            apply_payment(penalised, owed, on, "payment:k")
    for amount in (Decimal("NaN"), Decimal("Infinity")):
        assert _in_full(loan, [], [first], amount) is None


def _booked(product_id: str) -> tuple[LoanContract, Schedule]:
    product = CATALOG.get(product_id)
    amount = max(product.amount_min, Decimal(1000))
    schedule = quote(
        CATALOG, LoanRequest(product.id, amount, product.terms_allowed[0], None, START)
    )
    return contract_for(product, schedule), schedule


# --- a whole bill paid over the loan's few values (`domain.bills`) ---------------------------


def bill_of(loan: LoanState) -> Bill:
    """The `Bill` `SqlLoans.bills` reads of `loan` (its dues as `_DUE_ITEMS` selects them)."""
    dues = tuple(
        InstallmentPart(i.number, i.unpaid_principal, i.unpaid_interest, i.unpaid_fee)
        for i in loan.installments
        if i.billed and i.unpaid > ZERO
    )
    return Bill(
        loan.id,
        loan.status,
        loan.contract.disbursement_date,
        loan.non_accrual,
        loan.schedule_version,
        loan.balances,
        loan.period,
        loan.contract.rounding,
        dues,
        any(not i.billed for i in loan.installments),
    )


@settings(max_examples=400, deadline=None)
@given(loan=loans(), days=st.integers(-5, 400), status=st.sampled_from(list(LoanStatus)))
def test_a_whole_bill_paid_over_the_bill_is_the_payment_applied(
    loan: LoanState, days: int, status: LoanStatus
) -> None:
    """`pay_bill` gives `apply_payment`'s outcome for the whole bill (balances, status, what
    was applied, the parts, the entry), or None where `apply_payment` would refuse it or
    take it another way (another status, a date before disbursement, nothing owed)."""
    if status is not LoanStatus.ACTIVE and days % 3 == 0:
        loan = replace(loan, status=status)
    on = START + timedelta(days=days)
    owed = sum(owed_by_component(loan, on).values(), ZERO)
    paid = pay_bill(bill_of(loan), owed, on, "payment:k")
    if loan.status is not LoanStatus.ACTIVE or on < loan.contract.disbursement_date or not owed:
        assert paid is None
        return
    whole = apply_payment(loan, owed, on, "payment:k")
    assert paid is not None
    assert (paid.applied, paid.parts, paid.entry) == (whole.applied, whole.parts, whole.entry)
    assert paid.balances == whole.loan.balances
    assert paid.paid_off == (whole.loan.status is LoanStatus.PAID_OFF)
    assert paid.period == loan.period
    assert paid.schedule_version == loan.schedule_version


@settings(max_examples=200, deadline=None)
@given(loan=loans(), days=st.integers(0, 400), off=st.sampled_from(("-0.01", "0.01", "0.001")))
def test_any_other_amount_is_not_a_whole_bill(loan: LoanState, days: int, off: str) -> None:
    on = START + timedelta(days=days)
    owed = sum(owed_by_component(loan, on).values(), ZERO)
    assert pay_bill(bill_of(loan), owed + Decimal(off), on, "payment:k") is None
    assert pay_bill(bill_of(loan), float(owed), on, "payment:k") is None  # type: ignore[arg-type]


def test_a_due_allocate_would_refuse_is_not_a_whole_bill() -> None:
    loan = with_id(open_loan(*_booked(PRODUCTS[0])), 7)
    first = replace(loan.installments[0], billed=True)
    billed = replace(loan, installments=(first, *loan.installments[1:]))
    negative = replace(billed, balances=replace(loan.balances, penalty=Decimal("-1.00")))
    assert pay_bill(bill_of(negative), first.unpaid - 1, first.due_date, "payment:k") is None
    for amount in (Decimal("NaN"), Decimal("Infinity")):
        assert pay_bill(bill_of(billed), amount, first.due_date, "payment:k") is None


@settings(max_examples=200, deadline=None)
@given(loan=loans(), days=st.integers(-40, 80))
def test_a_bill_is_brought_to_the_close_as_its_loan_is(loan: LoanState, days: int) -> None:
    """`bill_as_of_close` accrues the bill's period as `accrued_through` accrues the loan's."""
    day = START + timedelta(days=days)
    brought = accrued_through(loan, day)
    bill = bill_as_of_close(bill_of(loan), day)
    assert (bill.balances, bill.period) == (brought.balances, brought.period)
    assert bill_as_of_close(bill_of(loan), None) == bill_of(loan)

"""A payment of a loan's whole bill, over the few values of the loan such a payment moves.

Most payments pay the bill: the penalty and every billed installment's unpaid part, which is
what the simulator's borrowers pay and what most real payments are. Then the waterfall
cannot matter (`payments._in_full`): each due installment is paid its whole unpaid part. A
day's bill payments touch thousands of loans, and building each one's whole state (its
contract, its installments) to move four balances and one or two installments cost more than
the rest of the payment; `pay_bill` works from a `Bill`, the loan's balances, its accrual
period and its unpaid dues, and gives what `apply_payment` would (tested against it, which
stays the oracle). Anything that is not exactly a whole bill on an active loan is None here,
and goes `apply_payment`'s way, errors included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from lendstack.core.money import ZERO, Rounding
from lendstack.core.records import quick_init
from lendstack.servicing.domain.ledger import EventType, JournalEntry, entry_or_none
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import AccrualPeriod, Balances, accrual_through
from lendstack.servicing.domain.payments import Applied, InstallmentPart, cash_postings


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class Bill:
    """A loan as a payment of its whole bill reads it."""

    loan_id: int
    status: LoanStatus
    disbursed: date
    non_accrual: bool
    schedule_version: int
    balances: Balances
    period: AccrualPeriod | None
    rounding: Rounding
    dues: tuple[InstallmentPart, ...]
    """Each billed installment with something unpaid, its unpaid part of each kind, in
    schedule order."""
    unbilled: bool
    """Whether any installment is still to be billed."""


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class PaidBill:
    """A bill paid: the loan's new balances and accrual, and what the payment settled."""

    loan_id: int
    schedule_version: int
    balances: Balances
    period: AccrualPeriod | None
    """The accrual period, its interest accrued through the last close (as the bill read it)."""
    paid_off: bool
    applied: Applied
    parts: tuple[InstallmentPart, ...]
    entry: JournalEntry

    @property
    def accrued_interest(self) -> Decimal:
        """Interest the payment itself brought to date: none (prepayments only)."""
        return ZERO

    @property
    def accrued_fee(self) -> Decimal:
        return ZERO


def bill_as_of_close(bill: Bill, day: date | None) -> Bill:
    """The bill with its accrual period's interest accrued through the close of `day`, as
    `loan.accrued_through` brings a loan whose accrual a close deferred (None: no close)."""
    if day is None or bill.status is not LoanStatus.ACTIVE:
        return bill
    moved = accrual_through(bill.balances, bill.period, day, bill.rounding)
    if moved is None:
        return bill
    return replace(bill, balances=moved[0], period=moved[1])


def pay_bill(bill: Bill, amount: Decimal, on: date, reference: str) -> PaidBill | None:
    """`apply_payment(loan, amount, on, reference)` of the loan `bill` reads, where `amount`
    is exactly its whole bill; None for anything else (the caller applies it then)."""
    if not _whole_bill(bill, amount, on):
        return None
    parts = bill.dues
    applied = Applied(
        penalty=bill.balances.penalty,
        interest=sum((p.interest for p in parts), ZERO),
        principal=sum((p.principal for p in parts), ZERO),
        fee=sum((p.fee for p in parts), ZERO),
    )
    postings = cash_postings(bill.loan_id, bill.non_accrual, amount, applied)
    entry = entry_or_none(EventType.PAYMENT, on, reference, postings)
    if entry is None:  # nothing owed, nothing paid: `apply_payment` refuses it
        return None
    was = bill.balances
    balances = Balances(
        principal=was.principal - applied.principal,
        interest=was.interest - applied.interest,
        fee=was.fee - applied.fee,
        penalty=was.penalty - applied.penalty,
        credit=was.credit,
    )
    paid_off = balances.receivable == ZERO and not bill.unbilled
    return PaidBill(
        bill.loan_id, bill.schedule_version, balances, bill.period, paid_off, applied, parts, entry
    )


def _whole_bill(bill: Bill, amount: Decimal, on: date) -> bool:
    """Whether `apply_payment` would take `amount` as the whole bill of an active loan
    (`payments._in_full`), with no error to raise."""
    if bill.status is not LoanStatus.ACTIVE or on < bill.disbursed:
        return False
    if type(amount) is not Decimal or not amount.is_finite():
        return False
    total = bill.balances.penalty
    if total < ZERO:
        return False
    for part in bill.dues:
        if part.principal < ZERO or part.interest < ZERO or part.fee < ZERO:
            return False
        total += part.principal + part.interest + part.fee
    return amount == total

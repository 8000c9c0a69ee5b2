"""Negotiated settlements: an active loan closed for less than its payoff (issue 7).

Collections may agree to close a delinquent loan for a discount on what it owes. The payoff
is the full prepayment payoff on the settlement date, less the prepayment fee, which a
settlement never charges. The cash received settles the loan in full; what it does not cover
is forgiven in a fixed order: penalty first, then interest, then fees, and principal last.
The order is why a borrower who pays most of the debt keeps most of the principal repaid.

The ledger entry, balanced when built:
- receivables are brought up to the date (interest earned, fees due) as a payoff would;
- cash is debited with the amount received;
- every receivable is credited in full, and the loan closes (PAID_OFF, a settlement record
  beside it says how);
- the forgiven amount is debited to 6706 settlement discount (an expense), except on a
  non-accrual loan, whose unpaid interest, fees and penalties were never recognised as
  income: those are cleared against the non-accrual suspense instead, and only what the cash
  settled is recognised (cash basis), so forgiving them costs no P&L.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date
from decimal import Decimal

from lendstack.core.errors import InvariantViolation, ValidationError
from lendstack.core.money import FEN, ZERO
from lendstack.servicing.domain.ledger import (
    Account,
    EventType,
    JournalEntry,
    Side,
    entry_or_none,
    leg,
)
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import LoanState
from lendstack.servicing.domain.payments import Applied, InstallmentPart, income_recognition
from lendstack.servicing.domain.prepayment import (
    PayoffQuote,
    accrual_postings,
    payoff_quote,
    prepay,
)
from lendstack.servicing.domain.schedule import PrepaymentMode


@dataclass(frozen=True, slots=True)
class Waived:
    """What a settlement forgave, by kind (penalty, interest and fees first, principal last)."""

    penalty: Decimal = ZERO
    interest: Decimal = ZERO
    fee: Decimal = ZERO
    principal: Decimal = ZERO

    @property
    def income(self) -> Decimal:
        return self.penalty + self.interest + self.fee

    @property
    def total(self) -> Decimal:
        return self.income + self.principal

    def as_dict(self) -> dict[str, Decimal]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class SettlementOutcome:
    loan: LoanState
    """The loan, closed."""
    paid: Applied
    """What the cash settled, by kind; sums to the amount received."""
    waived: Waived
    payoff: Decimal
    parts: tuple[InstallmentPart, ...]
    """Each installment's settlement in full (paid and forgiven together)."""
    entry: JournalEntry
    accrued_interest: Decimal
    accrued_fee: Decimal


def forgiven(settled: Applied, discount: Decimal) -> Waived:
    """Spread `discount` over what the payoff settled: penalty, interest, fee, principal."""
    left, taken = discount, {}
    for name in ("penalty", "interest", "fee", "principal"):
        taken[name] = min(left, getattr(settled, name))
        left -= taken[name]
    if left:
        raise InvariantViolation(f"a discount of {discount} exceeds the payoff it forgives")
    return Waived(**taken)


def settlement_payoff(loan: LoanState, on: date) -> PayoffQuote:
    """The payoff a settlement discounts: the prepayment payoff without the prepayment fee."""
    return payoff_quote(_without_prepayment_fee(loan), on)


def settle(
    loan: LoanState, amount: Decimal, on: date, reference: str, max_discount: Decimal
) -> SettlementOutcome:
    """Close `loan` on `on` for `amount`, forgiving the rest of its payoff.

    `max_discount` is the largest share of the payoff that may be forgiven (the collector's
    delegated authority); a larger discount, an amount that is no discount at all, or one that
    is not a positive number of fen is refused, naming `amount`.
    """
    free = _without_prepayment_fee(loan)
    quote = payoff_quote(free, on)
    _check_amount(amount, quote.total, max_discount)
    full = prepay(free, quote.total, on, PrepaymentMode.SHORTEN_TERM, reference)
    if full.loan.status is not LoanStatus.PAID_OFF or full.applied.credit:
        raise InvariantViolation(f"the payoff of {quote.total} did not close loan {loan.id}")
    waived = forgiven(full.applied, quote.total - amount)
    paid = replace(
        full.applied,
        penalty=full.applied.penalty - waived.penalty,
        interest=full.applied.interest - waived.interest,
        fee=full.applied.fee - waived.fee,
        principal=full.applied.principal - waived.principal,
    )
    entry = _entry(free, quote, full.applied, paid, waived, amount, reference)
    closed = replace(full.loan, contract=loan.contract)
    return SettlementOutcome(
        closed, paid, waived, quote.total, full.parts, entry, full.accrued_interest,
        full.accrued_fee,
    )  # fmt: skip


def _without_prepayment_fee(loan: LoanState) -> LoanState:
    return replace(loan, contract=replace(loan.contract, prepayment_fee_rate=ZERO))


def _check_amount(amount: Decimal, payoff: Decimal, max_discount: Decimal) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise ValidationError(f"must be a positive Decimal, got {amount!r}", field="amount")
    if amount != amount.quantize(FEN):
        raise ValidationError(f"{amount} is more precise than the fen (0.01)", field="amount")
    if amount >= payoff:
        raise ValidationError(
            f"{amount} is no discount on the payoff of {payoff}: take it as a payment",
            field="amount",
        )
    if not ZERO <= max_discount < 1:
        raise ValidationError(f"must be in [0, 1), got {max_discount}", field="max_discount")
    if payoff - amount > payoff * max_discount:
        floor = (payoff * (1 - max_discount)).quantize(FEN)
        raise ValidationError(
            f"{amount} forgives more than {max_discount:%} of the payoff of {payoff} "
            f"(the least acceptable is {floor})",
            field="amount",
        )


def _entry(
    loan: LoanState,
    quote: PayoffQuote,
    settled: Applied,
    paid: Applied,
    waived: Waived,
    amount: Decimal,
    reference: str,
) -> JournalEntry:
    lid, suspense = loan.id, loan.non_accrual
    postings = [
        *accrual_postings(loan, quote),
        leg(Account.CASH, Side.DEBIT, amount, lid),
        leg(Account.SETTLEMENT_DISCOUNT, Side.DEBIT,
            waived.principal + (ZERO if suspense else waived.income), lid),
        leg(Account.INTEREST_SUSPENSE, Side.DEBIT, waived.income if suspense else ZERO, lid),
        leg(Account.PENALTY_RECEIVABLE, Side.CREDIT, settled.penalty, lid),
        leg(Account.INTEREST_RECEIVABLE, Side.CREDIT, settled.interest, lid),
        leg(Account.PRINCIPAL_RECEIVABLE, Side.CREDIT, settled.principal, lid),
        leg(Account.FEE_RECEIVABLE, Side.CREDIT, settled.fee, lid),
        *income_recognition(loan, paid),
    ]  # fmt: skip
    entry = entry_or_none(EventType.SETTLEMENT, quote.on, reference, postings)
    if entry is None:
        raise InvariantViolation("a settlement always moves money")
    return entry


__all__ = ["SettlementOutcome", "Waived", "forgiven", "settle", "settlement_payoff"]

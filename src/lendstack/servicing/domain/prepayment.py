"""Payoff quotes and prepayments, full or partial.

Interest between due dates accrues linearly over the period's days:
`accrued_share(interest, elapsed, days) = round(interest × elapsed / days)`. Close of business
uses the same rule in SQL, so a quote on the open date matches what COB would have accrued.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from lendstack.core.errors import Conflict, ValidationError
from lendstack.core.money import ZERO, quantize_fen
from lendstack.servicing.domain.ledger import Account, Posting, Side, leg
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import (
    InstallmentState,
    LoanState,
    accrued_share,
    first_period,
)
from lendstack.servicing.domain.payments import PaymentOutcome, apply_payment, payment_entry
from lendstack.servicing.domain.schedule import PrepaymentMode, generate, reamortize


@dataclass(frozen=True, slots=True)
class PayoffQuote:
    """Everything needed to close the loan on `on`; penalty is as accrued at the last close."""

    loan_id: int
    on: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    penalty: Decimal
    prepayment_fee: Decimal
    accrual_due: Decimal
    """Interest earned by `on` that close of business has not yet accrued."""
    fees_due: Decimal
    """Fees of installments falling due by `on` that have not been billed yet."""

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.penalty + self.prepayment_fee


def _unbilled_earned(loan: LoanState, item: InstallmentState, on: date) -> Decimal:
    elapsed = (on - item.start_date).days
    return accrued_share(item.interest, elapsed, item.days, loan.contract.rounding)


def payoff_quote(loan: LoanState, on: date) -> PayoffQuote:
    if loan.status is not LoanStatus.ACTIVE:
        raise Conflict(
            f"loan {loan.id} is {loan.status}; there is nothing to pay off", field="loan_id"
        )
    if on < loan.contract.disbursement_date:
        raise ValidationError(f"{on} is before disbursement", field="date")
    unbilled = loan.unbilled
    earned = sum((_unbilled_earned(loan, i, on) for i in unbilled), ZERO)
    accrued_now = loan.period.accrued if loan.period else ZERO
    fees_due = sum((i.fee for i in unbilled if i.due_date <= on), ZERO)
    unbilled_principal = sum((i.principal for i in unbilled), ZERO)
    fee_rate = loan.contract.prepayment_fee_rate
    return PayoffQuote(
        loan_id=loan.id,
        on=on,
        principal=loan.balances.principal,
        interest=loan.balances.interest - accrued_now + earned,
        fee=loan.balances.fee + fees_due,
        penalty=loan.balances.penalty,
        prepayment_fee=quantize_fen(unbilled_principal * fee_rate, loan.contract.rounding),
        accrual_due=earned - accrued_now,
        fees_due=fees_due,
    )


def accrual_postings(loan: LoanState, quote: PayoffQuote) -> list[Posting | None]:
    """Bring receivables up to `quote.on`: the accrual and fees COB has not posted yet."""
    suspense = loan.non_accrual
    interest_credit = Account.INTEREST_SUSPENSE if suspense else Account.INTEREST_INCOME
    fee_credit = Account.INTEREST_SUSPENSE if suspense else Account.FEE_INCOME
    return [
        leg(Account.INTEREST_RECEIVABLE, Side.DEBIT, quote.accrual_due, loan.id),
        leg(interest_credit, Side.CREDIT, quote.accrual_due, loan.id),
        leg(Account.FEE_RECEIVABLE, Side.DEBIT, quote.fees_due, loan.id),
        leg(fee_credit, Side.CREDIT, quote.fees_due, loan.id),
    ]


def _billed_interest(loan: LoanState) -> Decimal:
    return sum((i.unpaid_interest for i in loan.installments if i.billed), ZERO)


def _with_accrual(loan: LoanState, quote: PayoffQuote) -> LoanState:
    balances = replace(
        loan.balances,
        interest=loan.balances.interest + quote.accrual_due,
        fee=loan.balances.fee + quote.fees_due,
    )
    return replace(loan, balances=balances)


def prepay(
    loan: LoanState, amount: Decimal, on: date, mode: PrepaymentMode, reference: str
) -> PaymentOutcome:
    """Settle what is due, then interest and fees earned to date, then principal early.

    An amount at or above the payoff closes the loan (any excess is held as credit). A smaller
    one re-amortises the rest from `on`, on the original due dates, keeping either the
    installment (shorter term) or the maturity (lower installment).
    """
    quote = payoff_quote(loan, on)
    unbilled_principal = sum((i.principal for i in loan.unbilled), ZERO)
    minimum = quote.total - unbilled_principal
    if unbilled_principal > ZERO and amount <= minimum:
        raise ValidationError(
            f"a prepayment must exceed what is due plus interest earned to date ({minimum})",
            field="amount",
        )
    regular = apply_payment(_with_accrual(loan, quote), amount, on, reference)
    earned = quote.interest - _billed_interest(loan)
    left = regular.applied.credit - earned - quote.fees_due - quote.prepayment_fee
    principal = min(left, unbilled_principal)
    applied = replace(
        regular.applied,
        interest=regular.applied.interest + earned,
        fee=regular.applied.fee + quote.fees_due,
        prepayment_fee=quote.prepayment_fee,
        principal=regular.applied.principal + principal,
        credit=left - principal,
    )
    after = regular.loan.balances
    balances = replace(
        after,
        interest=after.interest - earned,
        fee=after.fee - quote.fees_due,
        principal=after.principal - principal,
        credit=loan.balances.credit + applied.credit,
    )
    remaining = unbilled_principal - principal
    state = _reschedule(replace(regular.loan, balances=balances), remaining, on, mode)
    entry = payment_entry(loan, amount, applied, on, reference, extra=accrual_postings(loan, quote))
    return PaymentOutcome(state, applied, regular.parts, entry, quote.accrual_due, quote.fees_due)


def _reschedule(loan: LoanState, remaining: Decimal, on: date, mode: PrepaymentMode) -> LoanState:
    """Replace the unbilled installments with the re-amortised tail (none on a full payoff)."""
    billed = tuple(i for i in loan.installments if i.billed)
    tail: tuple[InstallmentState, ...] = ()
    if remaining > ZERO:
        schedule = reamortize(generate(loan.contract.terms()), remaining, on, mode)
        tail = tuple(InstallmentState.scheduled(i) for i in schedule.installments)
    items = billed + tail
    done = not tail and loan.balances.receivable == ZERO
    return replace(
        loan,
        installments=items,
        period=first_period(items),
        schedule_version=loan.schedule_version + 1,
        status=LoanStatus.PAID_OFF if done else LoanStatus.ACTIVE,
        closed_on=on if done else None,
    )

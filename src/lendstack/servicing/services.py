"""Servicing use cases, one small handler each: load, call the pure core, save, commit.

Every handler runs inside one unit of work, so a failure anywhere writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from lendstack.core.errors import Conflict, ValidationError
from lendstack.servicing.domain.booking import (
    contract_for,
    disbursement_entry,
    open_loan,
    with_id,
)
from lendstack.servicing.domain.ledger import EventType, JournalEntry
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import LoanState, resume_period
from lendstack.servicing.domain.payments import (
    PaymentOutcome,
    apply_credit,
    apply_payment,
    reversal_entry,
    unapply,
    unapply_credit,
)
from lendstack.servicing.domain.prepayment import PayoffQuote, payoff_quote, prepay
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.domain.restructure import check_reversible
from lendstack.servicing.domain.schedule import PrepaymentMode, Schedule, generate
from lendstack.servicing.ports import (
    Calendar,
    LoanProfile,
    PlanTerms,
    StoredPayment,
    UnitOfWork,
    lead_funder,
)

CREDIT_APPLIED = EventType.CREDIT_APPLIED.value
"""The kind of payment a close records when it settles dues from a borrower's credit."""


@dataclass(frozen=True, slots=True)
class LoanRequest:
    product_id: str
    amount: Decimal
    term_months: int
    rate: Decimal | None
    start: date
    fee_rate: Decimal | None = None
    upfront_fee_rate: Decimal | None = None
    guarantee_fee_rate: Decimal = Decimal(0)
    """Per period, on the original principal, on top of the product's fee (`Product.terms`)."""


@dataclass(frozen=True, slots=True)
class Payment:
    loan_id: int
    amount: Decimal
    on: date
    idempotency_key: str
    prepay: PrepaymentMode | None = None

    def fingerprint(self) -> str:
        body = [self.loan_id, str(self.amount), self.on.isoformat(), self.prepay]
        return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def quote(catalog: ProductCatalog, request: LoanRequest) -> Schedule:
    """The schedule and APR a borrower would get; touches no storage."""
    product = catalog.get(request.product_id)
    rate = product.rate_min if request.rate is None else request.rate
    terms = product.terms(
        request.amount,
        request.term_months,
        rate,
        request.start,
        fee_rate=request.fee_rate,
        upfront_fee_rate=request.upfront_fee_rate,
        guarantee_fee_rate=request.guarantee_fee_rate,
    )
    return generate(terms)


def ensure_open(calendar: Calendar, on: date, field: str = "date") -> None:
    """Money moves only on the open business date: after the last close, not beyond the next."""
    last = calendar.last_closed()
    if last is None:
        return
    if on <= last:
        raise Conflict(f"{on} is inside an already closed business date (last {last})", field=field)
    if on > last + timedelta(days=1):
        open_date = last + timedelta(days=1)
        raise Conflict(
            f"{on} is not open yet; the open business date is {open_date}. "
            f"Run `lendstack cob run --through {on - timedelta(days=1)}` first",
            field=field,
        )


FundingShares = Callable[[], PlanTerms]
"""Gives a new loan's funding plan (shares sum to 1); may raise to refuse it."""


def book_loan(
    uow: UnitOfWork,
    catalog: ProductCatalog,
    request: LoanRequest,
    reference: str | None = None,
    fund: FundingShares | None = None,
    profile: LoanProfile | None = None,
) -> LoanState:
    """Disburse a loan: the contract, its schedule and the disbursement entry, atomically.

    With `fund`, the loan's funding plan is written in the same transaction. `fund` is called
    only when a new loan is booked (a reference already booked returns its loan untouched),
    before anything is written, so a plan it refuses leaves nothing behind. With `profile`,
    the loan's analytics dimensions are written in the same transaction too, with the plan's
    lead funder filled in.
    """
    schedule = quote(catalog, request)
    contract = contract_for(catalog.get(request.product_id), schedule)
    with uow:
        if reference is not None and (existing := uow.loans.by_reference(reference)):
            if existing.contract != contract:
                raise Conflict(
                    f"reference {reference!r} was used for another loan", field="reference"
                )
            return existing
        ensure_open(uow.calendar, request.start)
        plan = None if fund is None else fund()
        loan = open_loan(contract, schedule)
        loan = with_id(loan, uow.loans.add(loan, reference))
        if plan is not None:
            uow.funding.record(loan.id, plan)
        if profile is not None:
            lead = profile.lead_funder_id or (lead_funder(plan.shares) if plan else None)
            uow.profiles.record(loan.id, replace(profile, lead_funder_id=lead))
        uow.ledger.post(disbursement_entry(loan, schedule, request.start))
        uow.commit()
    return loan


def get_loan(uow: UnitOfWork, loan_id: int) -> LoanState:
    with uow:
        return uow.loans.get(loan_id)


def quote_payoff(uow: UnitOfWork, loan_id: int, on: date) -> PayoffQuote:
    with uow:
        last = uow.calendar.last_closed()
        if last is not None and on <= last:
            raise ValidationError(f"{on} is already closed (last close {last})", field="date")
        return payoff_quote(uow.loans.get(loan_id), on)


def _outcome(loan: LoanState, payment: Payment, reference: str) -> PaymentOutcome:
    if payment.on < loan.contract.disbursement_date:
        raise ValidationError(
            f"{payment.on} is before the loan's disbursement on {loan.contract.disbursement_date}",
            field="date",
        )
    if payment.prepay is None:
        return apply_payment(loan, payment.amount, payment.on, reference)
    return prepay(loan, payment.amount, payment.on, payment.prepay, reference)


def _record(
    uow: UnitOfWork, payment: Payment, loan: LoanState, outcome: PaymentOutcome, entry_id: int
) -> StoredPayment:
    stored = StoredPayment(
        id=0,
        loan_id=loan.id,
        kind="prepayment" if payment.prepay else outcome.entry.event.value,
        value_date=payment.on,
        amount=payment.amount,
        idempotency_key=payment.idempotency_key,
        request_hash=payment.fingerprint(),
        status="posted",
        applied=outcome.applied,
        parts=outcome.parts,
        entry_id=entry_id,
        schedule_version_before=loan.schedule_version,
        mode=payment.prepay.value if payment.prepay else None,
        accrued_interest=outcome.accrued_interest,
        accrued_fee=outcome.accrued_fee,
    )
    return replace(stored, id=uow.payments.add(stored))


def _post_payment(uow: UnitOfWork, payment: Payment, entry_date: date) -> StoredPayment:
    loan = uow.loans.get(payment.loan_id, for_update=True)
    outcome = _outcome(loan, payment, f"payment:{payment.idempotency_key}")
    entry = replace(outcome.entry, business_date=entry_date)
    entry_id = uow.ledger.post(entry)
    uow.loans.save(outcome.loan)
    return _record(uow, payment, loan, outcome, entry_id)


def take_payment(uow: UnitOfWork, payment: Payment) -> StoredPayment:
    """Post a payment once: a repeated key returns the first result, a changed body conflicts."""
    with uow:
        existing = uow.payments.by_key(payment.idempotency_key)
        if existing is not None:
            if existing.request_hash != payment.fingerprint():
                raise Conflict(
                    "this idempotency key was already used for a different payment",
                    field="idempotency_key",
                )
            return existing
        ensure_open(uow.calendar, payment.on)
        stored = _post_payment(uow, payment, payment.on)
        uow.commit()
    return stored


def _undo(uow: UnitOfWork, loan: LoanState, stored: StoredPayment, on: date) -> LoanState:
    original: JournalEntry = uow.ledger.get(stored.entry_id)
    reference = f"reversal:{stored.id}"
    reversal = reversal_entry(loan, original, stored.applied, stored.entry_id, on, reference)
    uow.payments.mark_reversed(stored.id, uow.ledger.post(reversal))
    accrued = (stored.accrued_interest, stored.accrued_fee)
    if stored.kind == CREDIT_APPLIED:
        return unapply_credit(loan, stored.applied, stored.parts)
    if stored.kind != "prepayment":
        return unapply(loan, stored.applied, stored.parts, accrued)
    # The earlier schedule version still holds the installments exactly as they were.
    loan = uow.loans.restore_schedule(loan, stored.schedule_version_before)
    return resume_period(unapply(loan, stored.applied, (), accrued))


def reverse_payment(uow: UnitOfWork, payment_id: int, on: date) -> tuple[StoredPayment, ...]:
    """Reverse a payment and re-apply every later one, so allocation is recomputed from its date.

    Returns the re-applied payments. Prepayments re-shape the schedule, so a prepayment can be
    reversed (or re-applied) only while its value date is still open.
    """
    with uow:
        ensure_open(uow.calendar, on)
        target = uow.payments.get(payment_id)
        if target.status != "posted":
            raise Conflict(f"payment {payment_id} is already {target.status}", field="payment_id")
        later = tuple(uow.payments.later_than(target))
        _check_reversible((target, *later), on)
        loan = uow.loans.get(target.loan_id, for_update=True)
        _check_on_book(loan, (target, *later))
        check_reversible(loan, (target.value_date,))
        for stored in reversed((target, *later)):
            loan = _undo(uow, loan, stored, on)
        uow.loans.save(loan)
        redone = tuple(_reapply(uow, stored, target.id, on) for stored in later)
        uow.commit()
    return tuple(p for p in redone if p is not None)


def _check_reversible(chain: tuple[StoredPayment, ...], on: date) -> None:
    for stored in chain:
        if stored.kind == "settlement":
            raise Conflict(
                f"payment {stored.id} settled loan {stored.loan_id} for a negotiated amount; "
                "a settlement, or a payment before it, cannot be reversed",
                field="payment_id",
            )
        if stored.kind == "prepayment" and stored.value_date != on:
            raise Conflict(
                f"payment {stored.id} is a prepayment from {stored.value_date}; prepayments "
                "can be reversed only on their own value date",
                field="payment_id",
            )


def _check_on_book(loan: LoanState, chain: tuple[StoredPayment, ...]) -> None:
    """A charged-off loan carries no receivables: undoing a payment from before the charge-off
    would put dues back on it (and re-applying one would turn it into a recovery). Only
    recoveries, taken after the charge-off, can be reversed there. A sold loan is the
    buyer's: none of its payments can be reversed on our books."""
    if loan.status is LoanStatus.SOLD:
        raise Conflict(
            f"loan {loan.id} was sold; its payments cannot be reversed", field="payment_id"
        )
    if loan.status not in (LoanStatus.CHARGED_OFF, LoanStatus.WRITTEN_OFF):
        return
    for stored in chain:
        if stored.kind != EventType.RECOVERY.value:
            raise Conflict(
                f"loan {loan.id} is {loan.status}; payment {stored.id} was taken before the "
                "charge-off and cannot be reversed (only recoveries can)",
                field="payment_id",
            )


def _reapply(
    uow: UnitOfWork, stored: StoredPayment, reversed_id: int, on: date
) -> StoredPayment | None:
    mode = PrepaymentMode(stored.mode) if stored.mode else None
    key = f"{stored.idempotency_key}~after-reversal-{reversed_id}"
    if stored.kind == CREDIT_APPLIED:
        return _reapply_credit(uow, stored, key, on)
    payment = Payment(stored.loan_id, stored.amount, stored.value_date, key, mode)
    return _post_payment(uow, payment, on)


def _reapply_credit(
    uow: UnitOfWork, stored: StoredPayment, key: str, on: date
) -> StoredPayment | None:
    """Redo a close's credit application from whatever credit the borrower still holds.

    It was paid from the credit balance, not cash, so re-posting it as a cash payment would
    invent money; if the reversed payment was what funded the credit, nothing is applied.
    """
    loan = uow.loans.get(stored.loan_id, for_update=True)
    outcome = apply_credit(loan, stored.value_date, key)
    if outcome is None:
        return None
    entry_id = uow.ledger.post(replace(outcome.entry, business_date=on))
    uow.loans.save(outcome.loan)
    redone = replace(
        stored,
        id=0,
        amount=outcome.applied.total,
        idempotency_key=key,
        request_hash=key,
        applied=outcome.applied,
        parts=outcome.parts,
        entry_id=entry_id,
        schedule_version_before=loan.schedule_version,
    )
    return replace(redone, id=uow.payments.add(redone))


__all__ = [
    "LoanRequest",
    "LoanStatus",
    "Payment",
    "book_loan",
    "ensure_open",
    "get_loan",
    "quote",
    "quote_payoff",
    "reverse_payment",
    "take_payment",
]

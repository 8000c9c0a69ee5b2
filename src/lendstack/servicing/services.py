"""Servicing use cases, one small handler each: load, call the pure core, save, commit.

Every handler runs inside one unit of work, so a failure anywhere writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

from lendstack.core.errors import Conflict, InvariantViolation, NotFound, ValidationError
from lendstack.servicing.domain.bills import PaidBill, pay_bill
from lendstack.servicing.domain.booking import (
    Opening,
    contract_for,
    disbursement_entry,
    opening_of,
    with_id,
)
from lendstack.servicing.domain.ledger import EventType, JournalEntry
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import LoanContract, LoanState, resume_period
from lendstack.servicing.domain.payments import (
    Applied,
    InstallmentPart,
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
        return hashlib.sha256(_request_text(self).encode()).hexdigest()


_PREPAY_JSON: dict[PrepaymentMode | None, str] = {
    None: "null",
    **{m: json.dumps(m.value) for m in PrepaymentMode},
}


def _request_text(p: Payment) -> str:
    """`json.dumps([loan id, amount, date, prepayment mode])`, the text a payment's request
    hash is taken of. For the usual types it is written directly: an int's and a Decimal's
    text and an ISO date need no escaping, and each mode's JSON is fixed, so the text is the
    same (a test compares them) at a fraction of the encoder's per-call cost (one a payment)."""
    prepay = _PREPAY_JSON.get(p.prepay)
    if type(p.loan_id) is not int or type(p.amount) is not Decimal or prepay is None:
        return json.dumps([p.loan_id, str(p.amount), p.on.isoformat(), p.prepay])
    return f'[{int.__repr__(p.loan_id)}, "{p.amount!s}", "{p.on.isoformat()}", {prepay}]'


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


def opening(catalog: ProductCatalog, request: LoanRequest) -> Opening:
    """What booking `request` opens: its schedule's contract and new loan (pure, touches no
    storage). `book_loans` computes it unless the booking brings it (`Booking.opening`)."""
    schedule = quote(catalog, request)
    return opening_of(contract_for(catalog.get(request.product_id), schedule), schedule)


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

REFUSALS = (ValidationError, Conflict, NotFound)
"""What refuses one booking of a batch without failing the others (never a bug's error)."""


@dataclass(frozen=True, slots=True)
class Booking:
    """One loan to disburse (`book_loan`'s arguments)."""

    request: LoanRequest
    reference: str | None = None
    fund: FundingShares | None = None
    profile: LoanProfile | None = None
    opening: Opening | None = None
    """`opening(catalog, request)` if already computed (e.g. where the loan was decided,
    `underwriting.origination.bookable`), else None and booking computes it. It must be
    exactly that: booking trusts it, as a pure function's result, and does not re-check it."""


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
    booked = book_loans(uow, catalog, [Booking(request, reference, fund, profile)])[0]
    if isinstance(booked, Exception):
        raise booked
    return booked


def book_loans(
    uow: UnitOfWork, catalog: ProductCatalog, bookings: Sequence[Booking]
) -> list[LoanState | ValidationError | Conflict | NotFound]:
    """Disburse many loans in one transaction, each exactly as `book_loan` would, and return
    each one's loan, or the error that refused it.

    A refused booking (bad terms, a closed date, a reference used for other terms, a plan
    its `fund` refuses) writes nothing and does not stop the others. The `fund` calls run in
    the batch's order, before anything is written: a caller funding several loans from the
    same partners must let each call see the plans it already gave. Everything else is
    written with a few multi-row statements for the whole batch. The plans are written
    together, re-checked under the funders' lock: one refused there raises (a `Conflict` on
    `funding`) and the whole batch writes nothing; book its loans one at a time to find it.
    """
    results: list[LoanState | ValidationError | Conflict | NotFound | None] = []
    opened: list[tuple[int, Opening, Booking, PlanTerms | None]] = []
    first: dict[str, int] = {}  # reference -> the booking of this batch that books it
    repeats: dict[int, int] = {}
    open_dates: set[date] = set()
    with uow:
        known = uow.loans.by_references([b.reference for b in bookings if b.reference])
        for n, booking in enumerate(bookings):
            results.append(None)
            if booking.reference is not None and booking.reference in first:
                repeats[n] = first[booking.reference]
                continue
            try:
                made = booking.opening
                if made is None:
                    made = opening(catalog, booking.request)
                if (existing := _booked(known, booking.reference, made.loan.contract)) is not None:
                    results[n] = existing
                    continue
                if booking.request.start not in open_dates:
                    ensure_open(uow.calendar, booking.request.start)
                    open_dates.add(booking.request.start)
                plan = None if booking.fund is None else booking.fund()
            except REFUSALS as exc:
                results[n] = exc
                continue
            if booking.reference is not None:
                first[booking.reference] = n
            opened.append((n, made, booking, plan))
        ids = uow.loans.add_many([(o.loan, b.reference) for _, o, b, _ in opened])
        stored = [
            (n, with_id(o.loan, i), o, b, p) for (n, o, b, p), i in zip(opened, ids, strict=True)
        ]
        uow.funding.record_many([(loan.id, plan) for _, loan, _, _, plan in stored if plan])
        uow.profiles.record_many(
            [(loan.id, _with_lead(b.profile, plan)) for _, loan, _, b, plan in stored if b.profile]
        )
        uow.ledger.post_many(
            [disbursement_entry(loan, o, b.request.start) for _, loan, o, b, _ in stored]
        )
        uow.commit()
    for n, loan, *_ in stored:
        results[n] = loan
    for n, of in repeats.items():  # a reference repeated in the batch books one loan
        results[n] = results[of]
    done = [r for r in results if r is not None]
    if len(done) != len(bookings):
        raise InvariantViolation("a booking of the batch was left without a result")
    return done


def _booked(
    known: Mapping[str, LoanState], reference: str | None, contract: LoanContract
) -> LoanState | None:
    """The loan a reference already booked; for other terms, a conflict."""
    existing = None if reference is None else known.get(reference)
    if existing is not None and existing.contract != contract:
        raise Conflict(f"reference {reference!r} was used for another loan", field="reference")
    return existing


def _with_lead(profile: LoanProfile, plan: PlanTerms | None) -> LoanProfile:
    lead = profile.lead_funder_id or (lead_funder(plan.shares) if plan else None)
    return replace(profile, lead_funder_id=lead)


def get_loan(uow: UnitOfWork, loan_id: int) -> LoanState:
    with uow:
        return uow.loans.get(loan_id)


def _ensure_quotable(calendar: Calendar, on: date) -> None:
    last = calendar.last_closed()
    if last is not None and on <= last:
        raise ValidationError(f"{on} is already closed (last close {last})", field="date")


def quote_payoff(uow: UnitOfWork, loan_id: int, on: date) -> PayoffQuote:
    with uow:
        _ensure_quotable(uow.calendar, on)
        return payoff_quote(uow.loans.get(loan_id), on)


def quote_payoffs(uow: UnitOfWork, loan_ids: Sequence[int], on: date) -> dict[int, PayoffQuote]:
    """`quote_payoff` for many loans in one read; a loan no longer active (nothing to pay
    off) is left out."""
    with uow:
        _ensure_quotable(uow.calendar, on)
        loans = uow.loans.get_many(loan_ids)
        return {
            loan_id: payoff_quote(loan, on)
            for loan_id, loan in loans.items()
            if loan.status is LoanStatus.ACTIVE
        }


def _outcome(loan: LoanState, payment: Payment, reference: str) -> PaymentOutcome:
    if payment.on < loan.contract.disbursement_date:
        raise ValidationError(
            f"{payment.on} is before the loan's disbursement on {loan.contract.disbursement_date}",
            field="date",
        )
    if payment.prepay is None:
        return apply_payment(loan, payment.amount, payment.on, reference)
    return prepay(loan, payment.amount, payment.on, payment.prepay, reference)


class _Settled(Protocol):
    """What `_stored` records of a payment applied: a `PaymentOutcome` or a `PaidBill`."""

    @property
    def applied(self) -> Applied: ...
    @property
    def parts(self) -> tuple[InstallmentPart, ...]: ...
    @property
    def entry(self) -> JournalEntry: ...
    @property
    def accrued_interest(self) -> Decimal: ...
    @property
    def accrued_fee(self) -> Decimal: ...


def _stored(payment: Payment, version: int, outcome: _Settled, entry_id: int) -> StoredPayment:
    """The payment as stored, of a loan on schedule version `version` before it."""
    return StoredPayment(
        id=0,
        loan_id=payment.loan_id,
        kind="prepayment" if payment.prepay else outcome.entry.event.value,
        value_date=payment.on,
        amount=payment.amount,
        idempotency_key=payment.idempotency_key,
        request_hash=payment.fingerprint(),
        status="posted",
        applied=outcome.applied,
        parts=outcome.parts,
        entry_id=entry_id,
        schedule_version_before=version,
        mode=payment.prepay.value if payment.prepay else None,
        accrued_interest=outcome.accrued_interest,
        accrued_fee=outcome.accrued_fee,
    )


def _record(
    uow: UnitOfWork, payment: Payment, loan: LoanState, outcome: PaymentOutcome, entry_id: int
) -> StoredPayment:
    stored = _stored(payment, loan.schedule_version, outcome, entry_id)
    return replace(stored, id=uow.payments.add(stored))


def _post_payment(uow: UnitOfWork, payment: Payment, entry_date: date) -> StoredPayment:
    loan = uow.loans.get(payment.loan_id, for_update=True)
    outcome = _outcome(loan, payment, f"payment:{payment.idempotency_key}")
    entry = replace(outcome.entry, business_date=entry_date)
    entry_id = uow.ledger.post(entry)
    uow.loans.save(outcome.loan)
    return _record(uow, payment, loan, outcome, entry_id)


def _replayed(payment: Payment, existing: StoredPayment | None) -> StoredPayment | None:
    """The first result of a repeated idempotency key; a changed body conflicts."""
    if existing is not None and existing.request_hash != payment.fingerprint():
        raise Conflict(
            "this idempotency key was already used for a different payment",
            field="idempotency_key",
        )
    return existing


def take_payment(uow: UnitOfWork, payment: Payment) -> StoredPayment:
    """Post a payment once: a repeated key returns the first result, a changed body conflicts."""
    with uow:
        existing = _replayed(payment, uow.payments.by_key(payment.idempotency_key))
        if existing is not None:
            return existing
        ensure_open(uow.calendar, payment.on)
        stored = _post_payment(uow, payment, payment.on)
        uow.commit()
    return stored


def take_payments(uow: UnitOfWork, batch: Sequence[Payment]) -> tuple[StoredPayment, ...]:
    """Post many payments in one transaction, exactly as `take_payment` one after another.

    A day's payments from a collection file or the simulator: the loans are read and written,
    and the entries and payments inserted, in a few statements for the whole batch instead of
    a few per payment; a loan paid twice sees its first payment. All or nothing: a payment
    that fails rolls the whole batch back, and the error's field says which one it was.
    Returns each payment's stored result, in the batch's order.

    A batch of new payments each of one loan's whole bill reads and writes the loans as
    bills, not whole states (`_bills_paid`); it books the same.
    """
    with uow:
        known = uow.payments.by_keys([p.idempotency_key for p in batch])
        for on in sorted({p.on for p in batch}):
            ensure_open(uow.calendar, on)
        new = _bills_paid(uow, batch, known)
        if new is None:
            new = _payments_applied(uow, batch, known)
        entry_ids = uow.ledger.post_many([entry for _, entry in new])
        stored = [_numbered(s, 0, e) for (s, _), e in zip(new, entry_ids, strict=True)]
        ids = uow.payments.add_many(stored)
        uow.commit()
    known.update(
        (s.idempotency_key or "", _numbered(s, i, s.entry_id))
        for s, i in zip(stored, ids, strict=True)
    )
    return tuple(known[p.idempotency_key] for p in batch)


_Unposted = list[tuple[StoredPayment, JournalEntry]]
"""A batch's new payments as stored but for their ids, each with the entry to post."""


def _bills_paid(
    uow: UnitOfWork, batch: Sequence[Payment], known: Mapping[str, StoredPayment]
) -> _Unposted | None:
    """The batch applied with its loans saved, if every payment in it is new and pays exactly
    its loan's whole bill, one payment a loan: read and written as `Bill`s (`pay_bill`), not
    whole loan states. None, having written nothing, for any other batch."""
    loan_ids = {p.loan_id for p in batch}
    keys = {p.idempotency_key for p in batch}
    if known or len(loan_ids) < len(batch) or len(keys) < len(batch):
        return None
    if any(p.prepay is not None for p in batch):
        return None
    bills = uow.loans.bills(loan_ids)
    paid: list[PaidBill] = []
    for payment in batch:
        bill = bills.get(payment.loan_id)
        reference = f"payment:{payment.idempotency_key}"
        done = None if bill is None else pay_bill(bill, payment.amount, payment.on, reference)
        if done is None:
            return None
        paid.append(done)
    uow.loans.save_bills(paid)
    return [
        (_stored(p, d.schedule_version, d, 0), d.entry) for p, d in zip(batch, paid, strict=True)
    ]


def _payments_applied(
    uow: UnitOfWork, batch: Sequence[Payment], known: dict[str, StoredPayment]
) -> _Unposted:
    """The batch's new payments applied to whole loan states, in order, and the loans saved;
    a repeated key is answered from `known` (which takes each new payment in turn)."""
    loans = _payment_loans(uow, batch)
    new: list[tuple[Payment, PaymentOutcome, StoredPayment]] = []
    for n, payment in enumerate(batch):
        try:
            if _replayed(payment, known.get(payment.idempotency_key)) is not None:
                continue
            loan = loans[payment.loan_id]
            outcome = _outcome(loan, payment, f"payment:{payment.idempotency_key}")
        except (Conflict, ValidationError) as exc:
            raise type(exc)(exc.message, field=f"payments[{n}].{exc.field}") from exc
        loans[payment.loan_id] = outcome.loan
        known[payment.idempotency_key] = unposted = _stored(
            payment, loan.schedule_version, outcome, 0
        )
        new.append((payment, outcome, unposted))
    uow.loans.save_many([o.loan for _, o, _ in new])
    return [(s, _dated(o.entry, p.on)) for p, o, s in new]


def _numbered(s: StoredPayment, payment_id: int, entry_id: int) -> StoredPayment:
    """`replace(s, id=payment_id, entry_id=entry_id)`, built whole: a batch makes two per
    payment, and `replace` costs several times a constructor call."""
    return StoredPayment(
        id=payment_id,
        loan_id=s.loan_id,
        kind=s.kind,
        value_date=s.value_date,
        amount=s.amount,
        idempotency_key=s.idempotency_key,
        request_hash=s.request_hash,
        status=s.status,
        applied=s.applied,
        parts=s.parts,
        entry_id=entry_id,
        schedule_version_before=s.schedule_version_before,
        mode=s.mode,
        accrued_interest=s.accrued_interest,
        accrued_fee=s.accrued_fee,
    )


def _payment_loans(uow: UnitOfWork, batch: Sequence[Payment]) -> dict[int, LoanState]:
    """The batch's loans, locked: whole where a prepayment re-issues the schedule, else with
    only the installments a regular payment reads (`Loans.for_payment`)."""
    whole = {p.loan_id for p in batch if p.prepay is not None}
    return uow.loans.for_payment([p.loan_id for p in batch], whole)


def _dated(entry: JournalEntry, on: date) -> JournalEntry:
    """The entry on business date `on` (a payment's entry usually is already)."""
    return entry if entry.business_date == on else replace(entry, business_date=on)


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
    "opening",
    "quote",
    "quote_payoff",
    "reverse_payment",
    "take_payment",
]

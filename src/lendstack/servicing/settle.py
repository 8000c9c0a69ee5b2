"""The settlement use case: close a loan for a negotiated amount, once (see
`domain.settlement` for the arithmetic and the ledger entry).

The cash is stored as a payment of kind "settlement" holding what it settled, so the funder
sub-ledgers split it like any payment; the forgiven part is recorded beside it, and each
funder's remaining principal position is written off with it (`Settlements.record`). A
settlement cannot be reversed: a mistaken one is corrected by a new entry, never by reopening
a loan whose borrower was told it is closed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from lendstack.core.errors import Conflict, NotFound
from lendstack.servicing.domain.settlement import Waived, settle
from lendstack.servicing.ports import StoredPayment, UnitOfWork
from lendstack.servicing.services import ensure_open

DEFAULT_MAX_DISCOUNT = Decimal("0.50")
"""The largest share of the payoff a collector may forgive without a higher authority: an
internal policy value (no rule caps it), overridable per call."""


@dataclass(frozen=True, slots=True)
class Settlement:
    loan_id: int
    amount: Decimal
    on: date
    idempotency_key: str
    max_discount: Decimal = DEFAULT_MAX_DISCOUNT

    def fingerprint(self) -> str:
        body = ["settlement", self.loan_id, str(self.amount), self.on.isoformat()]
        return hashlib.sha256(json.dumps(body).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Settled:
    payment: StoredPayment
    payoff: Decimal
    waived: Waived
    replayed: bool = False


def settle_loan(uow: UnitOfWork, settlement: Settlement) -> Settled:
    """Book a settlement once: a repeated key returns the first one, a changed body conflicts."""
    with uow:
        existing = uow.payments.by_key(settlement.idempotency_key)
        if existing is not None:
            return _replayed(uow, existing, settlement)
        ensure_open(uow.calendar, settlement.on)
        loan = uow.loans.get(settlement.loan_id, for_update=True)
        reference = f"settlement:{settlement.idempotency_key}"
        outcome = settle(loan, settlement.amount, settlement.on, reference, settlement.max_discount)
        entry_id = uow.ledger.post(outcome.entry)
        uow.loans.save(outcome.loan)
        stored = StoredPayment(
            id=0, loan_id=loan.id, kind="settlement", value_date=settlement.on,
            amount=settlement.amount, idempotency_key=settlement.idempotency_key,
            request_hash=settlement.fingerprint(), status="posted", applied=outcome.paid,
            parts=outcome.parts, entry_id=entry_id, schedule_version_before=loan.schedule_version,
            mode=None, accrued_interest=outcome.accrued_interest, accrued_fee=outcome.accrued_fee,
        )  # fmt: skip
        payment_id = uow.payments.add(stored)
        uow.loan_settlements.record(
            loan.id, payment_id, settlement.on, outcome.payoff, settlement.amount, outcome.waived
        )
        uow.commit()
    return Settled(replace(stored, id=payment_id), outcome.payoff, outcome.waived)


def _replayed(uow: UnitOfWork, existing: StoredPayment, settlement: Settlement) -> Settled:
    if existing.kind != "settlement" or existing.request_hash != settlement.fingerprint():
        raise Conflict(
            "this idempotency key was already used for a different payment",
            field="idempotency_key",
        )
    found = uow.loan_settlements.get(existing.loan_id)
    if found is None:
        raise NotFound(f"no settlement of loan {existing.loan_id}", field="loan_id")
    payoff, waived = found
    return Settled(existing, payoff, waived, replayed=True)


__all__ = ["DEFAULT_MAX_DISCOUNT", "Settled", "Settlement", "settle_loan"]

"""Servicing routes: look at a loan, take a payment, quote a payoff.

Endpoints are `async def` and call the synchronous services inline. A SQLite read or a
payment write takes well under a millisecond, which is cheaper than the two thread-pool hops
a plain `def` endpoint pays (see docs/api.md for the measurement). Scale out with workers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from lendstack.api.auth import Principal, require
from lendstack.api.deps import UowDep
from lendstack.api.fields import Amount, IsoDate
from lendstack.api.problems import responses
from lendstack.api.render import DecimalJSONResponse, loan_json, payment_json, payoff_json
from lendstack.core.errors import NotFound
from lendstack.servicing import Payment, PrepaymentMode, get_loan, quote_payoff, take_payment
from lendstack.storage.apikeys import Role
from lendstack.storage.repositories import SqlUnitOfWork

LoanId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Loan id.")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="Unique per payment. A retry with the same key and body replays the result.",
    ),
]
Reader = Annotated[Principal, Depends(require(Role.RISK, Role.REGULATOR, Role.PARTNER))]
Operator = Annotated[Principal, Depends(require(Role.RISK))]

router = APIRouter(prefix="/v1", tags=["servicing"], default_response_class=DecimalJSONResponse)


class PaymentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount
    date: IsoDate = Field(description="Value date: the open business date.")
    prepay: PrepaymentMode | None = Field(
        default=None, description="Prepay ahead of schedule, and how; null for a due payment."
    )


def _visible(principal: Principal, loan_id: int) -> None:
    """Partner keys see only their bank's loans; none belong to a partner until co-lending."""
    if principal.role is Role.PARTNER:
        raise NotFound(f"no loan {loan_id}", field="loan_id")


@router.get("/loans/{loan_id}", responses=responses(401, 403, 404, 422))
async def show_loan(loan_id: LoanId, principal: Reader, uow: UowDep) -> DecimalJSONResponse:
    """Contract, balances, days past due, risk class and schedule (as `lendstack loan show`)."""
    _visible(principal, loan_id)
    return DecimalJSONResponse(loan_json(get_loan(uow, loan_id)))


@router.get("/loans/{loan_id}/payoff-quote", responses=responses(401, 403, 404, 422))
async def payoff_quote(
    loan_id: LoanId,
    principal: Reader,
    uow: UowDep,
    on: Annotated[IsoDate, Query(alias="date", description="Payoff date, YYYY-MM-DD.")],
) -> DecimalJSONResponse:
    """What it takes to close the loan on `date`."""
    _visible(principal, loan_id)
    return DecimalJSONResponse(payoff_json(quote_payoff(uow, loan_id, on)))


def _seen(uow: SqlUnitOfWork, key: str) -> bool:
    with uow:
        return uow.payments.by_key(key) is not None


@router.post(
    "/loans/{loan_id}/payments",
    status_code=201,
    responses={
        200: {"description": "A replay: this key and body were already posted; nothing new."},
        **responses(401, 403, 404, 409, 422),
    },
)
async def post_payment(
    loan_id: LoanId,
    body: PaymentBody,
    key: IdempotencyKey,
    _: Operator,
    uow: UowDep,
) -> DecimalJSONResponse:
    """Post a payment or prepayment once. Same key and body: 200 and the stored payment, with
    `Idempotent-Replayed: true`. Same key, different body: 409, and nothing is written."""
    payment = Payment(loan_id, body.amount, body.date, key, body.prepay)
    replay = _seen(uow, key)
    try:
        stored = take_payment(uow, payment)
    except IntegrityError:
        # A concurrent request with this key committed first (unique key); answer as its replay.
        replay, stored = True, take_payment(uow, payment)
    if replay:
        headers = {"Idempotent-Replayed": "true"}
        return DecimalJSONResponse(payment_json(stored), status_code=200, headers=headers)
    return DecimalJSONResponse(payment_json(stored), status_code=201)


__all__ = ["PaymentBody", "router"]

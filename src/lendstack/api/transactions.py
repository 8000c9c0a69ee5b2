"""Use-of-funds feed: `POST /v1/transactions` (docs/use-of-funds.md).

The card processor (or the lender's account system) posts debits from disbursement accounts,
each with a merchant category. The transaction id is the idempotency key: posting the same
transactions again stores nothing and answers 200 with `Idempotent-Replayed: true`; reusing
an id with different content is 409. Every record is checked before anything is written; a
bad one is 422 naming `transactions[i].<field>`, an unknown loan 404. Stored transactions
flag loans whose funds reached a forbidden category, and the flags raise alerts, as the
CLI's `lendstack risk transactions ingest` does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from lendstack.api.auth import Principal, require
from lendstack.api.deps import EngineDep
from lendstack.api.problems import responses
from lendstack.api.render import DecimalJSONResponse
from lendstack.risk.surveillance import default_pack, parse_transaction
from lendstack.storage.apikeys import Role
from lendstack.storage.use_of_funds import SqlUseOfFunds

MAX_BATCH = 1000
Operator = Annotated[Principal, Depends(require(Role.RISK))]

router = APIRouter(prefix="/v1", tags=["risk"], default_response_class=DecimalJSONResponse)


class TransactionBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transactions: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=(
            "Each: transaction_id, loan_id, timestamp (ISO 8601 with offset), amount (decimal "
            "string, CNY), merchant_category (gold_trading, fx, securities_brokerage, futures, "
            "crypto, lottery, gambling, real_estate, consumption, education, medical, travel, "
            "utilities, transfer, other)."
        ),
    )


@router.post(
    "/transactions",
    status_code=201,
    responses={
        200: {"description": "A replay: every transaction was already stored; nothing new."},
        **responses(401, 403, 404, 409, 422),
    },
)
async def post_transactions(
    body: TransactionBatch, _: Operator, engine: EngineDep
) -> DecimalJSONResponse:
    """Store disbursement-account transactions and flag loans whose funds were misused."""
    txs = [parse_transaction(raw, f"transactions[{i}]") for i, raw in enumerate(body.transactions)]
    rows = [f"transactions[{i}]" for i in range(len(txs))]
    done = SqlUseOfFunds(engine, default_pack()).ingest(txs, "api", rows)
    if done.inserted == 0:
        headers = {"Idempotent-Replayed": "true"}
        return DecimalJSONResponse(done.as_json(), status_code=200, headers=headers)
    return DecimalJSONResponse(done.as_json(), status_code=201)


__all__ = ["TransactionBatch", "router"]

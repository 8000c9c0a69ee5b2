"""Partner-scoped routes: a co-lending bank's exposure, its loans and its settlement statements.

Who sees what:
- a partner key sees only its own bank. Any other id, stored or not, is the same 404 as an id
  that does not exist, so a bank cannot learn which other banks co-lend here;
- risk and regulator keys see every partner (regulators read only, as everywhere);
- channel keys are 403, as on every route their role may not use.
An id is checked for visibility before anything else about the request is looked at, so a
partner key gets the same 404 for another bank whatever the date or cursor.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from sqlalchemy import Engine

from lendstack.api.auth import Principal, require
from lendstack.api.deps import EngineDep
from lendstack.api.fields import IsoDate
from lendstack.api.problems import responses
from lendstack.api.render import DecimalJSONResponse
from lendstack.core.errors import NotFound
from lendstack.core.money import from_fen
from lendstack.storage.apikeys import Role
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import SqlFunding
from lendstack.storage.settlements import PartnerLoan, SqlPartnerLoans, SqlSettlements

PartnerId = Annotated[str, Path(min_length=1, max_length=64, description="Partner (funder) id.")]
Reader = Annotated[Principal, Depends(require(Role.RISK, Role.REGULATOR, Role.PARTNER))]

router = APIRouter(
    prefix="/v1/partners", tags=["partners"], default_response_class=DecimalJSONResponse
)


def visible(principal: Principal, partner_id: str) -> None:
    """A partner key's view stops at its own bank: anything else does not exist for it."""
    if principal.role is Role.PARTNER and principal.partner_id != partner_id:
        raise NotFound(f"no partner {partner_id!r}", field="partner_id")


def _known(engine: Engine, partner_id: str) -> None:
    if not SqlPartnerLoans(engine).exists(partner_id):
        raise NotFound(f"no partner {partner_id!r}", field="partner_id")


def loan_json(loan: PartnerLoan) -> dict[str, Any]:
    return {
        "loan_id": loan.loan_id,
        "share": loan.share,
        "principal": from_fen(loan.principal_fen),
        "status": loan.status,
        "dpd": loan.dpd,
        "bucket": loan.bucket,
    }


@router.get("/{partner_id}/exposure", responses=responses(401, 403, 404, 422))
async def exposure(
    partner_id: PartnerId,
    principal: Reader,
    engine: EngineDep,
    as_of: Annotated[
        IsoDate | None,
        Query(description="Loans disbursed on or before this date; default the last close."),
    ] = None,
) -> DecimalJSONResponse:
    """The partner's co-lent balance, rule 2.2 / 2.3 limits and headroom, loans and DPD mix."""
    visible(principal, partner_id)
    _known(engine, partner_id)
    day = as_of if as_of is not None else SqlCloseStore(engine).last_closed()
    report = SqlFunding(engine).exposures(day)
    found = next((p for p in report.partners if p.funder.id == partner_id), None)
    if found is None:
        raise NotFound(f"no partner {partner_id!r}", field="partner_id")
    return DecimalJSONResponse({"as_of": report.as_of, **found.as_json()})


@router.get("/{partner_id}/loans", responses=responses(401, 403, 404, 422))
async def partner_loans(
    partner_id: PartnerId,
    principal: Reader,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Loans per page.")] = 100,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Cursor: the `next_after` of the last page.")
    ] = 0,
) -> DecimalJSONResponse:
    """Loans the partner co-funds, by id: share in force, its principal position, status, DPD."""
    visible(principal, partner_id)
    _known(engine, partner_id)
    page = SqlPartnerLoans(engine).page(partner_id, after=after, limit=limit)
    body = {
        "partner_id": partner_id,
        "loans": [loan_json(loan) for loan in page.loans],
        "next_after": page.next_after,
    }
    return DecimalJSONResponse(body)


@router.get(
    "/{partner_id}/settlements/{date}",
    responses=responses(401, 403, 404, 409, 422),
    response_class=Response,
)
async def settlement(
    partner_id: PartnerId,
    principal: Reader,
    engine: EngineDep,
    date: Annotated[IsoDate, Path(description="A closed business date, YYYY-MM-DD.")],
) -> Response:
    """The date's settlement statement: the bytes of the JSON file `lendstack funding settle`
    writes, with its checksum. A date not closed yet is 409."""
    visible(principal, partner_id)
    statement = SqlSettlements(engine).statement(date, partner_id)
    return Response(statement.json_bytes(), media_type="application/json")


__all__ = ["loan_json", "router", "visible"]

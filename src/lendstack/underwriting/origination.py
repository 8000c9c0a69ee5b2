"""From an accepted offer to a booked loan: the hand-off from underwriting to servicing.

The loan is booked with exactly the offer's terms (product, amount, term, contract rate and
fee rate, starting on the application date) and carries the decision id as its reference,
so booking the same decision twice returns the same loan and every loan traces back to the
decision, rule pack and model that approved it.

A decision that carries a funding plan is booked with its plan, in the same transaction. The
plan was made over cached exposures, so booking re-checks it against the exact book first
(`FundingDesk.confirm`): if it now breaks a rule the loan is funded afresh online, and if
nothing is feasible the booking is refused with a `Conflict` ("no funding capacity within
partner limits") and nothing is written.

Every loan booked here also gets its profile (channel, province, purpose, the PD at decision
and the plan's lead funder) in the booking's transaction: the dimensions the portfolio panel
(`lendstack.risk.panel`) breaks measures down by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from lendstack.core.errors import Conflict, InvariantViolation, NotFound, ValidationError
from lendstack.funding import FundingPlan
from lendstack.funding import LoanRequest as FundingRequest
from lendstack.servicing import (
    Booking,
    LoanProfile,
    LoanRequest,
    LoanState,
    PlanTerms,
    ProductCatalog,
    UnitOfWork,
    book_loans,
)
from lendstack.underwriting.decision import GRANTED
from lendstack.underwriting.funding_desk import record_request, recorded_plan

BOOKABLE = GRANTED


class PlanCheck(Protocol):
    """What booking needs from the funding desk (`FundingDesk.confirm`)."""

    def confirm(self, request: FundingRequest, plan: FundingPlan) -> FundingPlan: ...


def loan_request(record: Mapping[str, Any]) -> LoanRequest:
    """The servicing request that reproduces the decision's offer."""
    decision = record["decision"]
    if decision["outcome"] not in BOOKABLE or decision["offer"] is None:
        raise Conflict(
            f"decision {record['decision_id']} is {decision['outcome']}: nothing to book",
            field="decision_id",
        )
    offer = decision["offer"]
    fees = offer["fees"]
    guarantee_fee = Decimal(fees.get("guarantee_fee_rate", "0"))
    return LoanRequest(
        product_id=offer["product_id"],
        amount=Decimal(offer["amount"]),
        term_months=int(offer["term_months"]),
        rate=Decimal(offer["annual_interest_rate"]),
        start=date.fromisoformat(record["application"]["application_date"]),
        fee_rate=Decimal(fees["per_period_fee_rate"]) - guarantee_fee,
        guarantee_fee_rate=guarantee_fee,
    )


def loan_profile(record: Mapping[str, Any]) -> LoanProfile:
    """The analytics dimensions the decision fixes: channel, province, purpose and its PD."""
    application, score = record["application"], record["decision"]["score"]
    return LoanProfile(
        channel=str(application["channel"]),
        province=str(application["applicant"]["province"]),
        purpose=str(application["loan"]["purpose"]),
        decision_id=str(record["decision_id"]),
        pd_origination=None if score is None else float(score["pd"]),
    )


def originate(
    uow: UnitOfWork,
    catalog: ProductCatalog,
    record: Mapping[str, Any],
    desk: PlanCheck | None = None,
) -> LoanState:
    """Book the loan a decision offered, with its funding plan if it has one; idempotent on
    the decision id (a booked decision returns its loan and is not funded again). The loan's
    profile (`loan_profile`) is written in the same transaction."""
    booked = originate_many(uow, catalog, [record], desk)[0]
    if isinstance(booked, Exception):
        raise booked
    return booked


def originate_many(
    uow: UnitOfWork,
    catalog: ProductCatalog,
    records: Sequence[Mapping[str, Any]],
    desk: PlanCheck | None = None,
) -> list[LoanState | ValidationError | Conflict | NotFound]:
    """`originate` for a day's granted decisions in one transaction (`book_loans`): each
    one's loan, or what refused it (nothing is written for a refused one). `desk.confirm`
    is called in the records' order, before anything is written, so it must see the plans it
    confirmed earlier in the batch (`FundingDesk.batch` does)."""
    return book_loans(uow, catalog, [_booking(record, desk) for record in records])


def _booking(record: Mapping[str, Any], desk: PlanCheck | None) -> Booking:
    request = loan_request(record)
    plan = recorded_plan(record)
    reference, profile = str(record["decision_id"]), loan_profile(record)
    if plan is None:
        return Booking(request, reference, None, profile)
    decided = plan

    def terms() -> PlanTerms:
        if desk is None:
            raise InvariantViolation(
                f"decision {record['decision_id']} carries a funding plan: book it with the "
                "funding desk, which re-checks the plan"
            )
        # A loan quoted without a guarantee fee is never re-allocated to a guaranteed bank.
        request = replace(
            record_request(record), guarantee_fee_allowed=bool(decided.guarantee_fee_rate)
        )
        return plan_terms(desk.confirm(request, decided), decided)

    return Booking(request, reference, terms, profile)


def plan_terms(booked: FundingPlan, decided: FundingPlan) -> PlanTerms:
    """What booking records for the plan the desk confirmed. The borrower was quoted the
    decided plan's guarantee fee, so a plan re-allocated at booking must charge the same fee
    or the loan is not booked (the applicant is decided again)."""
    if booked.guarantee_fee_rate != decided.guarantee_fee_rate:
        raise Conflict(
            f"funding changed since the decision: its guarantee fee would be "
            f"{booked.guarantee_fee_rate}, the offer quoted {decided.guarantee_fee_rate}; "
            "decide the application again",
            field="funding",
        )
    rates = {s.funder_id: s.guarantee_fee_rate for s in booked.shares if s.guarantee_fee_rate}
    return PlanTerms(booked.share_map(), rates)

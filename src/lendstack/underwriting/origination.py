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
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from lendstack.core.errors import Conflict, InvariantViolation, NotFound, ValidationError
from lendstack.core.records import field_values
from lendstack.funding import Exclusion, FundingPlan, FundingShare
from lendstack.funding import LoanRequest as FundingRequest
from lendstack.servicing import (
    Booking,
    LoanProfile,
    LoanRequest,
    LoanState,
    Opening,
    PlanTerms,
    ProductCatalog,
    UnitOfWork,
    book_loans,
    opening,
)
from lendstack.underwriting.decision import GRANTED
from lendstack.underwriting.funding_desk import recorded_plan

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
    return book_bookables(uow, catalog, [bookable(catalog, record) for record in records], desk)


def book_bookables(
    uow: UnitOfWork,
    catalog: ProductCatalog,
    bookables: Sequence[Bookable],
    desk: PlanCheck | None = None,
) -> list[LoanState | ValidationError | Conflict | NotFound]:
    """`originate_many` of decisions already made ready to book (`bookable`, perhaps in the
    process that decided them): only what depends on the book is done here, re-checking each
    plan against the day's exposures (`desk.confirm`) and writing."""
    return book_loans(uow, catalog, [_booking(b, desk) for b in bookables])


@dataclass(frozen=True, slots=True)
class Bookable:
    """A granted decision made ready to book: everything its booking takes from the decision,
    read from its stored record once (`bookable`).

    None of it depends on the book, so it can be made where the decision is made (the
    simulator's side process makes it with the decision, `underwriting.batch`), leaving the
    booking only the plan's re-check against the day's exposures and the writes. It pickles
    as plain values (`__reduce__`): pickle's own restore of frozen records, field by field,
    cost more than reading the record again.
    """

    reference: str
    """The decision id: the loan's reference, and the funding request's loan id."""
    request: LoanRequest
    profile: LoanProfile
    apr: Decimal
    """The offer's APR (IRR), which the funding rules check."""
    plan: FundingPlan | None
    """The plan the decision carries, to re-check at booking; None without one."""
    opening: Opening | None
    """`servicing.opening(catalog, request)`, or None if it refused the request (booking
    computes it again and reports the refusal for this loan alone)."""

    def funding_request(self, plan: FundingPlan) -> FundingRequest:
        """What the desk re-checks `plan` for: `funding_desk.record_request` of the record
        (a test compares them). A loan quoted without a guarantee fee is never re-allocated
        to a guaranteed bank."""
        request, profile = self.request, self.profile
        return FundingRequest(
            loan_id=self.reference,
            amount=request.amount,
            pd=profile.pd_origination,  # type: ignore[arg-type]  # a plan implies a score
            apr=self.apr,
            province=profile.province,
            product=request.product_id,
            term=request.term_months,
            purpose=profile.purpose,
            day=request.start,
            guarantee_fee_allowed=bool(plan.guarantee_fee_rate),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        plan = self.plan
        packed_plan = None if plan is None else (
            plan.loan_id, plan.outcome, tuple(map(_SHARE, plan.shares)), plan.annual_cost,
            plan.reason, tuple(map(_EXCLUSION, plan.exclusions)),
        )  # fmt: skip
        return (
            _unpacked,
            (self.reference, _REQUEST(self.request), _PROFILE(self.profile), self.apr,
             packed_plan, self.opening),
        )  # fmt: skip


_REQUEST, _PROFILE = field_values(LoanRequest), field_values(LoanProfile)
_SHARE, _EXCLUSION = field_values(FundingShare), field_values(Exclusion)


def _unpacked(
    reference: str,
    request: tuple[Any, ...],
    profile: tuple[Any, ...],
    apr: Decimal,
    plan: tuple[Any, ...] | None,
    made: Opening | None,
) -> Bookable:
    funding = None
    if plan is not None:
        loan_id, outcome, shares, cost, reason, exclusions = plan
        funding = FundingPlan(
            loan_id, outcome, tuple([FundingShare(*s) for s in shares]), cost, reason,
            tuple([Exclusion(*e) for e in exclusions]),
        )  # fmt: skip
    return Bookable(reference, LoanRequest(*request), LoanProfile(*profile), apr, funding, made)


def bookable(catalog: ProductCatalog, record: Mapping[str, Any]) -> Bookable:
    """A granted decision's stored record, ready to book; `Conflict` for a decision that
    offers nothing to book."""
    request = loan_request(record)
    plan = recorded_plan(record)
    try:
        made: Opening | None = opening(catalog, request)
    except (ValidationError, Conflict, NotFound):
        made = None  # refused: booking computes it again, and refuses this loan alone
    apr = Decimal(record["decision"]["offer"]["apr_irr"])
    return Bookable(str(record["decision_id"]), request, loan_profile(record), apr, plan, made)


def _booking(b: Bookable, desk: PlanCheck | None) -> Booking:
    decided = b.plan
    if decided is None:
        return Booking(b.request, b.reference, None, b.profile, b.opening)

    def terms() -> PlanTerms:
        if desk is None:
            raise InvariantViolation(
                f"decision {b.reference} carries a funding plan: book it with the "
                "funding desk, which re-checks the plan"
            )
        return plan_terms(desk.confirm(b.funding_request(decided), decided), decided)

    return Booking(b.request, b.reference, terms, b.profile, b.opening)


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

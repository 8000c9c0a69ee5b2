"""What a decision is: an outcome, its reasons, and the offer the borrower must be shown.

A decline is a value, not an exception. Everything here is JSON-able through `as_json`, which
is what the audit log stores, the API returns and replay compares. A granted decision may carry
the co-lending `FundingPlan` chosen for its offer (`funding_desk.apply_funding`); its JSON is
`plan_json`, and `plan_from_json` reads a recorded one back exactly (replay re-applies it).
The enums are StrEnums, written as `str(member)` (their value, without `.value`'s descriptor
calls: every decision writes a few dozen).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from lendstack.core.rates import AprDisclosure
from lendstack.funding import Exclusion, FundingPlan, FundingShare
from lendstack.funding import Outcome as FundingOutcome
from lendstack.funding import Rule as FundingRule
from lendstack.servicing import RepaymentMethod, Schedule
from lendstack.underwriting.pricing import Price


class Outcome(StrEnum):
    APPROVE = "APPROVE"
    COUNTER_OFFER = "COUNTER_OFFER"
    DECLINE = "DECLINE"
    REFER = "REFER"


GRANTED: frozenset[str] = frozenset({Outcome.APPROVE, Outcome.COUNTER_OFFER})
"""Outcomes that grant credit: they carry an offer, count as exposure and can be booked.
(StrEnum members equal their strings, so stored outcomes test against this directly.)"""


class ReasonSource(StrEnum):
    POLICY = "policy"
    RULE = "rule"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: str
    source: ReasonSource
    rule_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "text": self.text, "source": str(self.source)}
        if self.rule_id:
            out["rule_id"] = self.rule_id
        return out


class LimitSource(StrEnum):
    REGULATORY = "regulatory"
    AFFORDABILITY = "affordability"
    DEBT_SERVICE_RULE = "debt_service_rule"
    PD_CURVE = "pd_curve"
    PRODUCT = "product"


@dataclass(frozen=True, slots=True)
class CreditLimit:
    """The minimum of its candidates; `binding` says which one set it."""

    amount: Decimal
    binding: LimitSource
    candidates: tuple[tuple[LimitSource, Decimal, str | None], ...]
    """(source, amount, rule id if a rule set it)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "amount": str(self.amount),
            "binding": str(self.binding),
            "candidates": [
                {"source": str(s), "amount": str(a), **({"rule_id": r} if r else {})}
                for s, a, r in self.candidates
            ],
        }


@dataclass(frozen=True, slots=True)
class Offer:
    """The disclosure the borrower must see before signing (PBOC 〔2021〕 No. 3)."""

    product_id: str
    schedule: Schedule
    apr: AprDisclosure
    monthly_burden: Decimal
    """Largest monthly installment (for bullet and interest-first: total repaid / months)."""
    guarantee_fee_rate: Decimal = Decimal(0)
    """The part of the schedule's per-period fee rate that is the co-lenders' guarantee fee
    (REGULATION.md 2.8); the rest is the product's own fee."""

    @property
    def amount(self) -> Decimal:
        return self.schedule.terms.principal

    @property
    def term_months(self) -> int:
        return self.schedule.terms.term_months

    @property
    def method(self) -> RepaymentMethod:
        return self.schedule.terms.method

    def as_json(self) -> dict[str, Any]:
        s, t = self.schedule, self.schedule.terms
        return {
            "product_id": self.product_id,
            "amount": str(self.amount),
            "term_months": self.term_months,
            "repayment_method": str(self.method),
            "annual_interest_rate": str(t.annual_rate),
            "apr_irr": str(self.apr.apr_irr),
            "apr_effective": str(self.apr.apr_effective),
            "apr_simple": str(self.apr.apr_simple),
            "fees": self._fees_json(),
            "total_interest": str(s.total_interest),
            "total_cost": str(s.total_cost),
            "total_repayment": str(t.principal + s.total_interest + s.total_fees),
            "net_disbursement": str(s.net_disbursement),
            "monthly_burden": str(self.monthly_burden),
            "schedule": [
                {
                    "number": i.number,
                    "due_date": i.due_date.isoformat(),
                    "principal": str(i.principal),
                    "interest": str(i.interest),
                    "fee": str(i.fee),
                    "total": str(i.total),
                }
                for i in s.installments
            ],
        }

    def _fees_json(self) -> dict[str, str]:
        """Per-period fee rate (all of it), and its guarantee part only when there is one, so
        offers made before guarantee fees were priced read back to the same JSON."""
        s = self.schedule
        out = {
            "per_period_fee_rate": str(s.terms.fee_rate),
            "per_period_fees_total": str(s.total_fees),
            "upfront_fee": str(s.upfront_fee),
        }
        if self.guarantee_fee_rate:
            out["guarantee_fee_rate"] = str(self.guarantee_fee_rate)
        return out


@dataclass(frozen=True, slots=True)
class Score:
    pd: float
    points: float

    def as_json(self) -> dict[str, Any]:
        return {"pd": round(self.pd, 10), "points": round(self.points, 4)}


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer. Rule results are kept whole: replay and backtests compare them."""

    outcome: Outcome
    reasons: tuple[Reason, ...]
    offer: Offer | None
    score: Score | None
    price: Price | None
    limit: CreditLimit | None
    rule_results: tuple[dict[str, Any], ...]
    bindings: tuple[tuple[str, str], ...]
    """(what was capped, rule id) for every rule value that bound this decision."""
    funding: FundingPlan | None = None
    """The co-lending plan sought for the offer; None when no funding was sought (no funding
    desk, or nothing granted). The key is then absent from the JSON, as in older records."""

    def as_json(self) -> dict[str, Any]:
        out = {
            "outcome": str(self.outcome),
            "reasons": [r.as_json() for r in self.reasons],
            "offer": None if self.offer is None else self.offer.as_json(),
            "score": None if self.score is None else self.score.as_json(),
            "price": None if self.price is None else self.price.as_json(),
            "limit": None if self.limit is None else self.limit.as_json(),
            "rule_results": list(self.rule_results),
            "bindings": dict(self.bindings),
        }
        if self.funding is not None:
            out["funding"] = plan_json(self.funding)
        return out


def plan_json(plan: FundingPlan) -> dict[str, Any]:
    """A funding plan as decimal strings; an unfunded one says why and what excluded whom."""
    out: dict[str, Any] = {
        "outcome": str(plan.outcome),
        "shares": [_share_json(s) for s in plan.shares],
        "annual_cost": str(plan.annual_cost),
    }
    if not plan.funded:
        out["reason"] = plan.reason
        out["exclusions"] = [
            {"funder_id": e.funder_id, "rule": e.rule.value} for e in plan.exclusions
        ]
    return out


def _share_json(share: FundingShare) -> dict[str, str]:
    """One funder's share; the guarantee fee only when there is one, so records made before
    guarantee fees were priced read back to the same JSON."""
    out = {"funder_id": share.funder_id, "share": str(share.share), "amount": str(share.amount)}
    if share.guarantee_fee_rate:
        out["guarantee_fee_rate"] = str(share.guarantee_fee_rate)
    return out


def plan_from_json(data: Mapping[str, Any], loan_id: str) -> FundingPlan:
    """The plan `plan_json` wrote; `plan_json(plan_from_json(x, id)) == x` for recorded JSON."""
    shares = tuple(
        FundingShare(
            s["funder_id"],
            Decimal(s["share"]),
            Decimal(s["amount"]),
            Decimal(s.get("guarantee_fee_rate", "0")),
        )
        for s in data["shares"]
    )
    exclusions = tuple(
        Exclusion(e["funder_id"], FundingRule(e["rule"])) for e in data.get("exclusions", ())
    )
    return FundingPlan(
        loan_id,
        FundingOutcome(data["outcome"]),
        shares,
        Decimal(data["annual_cost"]),
        data.get("reason", ""),
        exclusions,
    )

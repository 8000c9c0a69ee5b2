"""The co-lenders' guarantee fee in the borrower's all-in APR (REGULATION.md 2.8, 2.9).

A bank that funds its share under a first-loss guarantee charges a guarantee fee, and the 2025
facilitation notice counts that fee in the borrower's comprehensive financing cost. Which banks
fund a loan is known only once the funding desk has a plan, so the engine's offer is priced
first without the fee and then, for a plan with guaranteed shares, priced again: the schedule
gains a per-period fee of Σ share × fee rate / 12 on the principal (`FundingPlan.
guarantee_fee_per_period`), and every rule is evaluated again on the new offer, so the APR cap
and the debt-service rule see what the borrower will actually pay.

If that offer breaks a rule, the service asks the desk again with guaranteed funders excluded
(`Priced.fits` then `LoanRequest.guarantee_fee_allowed`): the loan is funded without the fee, or not
at all. `fund` is what the decision path, the batch and replay all apply, so a replayed
decision re-prices exactly as it was priced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lendstack.funding import FundingPlan
from lendstack.underwriting import reasons as R
from lendstack.underwriting.application import Application
from lendstack.underwriting.decision import (
    GRANTED,
    Decision,
    Offer,
    Outcome,
    Reason,
    plan_from_json,
)
from lendstack.underwriting.engine import BorrowerHistory, Engine, facts_for, result_json
from lendstack.underwriting.funding_desk import apply_funding
from lendstack.underwriting.offers import Terms
from lendstack.underwriting.rules import RuleResult, Verdict


def guaranteed_offer(engine: Engine, offer: Offer, plan: FundingPlan) -> Offer:
    """`offer` re-priced with the plan's guarantee fee on top of the product's own fee."""
    t = offer.schedule.terms
    terms = Terms(
        engine.catalog.get(offer.product_id),
        offer.term_months,
        t.annual_rate,
        t.fee_rate - offer.guarantee_fee_rate,
        t.start_date,
        plan.guarantee_fee_per_period,
    )
    return engine.offers.offer(terms, offer.amount)


def offer_results(
    engine: Engine, app: Application, history: BorrowerHistory, offer: Offer
) -> tuple[RuleResult, ...]:
    """Every rule of the pack in force, evaluated on `offer` (as the engine's final stage)."""
    rules = engine.pack.select(app.application_date, str(app.lender_type))
    facts = replace(
        facts_for(app, history.existing_balance),
        amount=offer.amount,
        apr_irr=offer.apr.apr_irr,
        monthly_installment=offer.monthly_burden,
    )
    return rules.evaluate(facts)


@dataclass(frozen=True, slots=True)
class Priced:
    """An offer re-priced with a plan's guarantee fee, and every rule's result on it."""

    offer: Offer
    results: tuple[RuleResult, ...]

    @property
    def fits(self) -> bool:
        """Whether the re-priced offer still passes every rule."""
        return not _failed(self.results)


def priced(
    engine: Engine, app: Application, history: BorrowerHistory, offer: Offer, plan: FundingPlan
) -> Priced | None:
    """`offer` re-priced for `plan` with its rule results; None when the plan adds no fee."""
    if not plan.funded or not plan.guarantee_fee_rate:
        return None
    return _reprice(engine, app, history, offer, plan)


def _reprice(
    engine: Engine, app: Application, history: BorrowerHistory, offer: Offer, plan: FundingPlan
) -> Priced:
    repriced = guaranteed_offer(engine, offer, plan)
    return Priced(repriced, offer_results(engine, app, history, repriced))


def fund(
    engine: Engine,
    app: Application,
    history: BorrowerHistory,
    decision: Decision,
    plan: FundingPlan,
    known: Priced | None = None,
) -> Decision:
    """The decision once `plan` funds it: the offer re-priced with the guarantee fee and its
    rule results re-evaluated. A rule the fee breaks declines (the service avoids this by
    re-planning without guarantees; replay under another pack may still meet it).

    `known` is `priced` of this decision's offer and plan, when the caller has it already
    (the service prices a plan to check it fits): the same offer and results, not made twice.
    """
    if decision.outcome not in GRANTED or decision.offer is None:
        return decision
    if not plan.funded or not plan.guarantee_fee_rate:
        return apply_funding(decision, plan)
    found = known or _reprice(engine, app, history, decision.offer, plan)
    offer, results = found.offer, found.results
    failed = _failed(results)
    errors = any(r.verdict is Verdict.ERROR for r in failed)
    outcome = (Outcome.REFER if errors else Outcome.DECLINE) if failed else decision.outcome
    reasons = (*[_reason(r) for r in failed], *decision.reasons)
    return replace(
        decision,
        outcome=outcome,
        reasons=reasons,
        offer=offer,
        rule_results=_merged(decision.rule_results, results),
        funding=plan,
    )


def with_recorded_funding(
    engine: Engine,
    app: Application,
    history: BorrowerHistory,
    fresh: Decision,
    stored: Mapping[str, Any],
    decision_id: str,
) -> Decision:
    """Replay's view: the fresh engine decision with the funding outcome recorded then.

    Funding depended on the exposures of that moment, which replay cannot recompute, so the
    recorded plan (funded or not, with the guarantee fees it carried) is applied again;
    `stored` is the record's decision JSON.
    """
    data = stored.get("funding")
    if data is None:
        return fresh
    return fund(engine, app, history, fresh, plan_from_json(data, decision_id))


def _failed(results: tuple[RuleResult, ...]) -> list[RuleResult]:
    """Results that stop the offer: a FAIL declines, an ERROR refers (as in the engine)."""
    return [r for r in results if r.verdict in (Verdict.FAIL, Verdict.ERROR)]


def _reason(result: RuleResult) -> Reason:
    return R.rule_error(result) if result.verdict is Verdict.ERROR else R.rule_failed(result)


def _merged(
    before: tuple[dict[str, object], ...], results: tuple[RuleResult, ...]
) -> tuple[dict[str, object], ...]:
    """The decision's rule results with those evaluated on the new offer replacing theirs."""
    fresh = {r.rule_id: result_json(r) for r in results}
    kept = [fresh.pop(str(r["rule_id"]), r) for r in before]
    return (*kept, *fresh.values())


__all__ = [
    "Priced",
    "fund",
    "guaranteed_offer",
    "offer_results",
    "priced",
    "with_recorded_funding",
]

"""The decision engine: an application in, a `Decision` out. Pure: no clock, no storage.

Order of work, cheapest and most final first:
1. screen: the rules that need no offer (purpose, students, consents, age, lender count) and
   the duplicate check;
2. score the applicant with the credit model (only with bureau consent);
3. price: the APR the risk needs, which must fit under the rule pack's APR cap;
4. limit: the least of the regulatory headroom, affordability, the debt-service rule, the PD
   curve and the product maximum;
5. offer: the real schedule and its all-in APR (IRR, every fee included), then every rule is
   evaluated again on the offer itself, so what is approved is what was checked;
6. outcome, with policy and rule reasons, and at most four model reasons when not approved.

A rule that errors makes the decision REFER: the engine fails closed and never approves on a
rule it could not evaluate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any, TypeVar

from lendstack.core.errors import InvariantViolation, LendstackError
from lendstack.scoring import CreditModel
from lendstack.scoring import Reason as ModelReason
from lendstack.servicing import (
    Product,
    ProductCatalog,
)
from lendstack.underwriting import reasons as R
from lendstack.underwriting.application import Application
from lendstack.underwriting.decision import (
    GRANTED,
    CreditLimit,
    Decision,
    LimitSource,
    Offer,
    Outcome,
    Reason,
    Score,
)
from lendstack.underwriting.features import FeatureMap
from lendstack.underwriting.offers import OfferBook, Terms, rates_for
from lendstack.underwriting.policy import Policy
from lendstack.underwriting.pricing import Price, price
from lendstack.underwriting.rules import Facts, RulePack, RuleResult, RuleSet, Verdict


@dataclass(frozen=True, slots=True)
class BorrowerHistory:
    """What the lender's own books say about this borrower at decision time."""

    existing_balance: Decimal = Decimal(0)
    duplicate_of: str | None = None
    """The id of an earlier decision inside the policy's duplicate window, if any."""
    funds_misuse: tuple[str, ...] = ()
    """Use-of-funds flags on the borrower's earlier loans (`loan-<id>`), raised on or before
    the application date: funds that reached a forbidden merchant category decline (P12)."""


@dataclass(slots=True)
class _Draft:
    """The decision being assembled; local to one `decide` call."""

    app: Application
    rules: RuleSet
    facts: Facts
    reasons: list[Reason] = field(default_factory=list)
    results: tuple[RuleResult, ...] = ()
    bindings: dict[str, str] = field(default_factory=dict)
    score: Score | None = None
    price: Price | None = None
    limit: CreditLimit | None = None
    offer: Offer | None = None
    product: Product | None = None
    terms: Terms | None = None
    """Product, contract rate and fee rate that deliver the price: what offers are built on."""
    refer: bool = False
    encoded: Any = None
    """The model's encoded row, when this engine scored the applicant itself."""

    def fail(self, reason: Reason) -> None:
        self.reasons.append(reason)

    @property
    def declined(self) -> bool:
        return any(r.code not in R.NON_DECLINING for r in self.reasons)


ScoreSource = Score | Callable[[], Score] | None
"""A precomputed score, a function computing it on demand, or None (the engine scores)."""


@dataclass(frozen=True, slots=True)
class Staged:
    """A decision whose outcome and offer are final but whose model reasons are not yet added.

    Batch callers stage a whole chunk (later applications of a borrower need the outcome of
    earlier ones, never their reasons), then explain every non-approval in one matrix call
    (`reasons_matrix` gives the same reasons as the single-row TreeSHAP). Finish it once.
    """

    draft: _Draft
    outcome: Outcome
    offer: Offer | None

    @property
    def needs_reasons(self) -> bool:
        return self.outcome is not Outcome.APPROVE and self.draft.score is not None


@dataclass(frozen=True, slots=True)
class Engine:
    """Everything one decision is pinned to: rule pack, model, feature map, policy, products.

    `offers` memoises schedules over the catalog (see `offers.OfferBook`); it is private to
    this instance, so `dataclasses.replace` gives a new engine fresh, empty memos.
    """

    pack: RulePack
    model: CreditModel
    features: FeatureMap
    policy: Policy
    catalog: ProductCatalog
    offers: OfferBook = field(init=False, repr=False, compare=False)
    explained: dict[bytes, tuple[ModelReason, ...]] = field(init=False, repr=False, compare=False)
    """Model reasons by encoded row (its bytes), as `finish_many` computed them: applicants
    re-apply with unchanged features, and a TreeSHAP row costs ~200 µs."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "offers", OfferBook(self.catalog))
        object.__setattr__(self, "explained", {})

    def decide(self, app: Application, history: BorrowerHistory) -> Decision:
        """Decide one application (batch callers use `stage` and `finish_many`)."""
        staged = self.stage(app, history)
        reasons = self._model_reasons(staged.draft) if staged.needs_reasons else ()
        return self.finish(staged, reasons)

    def stage(
        self, app: Application, history: BorrowerHistory, score: ScoreSource = None
    ) -> Staged:
        """Every stage but the model reasons: the outcome and offer are final here.

        `score` is the model's score for `app`, or a function giving it (called only if the
        engine gets as far as scoring), or None to score here.
        """
        draft = self._screen(app, history)
        if not draft.declined and app.consents.bureau_query:
            self._score(draft, score)
        stages: tuple[Callable[[_Draft], None], ...] = (
            self._price,
            self._limit,
            self._offer,
            self._final_rules,
        )
        for stage in stages:
            if draft.declined or draft.refer:
                break
            stage(draft)
        return self._settle(draft)

    def finish(self, staged: Staged, model_reasons: Sequence[ModelReason]) -> Decision:
        """The decision, with the model's adverse reasons when it is not an approval."""
        draft = staged.draft
        if staged.needs_reasons:
            n = self.policy.max_model_reasons
            draft.reasons.extend(R.model_reason(r.code, r.text) for r in model_reasons[:n])
        return Decision(
            staged.outcome,
            tuple(draft.reasons),
            staged.offer,
            draft.score,
            draft.price,
            draft.limit,
            tuple(result_json(r) for r in draft.results),
            tuple(sorted(draft.bindings.items())),
        )

    def encode(self, app: Application) -> Any:
        """The model's encoded row for `app` (what `score_row` builds internally)."""
        return self.model.spec.encode_row(self.features.row(app))

    def encode_many(self, apps: Sequence[Application]) -> Any:
        """`encode` of every application, one row each (what batch callers score)."""
        return self.model.spec.encode_rows([self.features.row(app) for app in apps])

    def score_encoded(self, x: Any) -> Score:
        """The exact score `decide` would compute, from an encoded row."""
        row = self.model.score_encoded(x, reasons=False)
        return Score(row.pd, row.points)

    def score_many(self, X: Any) -> list[Score]:
        """`score_encoded` of every row of `X` (encoded rows), from one model pass.

        Bit for bit the scores `decide` computes row by row (`CreditModel.score_encoded_many`),
        at a tenth of the cost: batch callers score a chunk up front and `stage` each row with
        its score.
        """
        return [Score(r.pd, r.points) for r in self.model.score_encoded_many(X)]

    def finish_many(self, staged: Sequence[Staged], X: Any) -> list[Decision]:
        """Finish a chunk: TreeSHAP reasons for every non-approval in one matrix call.

        `X` holds the encoded rows, one per staged decision, in the same order.
        """
        need = [i for i, s in enumerate(staged) if s.needs_reasons]
        reasons: dict[int, Sequence[ModelReason]] = {}
        if need and self.policy.max_model_reasons > 0:
            reasons = self._explain(X, need)
        return [self.finish(s, reasons.get(i, ())) for i, s in enumerate(staged)]

    def _explain(self, X: Any, rows: list[int]) -> dict[int, Sequence[ModelReason]]:
        """`reasons_matrix` of `X[rows]`, each distinct row computed once (here or by an
        earlier chunk). Exact: a row's reasons depend on that row alone (TreeSHAP and the
        linear terms are per row), so the rows asked for are all that is computed."""
        memo = self.explained
        keys = {i: X[i].tobytes() for i in rows}
        missing = list({k: i for i, k in keys.items() if k not in memo}.values())
        if missing:
            if len(memo) + len(missing) > _EXPLAINED_MEMO:
                memo.clear()
            for i, found in zip(missing, self.model.reasons_matrix(X[missing]), strict=True):
                memo[keys[i]] = found
        return {i: memo[k] for i, k in keys.items()}

    # -- stages ---------------------------------------------------------------------------

    def _screen(self, app: Application, history: BorrowerHistory) -> _Draft:
        rules = self.pack.select(app.application_date, str(app.lender_type))
        draft = _Draft(app, rules, facts_for(app, history.existing_balance))
        if history.duplicate_of is not None:
            draft.fail(R.duplicate(history.duplicate_of, self.policy.duplicate_days))
        if history.funds_misuse:
            draft.fail(R.funds_misused(history.funds_misuse))
        self._absorb(draft, rules.screen(draft.facts))
        return draft

    def _score(self, draft: _Draft, source: ScoreSource) -> None:
        if source is None:
            draft.encoded = self.encode(draft.app)
            given = self.score_encoded(draft.encoded)
        else:
            given = source if isinstance(source, Score) else source()
        draft.score = given
        if Decimal(repr(given.pd)) > self.policy.max_pd:
            draft.fail(R.risk_too_high(given.pd, self.policy.max_pd))

    def _price(self, draft: _Draft) -> None:
        if draft.score is None:
            draft.fail(R.NO_BUREAU_CONSENT)
            return
        app = draft.app
        method, term = app.loan.repayment_method, app.loan.term_months
        draft.price = needed = price(draft.score.pd, method, term, self.policy.pricing)
        cap = draft.rules.max_apr()
        if cap is None:
            draft.refer = True
            draft.fail(R.no_rule("apr_max"))
            return
        draft.bindings["apr_cap"] = cap.rule_id
        if needed.apr > cap.value:
            draft.fail(R.above_cap(needed.apr, cap.value, cap.rule_id))
            return
        term_cap = draft.rules.max_term(str(method))
        if term_cap is not None:
            draft.bindings["term_cap"] = term_cap.rule_id
            if term > term_cap.value:
                draft.fail(R.term_above_cap(term, term_cap.value, term_cap.rule_id))
        draft.product = product = self._product(draft)
        if product is None:
            return
        if term not in product.terms_allowed:
            draft.fail(R.term_not_offered(term, product))
        try:
            rate, fee = rates_for(product, needed.apr, term)
        except R.PricingOutOfRange as exc:
            draft.fail(R.cannot_price(exc.message))
            return
        draft.terms = Terms(product, term, rate, fee, draft.app.application_date)

    def _limit(self, draft: _Draft) -> None:
        product = _need(draft.product)
        candidates = self._limit_candidates(draft, product)
        source, amount, _ = min(candidates, key=lambda c: (c[1], str(c[0])))
        draft.limit = CreditLimit(amount, source, candidates)
        if amount < product.amount_min or amount <= 0:
            draft.fail(R.limit_too_low(amount, product.amount_min, source))

    def _offer(self, draft: _Draft) -> None:
        amount = min(draft.app.loan.amount, _need(draft.limit).amount)
        try:
            draft.offer = self.offers.offer(_need(draft.terms), amount)
        except LendstackError as exc:
            draft.fail(R.cannot_price(str(exc)))

    def _final_rules(self, draft: _Draft) -> None:
        offer = _need(draft.offer)
        draft.facts = replace(
            draft.facts,
            amount=offer.amount,
            apr_irr=offer.apr.apr_irr,
            monthly_installment=offer.monthly_burden,
        )
        self._absorb(draft, draft.rules.evaluate(draft.facts))

    # -- helpers ----------------------------------------------------------------------------

    def _absorb(self, draft: _Draft, results: Iterable[RuleResult]) -> None:
        """Keep every result; a FAIL declines, an ERROR refers."""
        kept = {r.rule_id: r for r in draft.results}
        for result in results:
            kept[result.rule_id] = result
            if result.verdict is Verdict.FAIL:
                draft.fail(R.rule_failed(result))
            elif result.verdict is Verdict.ERROR:
                draft.refer = True
                draft.fail(R.rule_error(result))
        draft.results = tuple(kept.values())

    def _product(self, draft: _Draft) -> Product | None:
        method = draft.app.loan.repayment_method
        product_id = self.policy.product_for(method)
        if product_id is None:
            draft.fail(R.method_not_offered(method))
            return None
        return self.catalog.get(product_id)

    def _limit_candidates(
        self, draft: _Draft, product: Product
    ) -> tuple[tuple[LimitSource, Decimal, str | None], ...]:
        score = _need(draft.score)
        app, limits = draft.app, self.policy.limits
        per_unit = self.offers.burden_per_unit(_need(draft.terms))
        spare = app.applicant.monthly_income - app.applicant.monthly_obligations
        out: list[tuple[LimitSource, Decimal, str | None]] = [
            (
                LimitSource.AFFORDABILITY,
                self._floor(spare * limits.affordability_share / per_unit),
                None,
            ),
            (LimitSource.PD_CURVE, limits.limit_for(Decimal(repr(score.pd))), None),
            (LimitSource.PRODUCT, product.amount_max, None),
        ]
        headroom = draft.rules.amount_headroom(draft.facts)
        if headroom is not None:
            draft.bindings["amount_cap"] = headroom.rule_id
            out.append((LimitSource.REGULATORY, self._floor(headroom.value), headroom.rule_id))
        installment = draft.rules.max_installment(draft.facts)
        if installment is not None:
            draft.bindings["debt_service_cap"] = installment.rule_id
            amount = self._floor(installment.value / per_unit)
            out.append((LimitSource.DEBT_SERVICE_RULE, amount, installment.rule_id))
        return tuple(out)

    def _floor(self, amount: Decimal) -> Decimal:
        step = self.policy.limits.step
        return max((amount / step).to_integral_value(rounding=ROUND_FLOOR) * step, Decimal(0))

    def _settle(self, draft: _Draft) -> Staged:
        outcome = _outcome(draft)
        if not draft.app.consents.automated_decision:
            draft.reasons.append(R.PIPL_REFER)
            outcome = Outcome.REFER
        elif outcome is Outcome.COUNTER_OFFER and draft.limit is not None:
            draft.reasons.append(R.counter_offer(draft.limit))
        offer = draft.offer if outcome in GRANTED else None
        if outcome is Outcome.REFER:
            offer = draft.offer  # the reviewer sees what would have been offered
        return Staged(draft, outcome, offer)

    def _model_reasons(self, draft: _Draft) -> tuple[ModelReason, ...]:
        """TreeSHAP reasons on the row already encoded for the score (no second encoding).

        The single-row path is used, not `reasons_matrix` on one row: measured 319 µs against
        454 µs per declined applicant; both give the same reasons (tests/scoring pins it).
        """
        if self.policy.max_model_reasons <= 0:
            return ()
        x = self.encode(draft.app) if draft.encoded is None else draft.encoded
        return self.model.score_encoded(x, reasons=True).reasons


_T = TypeVar("_T")

_EXPLAINED_MEMO = 100_000
"""Explained rows kept before the memo is emptied (four reasons and a 21-float key each)."""


def _need(value: _T | None) -> _T:
    """Stages run in order, so an earlier stage's result is always there; if not, it's a bug."""
    if value is None:
        raise InvariantViolation("a decision stage ran before the stage it depends on")
    return value


def _outcome(draft: _Draft) -> Outcome:
    if draft.refer:
        return Outcome.REFER
    if draft.declined or draft.offer is None:
        return Outcome.DECLINE
    if draft.offer.amount < draft.app.loan.amount:
        return Outcome.COUNTER_OFFER
    return Outcome.APPROVE


def facts_for(app: Application, existing_balance: Decimal) -> Facts:
    a, loan = app.applicant, app.loan
    consents = frozenset(k for k, v in app.consents if v)  # (field, value) pairs, no dump
    return Facts(
        application_date=app.application_date,
        lender_type=str(app.lender_type),
        age=app.age,
        purpose=str(loan.purpose),
        is_student=a.is_student,
        consents=consents,
        active_lenders=app.bureau.active_lenders,
        monthly_income=a.monthly_income,
        monthly_obligations=a.monthly_obligations,
        existing_balance=existing_balance,
        amount=loan.amount,
        term_months=loan.term_months,
        repayment_method=str(loan.repayment_method),
    )


def result_json(result: RuleResult) -> dict[str, Any]:
    # Enums here are StrEnums, whose str() is their value: without `.value`'s descriptor
    # calls, which a decision's dozen results, facts and limits made ~50 of.
    return {
        "rule_id": result.rule_id,
        "kind": str(result.kind),
        "verdict": str(result.verdict),
        "observed": result.observed,
        "limit": result.limit,
        "message": result.message,
    }

"""Policy reason codes and texts: one place, so codes stay stable across releases.

Codes are what channels and regulators key on; texts are what a borrower reads. Rule reasons
carry the rule id as their code; model reasons carry the feature's reason code.
"""

from __future__ import annotations

from decimal import Decimal

from lendstack.core.errors import ValidationError
from lendstack.funding import NO_CAPACITY
from lendstack.servicing import Product, RepaymentMethod
from lendstack.underwriting.decision import CreditLimit, Reason, ReasonSource
from lendstack.underwriting.rules import RuleResult

_P = ReasonSource.POLICY

METHOD_NOT_OFFERED_CODE = "P04"
COUNTER_OFFER_CODE = "P07"
PIPL_CODE = "P08"
RULE_ERROR_CODE = "P09"
NO_FUNDING_CODE = "P11"
FUNDS_MISUSE_CODE = "P12"
NON_DECLINING = frozenset({COUNTER_OFFER_CODE, PIPL_CODE})
"""Reasons that explain an outcome without declining it."""


class PricingOutOfRange(ValidationError):
    """The price the risk needs is outside what the product can carry."""


def duplicate(earlier: str, days: int) -> Reason:
    return Reason(
        "P01", f"duplicate application: decision {earlier} was made within {days} days", _P
    )


def funds_misused(flags: tuple[str, ...]) -> Reason:
    """Funds of an earlier loan reached a forbidden use (gold, FX, securities …)."""
    listed = ", ".join(flags)
    return Reason(
        FUNDS_MISUSE_CODE,
        f"funds of an earlier loan were used for a forbidden purpose ({listed})",
        _P,
    )


def risk_too_high(pd: float, max_pd: Decimal) -> Reason:
    return Reason(
        "P02", f"credit risk too high: PD {pd:.2%} is above the policy maximum {max_pd:.2%}", _P
    )


def above_cap(apr: Decimal, cap: Decimal, rule_id: str) -> Reason:
    text = (
        f"cannot be priced within the legal cap: the risk needs APR {apr:.2%}, the cap is {cap:.2%}"
    )
    return Reason("P03", text, _P, rule_id)


def cannot_price(detail: str) -> Reason:
    return Reason("P03", f"cannot be priced within the product's range: {detail}", _P)


def method_not_offered(method: RepaymentMethod) -> Reason:
    return Reason(METHOD_NOT_OFFERED_CODE, f"repayment method {method.value} is not offered", _P)


def term_not_offered(term: int, product: Product) -> Reason:
    allowed = ", ".join(str(t) for t in product.terms_allowed)
    return Reason("P05", f"a {term}-month term is not offered (offered: {allowed})", _P)


def term_above_cap(term: int, cap: Decimal, rule_id: str) -> Reason:
    return Reason(
        "P05", f"a {term}-month term exceeds the legal maximum of {cap} months", _P, rule_id
    )


def limit_too_low(amount: Decimal, minimum: Decimal, source: object) -> Reason:
    text = f"credit limit {amount} (set by {getattr(source, 'value', source)}) is below the product minimum {minimum}"
    return Reason("P06", text, _P)


def counter_offer(limit: CreditLimit) -> Reason:
    text = f"requested amount exceeds the {limit.binding.value} limit; {limit.amount} offered"
    return Reason(COUNTER_OFFER_CODE, text, _P)


PIPL_REFER = Reason(
    PIPL_CODE,
    "the applicant refused a solely automated decision (PIPL Art. 24): referred to a person",
    _P,
)

NO_BUREAU_CONSENT = Reason(
    "P10", "no consent to query the credit bureau: the applicant cannot be scored", _P
)


NO_FUNDING = Reason(NO_FUNDING_CODE, NO_CAPACITY, _P)
"""Credit was granted but no funder mix keeps every co-lending rule: the loan is not made."""


def no_rule(kind: str) -> Reason:
    return Reason(
        RULE_ERROR_CODE, f"the rule pack has no {kind} rule for this application: referred", _P
    )


def rule_failed(result: RuleResult) -> Reason:
    return Reason(result.rule_id, result.message, ReasonSource.RULE, result.rule_id)


def rule_error(result: RuleResult) -> Reason:
    text = f"rule {result.rule_id} could not be evaluated ({result.message}): referred"
    return Reason(RULE_ERROR_CODE, text, _P, result.rule_id)


def model_reason(code: str, text: str) -> Reason:
    """The scoring package prefixes its texts with the code; a reason shows it once."""
    return Reason(code, text.removeprefix(f"{code} "), ReasonSource.MODEL)

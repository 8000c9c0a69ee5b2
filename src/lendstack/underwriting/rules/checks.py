"""One check per rule kind: a pure function of a rule's typed params and the facts.

Checks return a RuleResult for PASS and FAIL and may raise on nonsense facts; `Rule.evaluate`
turns any exception into ERROR, so a check never has to guard against every bad input, and a
rule that cannot decide never passes. Amounts and rates compare as exact Decimals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lendstack.underwriting.rules.model import Facts, RuleKind, RuleResult, Verdict

if TYPE_CHECKING:
    from lendstack.underwriting.rules.rule import Rule

Check = Callable[["Rule", Facts], RuleResult]

FEN = Decimal("0.01")
_RATIO_PLACES = Decimal("0.0001")
MONTHS_PER_YEAR = 12


class NotPriced(ValueError):
    """An offer-dependent rule ran before pricing; outside `screen` that is an error."""


def _money(value: object, name: str) -> Decimal:
    """Facts carry money and rates as Decimal only; anything else is a bug upstream."""
    if type(value) is not Decimal:
        raise TypeError(f"{name} must be a Decimal, got {value!r}")
    return value


def _whole(value: object, name: str) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {value!r}")
    return value


def _compare(rule: Rule, label: str, observed: Any, limit: Any, ok: bool) -> RuleResult:
    """A PASS/FAIL result whose message reads like a reason code: "APR 0.2650 > 0.24"."""
    return RuleResult(
        rule.id,
        rule.kind,
        Verdict.PASS if ok else Verdict.FAIL,
        str(observed),
        str(limit),
        f"{label} {observed} {'<=' if ok else '>'} {limit}",
    )


def floor_fen(value: Decimal | Fraction) -> Decimal:
    """Round a cap down to the fen: a cap rounded up would allow a fen too much."""
    if isinstance(value, Fraction):
        return Decimal(math.floor(value * 100)).scaleb(-2)
    return value.quantize(FEN, rounding=ROUND_FLOOR)


def income_share_cap(share: Fraction, monthly_income: Decimal) -> Decimal:
    """share × 12 × monthly income, exact, then floored to the fen."""
    if _money(monthly_income, "monthly_income") < 0:
        raise ValueError(f"monthly income {monthly_income} is negative")
    return floor_fen(Fraction(monthly_income) * MONTHS_PER_YEAR * share)


def balance_after(facts: Facts) -> Decimal:
    """Existing balance with us plus the amount under test: what the caps limit."""
    amount = _money(facts.amount, "amount")
    balance = _money(facts.existing_balance, "existing_balance")
    if amount < 0 or balance < 0:
        raise ValueError(f"amount {amount} and balance {balance} must not be negative")
    return balance + amount


def _credit_line(rule: Rule, facts: Facts) -> RuleResult:
    total = balance_after(facts)
    limit = rule.params["max"]
    return _compare(rule, "balance with us incl. this loan", total, limit, total <= limit)


def _income_share(rule: Rule, facts: Facts) -> RuleResult:
    total = balance_after(facts)
    cap = income_share_cap(rule.params["share"], facts.monthly_income)
    return _compare(rule, "balance with us incl. this loan", total, cap, total <= cap)


def _apr(rule: Rule, facts: Facts) -> RuleResult:
    apr = facts.apr_irr
    if apr is None:
        raise NotPriced("apr_irr is missing: the offer is not priced (fail closed)")
    _money(apr, "apr_irr")
    return _compare(rule, "APR", apr, rule.params["max"], apr <= rule.params["max"])


def _bullet_term(rule: Rule, facts: Facts) -> RuleResult:
    if facts.repayment_method not in rule.params["methods"]:
        note = f"{facts.repayment_method} repays principal before maturity; no bullet limit"
        return RuleResult(rule.id, rule.kind, Verdict.PASS, str(facts.term_months), None, note)
    limit, term = rule.params["max"], _whole(facts.term_months, "term_months")
    return _compare(rule, f"{facts.repayment_method} term months", term, limit, term <= limit)


def _term(rule: Rule, facts: Facts) -> RuleResult:
    limit, term = rule.params["max"], _whole(facts.term_months, "term_months")
    return _compare(rule, "term months", term, limit, term <= limit)


def _purposes(rule: Rule, facts: Facts) -> RuleResult:
    forbidden = rule.params["purposes"]
    if not isinstance(facts.purpose, str):
        raise TypeError(f"purpose must be a string, got {facts.purpose!r}")
    ok = facts.purpose not in forbidden
    verb = "is allowed" if ok else "is forbidden"
    message = f"purpose {facts.purpose} {verb}"
    verdict = Verdict.PASS if ok else Verdict.FAIL
    return RuleResult(rule.id, rule.kind, verdict, facts.purpose, ", ".join(forbidden), message)


def _students(rule: Rule, facts: Facts) -> RuleResult:
    if not isinstance(facts.is_student, bool):
        raise TypeError(f"is_student must be a bool, got {facts.is_student!r}")
    ok = not facts.is_student
    message = "applicant is not a student" if ok else "college students may not borrow here"
    verdict = Verdict.PASS if ok else Verdict.FAIL
    return RuleResult(rule.id, rule.kind, verdict, str(facts.is_student).lower(), "false", message)


def _consents(rule: Rule, facts: Facts) -> RuleResult:
    required = rule.params["consents"]
    given = facts.consents
    if not isinstance(given, frozenset | set):
        raise TypeError(f"consents must be a set of names, got {given!r}")
    missing = [name for name in required if name not in given]
    message = f"missing consent: {', '.join(missing)}" if missing else "required consents given"
    verdict = Verdict.FAIL if missing else Verdict.PASS
    observed = ", ".join(sorted(given))
    return RuleResult(rule.id, rule.kind, verdict, observed, ", ".join(required), message)


def _age(rule: Rule, facts: Facts) -> RuleResult:
    low, high = rule.params["min"], rule.params["max"]
    ok = low <= _whole(facts.age, "age") <= high
    message = f"age {facts.age} {'within' if ok else 'outside'} {low}..{high}"
    verdict = Verdict.PASS if ok else Verdict.FAIL
    return RuleResult(rule.id, rule.kind, verdict, str(facts.age), f"{low}..{high}", message)


def _active_lenders(rule: Rule, facts: Facts) -> RuleResult:
    limit = rule.params["max"]
    ok = _whole(facts.active_lenders, "active_lenders") <= limit
    return _compare(rule, "active lenders", facts.active_lenders, limit, ok)


def _dti(rule: Rule, facts: Facts) -> RuleResult:
    installment = facts.monthly_installment
    if installment is None:
        raise NotPriced("monthly_installment is missing: the offer is not priced (fail closed)")
    income = _money(facts.monthly_income, "monthly_income")
    if not income > 0:
        raise ValueError(f"monthly income {income} must be positive to compute a DTI")
    obligations = _money(facts.monthly_obligations, "monthly_obligations")
    service = obligations + _money(installment, "monthly_installment")
    limit = rule.params["max"]
    # Decide on the exact product; the ratio, rounded up, is only for the message.
    ok = service <= limit * income
    ratio = (service / income).quantize(_RATIO_PLACES, rounding=ROUND_CEILING)
    return _compare(rule, "DTI", ratio, limit, ok)


def _colending(rule: Rule, facts: Facts) -> RuleResult:
    """Co-lending rules bind the funding plan (`lendstack.funding` checks them per funder and
    per loan); an application has nothing to fail against them."""
    limit = rule.params_text()
    message = f"{rule.id} binds the funding plan, not the application"
    return RuleResult(rule.id, rule.kind, Verdict.PASS, None, limit, message)


CHECKS: Mapping[RuleKind, Check] = MappingProxyType(
    {
        RuleKind.CREDIT_LINE_MAX: _credit_line,
        RuleKind.INCOME_SHARE_MAX: _income_share,
        RuleKind.APR_MAX: _apr,
        RuleKind.BULLET_TERM_MAX: _bullet_term,
        RuleKind.TERM_MAX: _term,
        RuleKind.FORBIDDEN_PURPOSES: _purposes,
        RuleKind.NO_STUDENTS: _students,
        RuleKind.REQUIRED_CONSENTS: _consents,
        RuleKind.AGE_RANGE: _age,
        RuleKind.ACTIVE_LENDERS_MAX: _active_lenders,
        RuleKind.DTI_MAX: _dti,
        RuleKind.COLENDING_OWN_SHARE_MIN: _colending,
        RuleKind.COLENDING_SHARE_MIN: _colending,
        RuleKind.COLENDING_TIER1_MAX: _colending,
        RuleKind.COLENDING_TOTAL_LOANS_MAX: _colending,
    }
)

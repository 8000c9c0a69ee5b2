"""The rules of one pack selected for one date and one lender type, and the caps they bind.

Selection is done once per (date, lender type) and cached by the pack, so a RuleSet groups its
enabled rules by kind up front; evaluating or asking for a cap then touches only the rules
that matter. Where several rules of a kind apply, the strictest binds, and ties go to the
lexicographically smallest rule id so the cited rule is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType

from lendstack.underwriting.rules.checks import floor_fen, income_share_cap
from lendstack.underwriting.rules.model import (
    PRICED_KINDS,
    SCREEN_KINDS,
    Binding,
    Facts,
    RuleKind,
    RuleResult,
    Verdict,
)
from lendstack.underwriting.rules.rule import Rule

_ZERO = Decimal(0)


def _strictest(candidates: Iterable[tuple[Decimal, str]]) -> Binding | None:
    """The lowest cap; equal caps resolve to the smallest rule id."""
    best = min(candidates, default=None)
    return None if best is None else Binding(best[0], best[1])


def _unpriced(rule: Rule, facts: Facts) -> bool:
    if rule.kind is RuleKind.APR_MAX:
        return facts.apr_irr is None
    return facts.monthly_installment is None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """What one pack requires of a loan made on `on` by a `lender_type` lender.

    `rules` keeps pack order and includes disabled rules, which evaluate as DISABLED so a
    decision shows they were considered and not enforced; caps use enabled rules only.
    """

    pack_id: str
    version: str
    sha256: str
    rules: tuple[Rule, ...]
    on: date | None = None
    lender_type: str | None = None
    _enabled: Mapping[RuleKind, tuple[Rule, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _screened: tuple[Rule, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        rules = tuple(self.rules)
        object.__setattr__(self, "rules", rules)
        enabled = {
            kind: tuple(r for r in rules if r.enabled and r.kind is kind) for kind in RuleKind
        }
        object.__setattr__(self, "_enabled", MappingProxyType(enabled))
        screened = tuple(r for r in rules if r.kind in SCREEN_KINDS or r.kind in PRICED_KINDS)
        object.__setattr__(self, "_screened", screened)

    def evaluate(self, facts: Facts) -> tuple[RuleResult, ...]:
        """Every selected rule's verdict, in pack order; never raises."""
        return tuple([rule.evaluate(facts) for rule in self.rules])

    def screen(self, facts: Facts) -> tuple[RuleResult, ...]:
        """The checks that need no offer, so the engine can decline before scoring.

        Covers purpose, students, consents, age and active lenders. APR and DTI rules are
        included too: before pricing (`apr_irr` / `monthly_installment` is None) they PASS
        with "not priced yet"; once priced they are checked for real. Amount and term rules
        are left out: the engine caps the offer with `amount_headroom` / `max_term` instead
        of declining on the requested figures.
        """
        results = []
        for rule in self._screened:
            if rule.enabled and rule.kind in PRICED_KINDS and _unpriced(rule, facts):
                results.append(
                    RuleResult(rule.id, rule.kind, Verdict.PASS, None, None, "not priced yet")
                )
            else:
                results.append(rule.evaluate(facts))
        return tuple(results)

    def enabled(self, kind: RuleKind) -> tuple[Rule, ...]:
        """The enabled selected rules of one kind, in pack order."""
        return self._enabled[kind]

    def max_apr(self) -> Binding | None:
        """The strictest all-in APR cap (e.g. 0.20 for a CFC under window guidance)."""
        return _strictest((r.params["max"], r.id) for r in self._enabled[RuleKind.APR_MAX])

    def max_term(self, repayment_method: str) -> Binding | None:
        """The strictest term cap in months for this repayment method."""
        caps = [(Decimal(r.params["max"]), r.id) for r in self._enabled[RuleKind.TERM_MAX]]
        caps += [
            (Decimal(r.params["max"]), r.id)
            for r in self._enabled[RuleKind.BULLET_TERM_MAX]
            if repayment_method in r.params["methods"]
        ]
        return _strictest(caps)

    def amount_headroom(self, facts: Facts) -> Binding | None:
        """How much more we may lend this borrower: the tightest cap less the balance with us.

        Reads `existing_balance` and `monthly_income`; `amount` is ignored. Never negative.
        """
        balance = facts.existing_balance
        if balance < 0:
            raise ValueError(f"existing balance {balance} is negative")
        caps = [(r.params["max"], r.id) for r in self._enabled[RuleKind.CREDIT_LINE_MAX]]
        caps += [
            (income_share_cap(r.params["share"], facts.monthly_income), r.id)
            for r in self._enabled[RuleKind.INCOME_SHARE_MAX]
        ]
        return _strictest((max(cap - balance, _ZERO), rid) for cap, rid in caps)

    def max_installment(self, facts: Facts) -> Binding | None:
        """The largest installment the DTI ceilings allow, floored to the fen, never negative."""
        income, obligations = facts.monthly_income, facts.monthly_obligations
        caps = (
            (max(floor_fen(r.params["max"] * income - obligations), _ZERO), r.id)
            for r in self._enabled[RuleKind.DTI_MAX]
        )
        return _strictest(caps)

    def min_age(self) -> Binding | None:
        """The highest minimum age: the narrowest range's lower end binds."""
        best = min(
            ((-r.params["min"], r.id) for r in self._enabled[RuleKind.AGE_RANGE]), default=None
        )
        return None if best is None else Binding(Decimal(-best[0]), best[1])

    def max_age(self) -> Binding | None:
        """The lowest maximum age."""
        caps = ((Decimal(r.params["max"]), r.id) for r in self._enabled[RuleKind.AGE_RANGE])
        return _strictest(caps)

    def forbidden_purposes(self) -> frozenset[str]:
        """The union of every enabled purpose denylist."""
        rules = self._enabled[RuleKind.FORBIDDEN_PURPOSES]
        return frozenset(p for r in rules for p in r.params["purposes"])

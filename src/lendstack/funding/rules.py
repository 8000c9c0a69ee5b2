"""The co-lending rules: policy values, loan requests, exposures, and a plan checker.

`check_plan` restates every rule in plain Decimal arithmetic, independent of the allocator's
integer fast path, so tests (and manual plans from the funding desk) are judged by a second,
simple implementation rather than by the code that produced the plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum

from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.money import FEN, Rounding, quantize_fen
from lendstack.funding.partners import Funder
from lendstack.funding.split import split

_ZERO = Decimal("0.00")


class Rule(StrEnum):
    """Why a funder cannot take (more of) a loan; the value cites REGULATION.md where it can."""

    NOT_LISTED = "2.7 bank has not listed the platform"
    HOME_REGION = "2.4 local bank outside its home region"
    MIN_SHARE = "2.1 share below the minimum"
    PLATFORM_SHARE = "2.1 platform's own share below the minimum"
    TIER1 = "2.2 co-lent balance over 25% of tier-1 net capital"
    TOTAL_LOANS = "2.3 co-lent loans over 50% of total loans"
    MAX_PD = "appetite: PD above the funder's maximum"
    PROVINCE = "appetite: province not accepted"
    PRODUCT = "appetite: product not accepted"
    TERM = "appetite: term not accepted"
    PURPOSE = "appetite: purpose not accepted"
    MIN_APR = "appetite: APR below the funder's minimum"
    TARGET_SHARE = "appetite: share above the funder's target"
    GUARANTEE_FEE = "2.8 guarantee fee would take the all-in APR above the cap"
    DAILY_QUOTA = "quota: daily quota exhausted"
    TOTAL_QUOTA = "quota: total quota exhausted"
    SHARES_SUM = "shares do not sum to 1"
    QUANTUM = "share not a multiple of the share quantum"


@dataclass(frozen=True, slots=True)
class Policy:
    """Rule values; later they come from the rule pack, as of the loan's date."""

    min_share: Decimal = Decimal("0.30")
    """Every non-zero share of a loan (2.1, applied to each co-lender)."""
    platform_min_share: Decimal = Decimal("0.30")
    """The platform's own share of every loan: the partner (合作方) share of 2.1. 0 allows
    loans funded wholly by banks (pure facilitation, 2.7)."""
    tier1_ratio: Decimal = Decimal("0.25")
    total_loans_ratio: Decimal = Decimal("0.50")
    share_quantum: Decimal = Decimal("0.0001")

    def __post_init__(self) -> None:
        for name in ("min_share", "platform_min_share", "tier1_ratio", "total_loans_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValidationError("must be in [0, 1]", field=name)
        if self.min_share == 0:
            raise ValidationError("must be > 0, else a loan could have any number of funders")
        scale = 1 / self.share_quantum
        if self.share_quantum <= 0 or scale != scale.to_integral_value():
            raise ValidationError("must divide 1 exactly, e.g. 0.0001", field="share_quantum")

    @property
    def scale(self) -> int:
        """Shares are held as integers in units of the quantum: 1 == `scale`."""
        return int(1 / self.share_quantum)

    def units(self, share: Decimal) -> int:
        """A share bound in quantum units, rounded up so the bound is never undercut."""
        return math.ceil(share * self.scale)


@dataclass(frozen=True, slots=True)
class LoanRequest:
    """An approved loan looking for funding. `pd` is a model score, so a float."""

    loan_id: str
    amount: Decimal
    pd: float
    apr: Decimal
    province: str
    product: str
    term: int
    purpose: str
    day: date
    guarantee_fee_allowed: bool = True
    """False once the offer priced with a guarantee fee broke the APR cap: guaranteed funders
    are then excluded, so the loan is funded without the fee or not at all (2.8, 2.9)."""

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite() or self.amount <= 0:
            raise ValidationError(f"must be a Decimal > 0, got {self.amount!r}", field="amount")
        if self.amount != self.amount.quantize(FEN):
            raise ValidationError(f"{self.amount} is more precise than the fen", field="amount")
        if not 0.0 <= self.pd <= 1.0:
            raise ValidationError(f"must be in [0, 1], got {self.pd}", field="pd")
        if not isinstance(self.apr, Decimal) or not 0 <= self.apr < 1:
            raise ValidationError(f"must be a Decimal in [0, 1), got {self.apr!r}", field="apr")
        if isinstance(self.term, bool) or self.term < 1:
            raise ValidationError(f"must be >= 1 month, got {self.term!r}", field="term")


@dataclass(frozen=True, slots=True)
class Exposure:
    """A funder's position with this platform, as of the request's business date."""

    balance: Decimal = _ZERO
    """Outstanding co-lent principal with this platform (rule 2.2, and part of 2.3)."""
    today: Decimal = _ZERO
    """Allocated on the current business date (daily quota)."""
    total_allocated: Decimal = _ZERO
    """Allocated over the agreement's life (total quota)."""
    other_partners_balance: Decimal = _ZERO
    """The bank's co-lent balance with every other partner, as it reports it (2.3 is aggregate)."""

    def after(self, amount: Decimal) -> Exposure:
        """The exposure once `amount` more is funded today."""
        return replace(
            self,
            balance=self.balance + amount,
            today=self.today + amount,
            total_allocated=self.total_allocated + amount,
        )


def headrooms(funder: Funder, exposure: Exposure, policy: Policy) -> dict[Rule, Decimal]:
    """CNY the funder may still take under each limit, rounded down to the fen."""
    room = {
        Rule.DAILY_QUOTA: funder.quotas.daily - exposure.today,
        Rule.TOTAL_QUOTA: funder.quotas.total - exposure.total_allocated,
    }
    if not funder.is_platform:
        tier1 = policy.tier1_ratio * funder.tier1_net_capital
        loans = policy.total_loans_ratio * funder.total_loans
        room[Rule.TIER1] = tier1 - exposure.balance
        room[Rule.TOTAL_LOANS] = loans - exposure.balance - exposure.other_partners_balance
    return {rule: quantize_fen(value, Rounding.DOWN) for rule, value in room.items()}


def appetite_breach(funder: Funder, request: LoanRequest) -> Rule | None:
    """The first static rule that keeps `funder` off this loan, or None."""
    a = funder.appetite
    checks = (
        (funder.is_platform or funder.on_platform_list, Rule.NOT_LISTED),
        (not funder.kind.is_local or request.province == funder.home_region, Rule.HOME_REGION),
        (request.pd <= a.max_pd, Rule.MAX_PD),
        (not a.provinces or request.province in a.provinces, Rule.PROVINCE),
        (not a.products or request.product in a.products, Rule.PRODUCT),
        (not a.terms or request.term in a.terms, Rule.TERM),
        (not a.purposes or request.purpose in a.purposes, Rule.PURPOSE),
        (request.apr >= a.min_apr, Rule.MIN_APR),
        (request.guarantee_fee_allowed or funder.guarantee is None, Rule.GUARANTEE_FEE),
    )
    return next((rule for ok, rule in checks if not ok), None)


@dataclass(frozen=True, slots=True)
class Breach:
    funder_id: str
    rule: Rule


def check_plan(
    request: LoanRequest,
    shares: Mapping[str, Decimal],
    funders: Mapping[str, Funder],
    exposures: Mapping[str, Exposure],
    policy: Policy,
) -> tuple[Breach, ...]:
    """Every rule a plan breaks (empty if none). An unknown funder id is `NotFound`."""
    for funder_id in shares:
        if funder_id not in funders:
            raise NotFound(f"no partner {funder_id!r}", field="funder")
    if sum(shares.values(), Decimal(0)) != 1 or any(s < 0 for s in shares.values()):
        return (Breach("*", Rule.SHARES_SUM),)
    parts = split(request.amount, shares)
    breaches = (
        [Breach("*", Rule.PLATFORM_SHARE)] if _platform_short(shares, funders, policy) else []
    )
    for funder_id in sorted(shares):
        if shares[funder_id] > 0:
            funder = funders[funder_id]
            exposure = exposures.get(funder_id, Exposure())
            rules = _funder_breaches(
                funder, exposure, shares[funder_id], parts[funder_id], request, policy
            )
            breaches += [Breach(funder_id, rule) for rule in rules]
    return tuple(breaches)


def _platform_short(
    shares: Mapping[str, Decimal], funders: Mapping[str, Funder], policy: Policy
) -> bool:
    own = sum((s for k, s in shares.items() if funders[k].is_platform), Decimal(0))
    return own < policy.platform_min_share


def _funder_breaches(
    funder: Funder,
    exposure: Exposure,
    share: Decimal,
    part: Decimal,
    request: LoanRequest,
    policy: Policy,
) -> list[Rule]:
    rules = [] if (static := appetite_breach(funder, request)) is None else [static]
    if share < policy.min_share:
        rules.append(Rule.MIN_SHARE)
    if share > funder.appetite.target_share:
        rules.append(Rule.TARGET_SHARE)
    if share != share.quantize(policy.share_quantum):
        rules.append(Rule.QUANTUM)
    rules += [rule for rule, room in headrooms(funder, exposure, policy).items() if part > room]
    return rules


def require_valid_plan(
    request: LoanRequest,
    shares: Mapping[str, Decimal],
    funders: Mapping[str, Funder],
    exposures: Mapping[str, Exposure],
    policy: Policy,
) -> None:
    """For manual plans: a `ValidationError` naming the first breach, so nothing is written."""
    breaches = check_plan(request, shares, funders, exposures, policy)
    if breaches:
        first = breaches[0]
        raise ValidationError(f"{first.funder_id}: {first.rule.value}", field="shares")

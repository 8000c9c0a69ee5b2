"""Online allocation: one approved loan at a time, at decision time.

`Allocator` compiles the funders once (rates to integer millionths, limits to integer fen) so
that each call does integer arithmetic only. Per loan it finds the cheapest feasible plan given
the exposures it is handed (see `search`); across loans it is greedy, first come first served,
which is why the batch mode exists. "Nothing feasible" is a value, `Outcome.UNFUNDED`, with the
reason and each funder's excluding rule: the loan is simply not booked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from lendstack.core.errors import Conflict, ValidationError
from lendstack.core.money import FEN, to_fen
from lendstack.funding.partners import Funder, guarantee_fee_per_period
from lendstack.funding.rules import Exposure, LoanRequest, Policy, Rule, appetite_breach
from lendstack.funding.search import Candidate, Pattern, best_pattern
from lendstack.funding.split import split_fen

NO_CAPACITY = "no funding capacity within partner limits"


def is_no_capacity(error: BaseException) -> bool:
    """Whether `error` refused a plan for want of partner capacity: the desk's `Conflict`, or
    the one booking raises under the funders' lock (which names the funder and the rule)."""
    return isinstance(error, Conflict) and error.message.startswith(NO_CAPACITY)


RATE_SCALE = 1_000_000
"""Rates are compared as integer millionths; `Funder` refuses more precision."""


class Outcome(StrEnum):
    FUNDED = "funded"
    UNFUNDED = "unfunded"


@dataclass(frozen=True, slots=True)
class FundingShare:
    funder_id: str
    share: Decimal
    amount: Decimal
    guarantee_fee_rate: Decimal = Decimal(0)
    """The funder's first-loss guarantee fee (annual, on its part of the principal) when the
    plan was made; 0 for an unguaranteed funder. Kept on the plan, not read from the partner
    later, because the borrower was quoted the fee in force at decision time (2.8)."""


@dataclass(frozen=True, slots=True)
class Exclusion:
    funder_id: str
    rule: Rule


@dataclass(frozen=True, slots=True)
class FundingPlan:
    """Who funds a loan and how much; `annual_cost` is Σ part × funder's funding cost (exact)."""

    loan_id: str
    outcome: Outcome
    shares: tuple[FundingShare, ...] = ()
    annual_cost: Decimal = Decimal(0)
    reason: str = ""
    exclusions: tuple[Exclusion, ...] = ()

    @property
    def funded(self) -> bool:
        return self.outcome is Outcome.FUNDED

    def share_map(self) -> dict[str, Decimal]:
        return {s.funder_id: s.share for s in self.shares}

    def amounts(self) -> dict[str, Decimal]:
        return {s.funder_id: s.amount for s in self.shares}

    @property
    def guarantee_fee_rate(self) -> Decimal:
        """The borrower's guarantee fee, annual on the whole principal: Σ share × fee rate.

        Exact: shares have 4 decimals and fee rates at most 6, so the sum has at most 10."""
        return sum((s.share * s.guarantee_fee_rate for s in self.shares), Decimal(0))

    @property
    def guarantee_fee_per_period(self) -> Decimal:
        """The monthly fee rate on the principal the borrower pays for the guarantees."""
        return guarantee_fee_per_period(self.guarantee_fee_rate)


@dataclass(frozen=True, slots=True)
class _Limits:
    """One funder's limits in fen; None where a rule does not apply (the platform)."""

    daily: int
    total: int
    tier1: int | None
    loans: int | None


class FenState:
    """Exposures as mutable integer fen, indexed like the allocator's funders (internal)."""

    __slots__ = ("balance", "other", "today", "total")

    def __init__(self, n: int) -> None:
        self.balance = [0] * n
        self.today = [0] * n
        self.total = [0] * n
        self.other = [0] * n

    def copy(self) -> FenState:
        new = FenState(0)
        new.balance, new.today = list(self.balance), list(self.today)
        new.total, new.other = list(self.total), list(self.other)
        return new

    def add(self, index: int, fen: int) -> None:
        self.balance[index] += fen
        self.today[index] += fen
        self.total[index] += fen


class Allocator:
    """Funders and policy compiled for fast, repeated allocation."""

    def __init__(self, funders: Sequence[Funder], policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self.funders = tuple(sorted(funders, key=lambda f: f.id))
        ids = [f.id for f in self.funders]
        if len(set(ids)) != len(ids):
            raise ValidationError("partner ids must be unique", field="id")
        self.index = {f.id: i for i, f in enumerate(self.funders)}
        self.rates = [int(f.funding_cost * RATE_SCALE) for f in self.funders]
        self.limits = [self._limits(f) for f in self.funders]
        p = self.policy
        self.scale = p.scale
        self.lo = [p.units(max(p.min_share, p.platform_min_share if f.is_platform else Decimal(0)))
                   for f in self.funders]  # fmt: skip
        self.hi = [int(f.appetite.target_share * self.scale) for f in self.funders]
        self.mandatory = p.platform_min_share > 0

    def _limits(self, funder: Funder) -> _Limits:
        p = self.policy
        tier1 = None if funder.is_platform else int(p.tier1_ratio * funder.tier1_net_capital / FEN)
        loans = None if funder.is_platform else int(p.total_loans_ratio * funder.total_loans / FEN)
        return _Limits(to_fen(funder.quotas.daily), to_fen(funder.quotas.total), tier1, loans)

    def state(self, exposures: Mapping[str, Exposure]) -> FenState:
        """Exposures in fen; funders without an entry start at zero. Unknown ids are refused."""
        unknown = set(exposures) - set(self.index)
        if unknown:
            raise ValidationError(
                f"exposure for unknown partner(s) {sorted(unknown)}", field="exposures"
            )
        state = FenState(len(self.funders))
        for funder_id, e in exposures.items():
            i = self.index[funder_id]
            state.balance[i], state.today[i] = to_fen(e.balance), to_fen(e.today)
            state.total[i], state.other[i] = (
                to_fen(e.total_allocated),
                to_fen(e.other_partners_balance),
            )
        return state

    def eligible(self, request: LoanRequest) -> tuple[list[int], list[Exclusion]]:
        """Funders whose static rules (list, region, appetite) admit the loan."""
        ok: list[int] = []
        excluded: list[Exclusion] = []
        for i, funder in enumerate(self.funders):
            rule = appetite_breach(funder, request)
            if rule is None:
                ok.append(i)
            else:
                excluded.append(Exclusion(funder.id, rule))
        return ok, excluded

    def capacity(self, i: int, state: FenState) -> tuple[int, Rule]:
        """Fen funder i may still take, and the rule that binds."""
        lim = self.limits[i]
        rooms = [(lim.daily - state.today[i], Rule.DAILY_QUOTA),
                 (lim.total - state.total[i], Rule.TOTAL_QUOTA)]  # fmt: skip
        if lim.tier1 is not None and lim.loans is not None:
            rooms.append((lim.tier1 - state.balance[i], Rule.TIER1))
            rooms.append((lim.loans - state.balance[i] - state.other[i], Rule.TOTAL_LOANS))
        return min(rooms, key=lambda r: r[0])

    def solve(
        self, request: LoanRequest, eligible: Sequence[int], state: FenState
    ) -> tuple[Pattern | None, list[Exclusion]]:
        """The cheapest pattern under current capacities, plus the funders capacity excluded."""
        amount = to_fen(request.amount)
        cands: list[Candidate] = []
        excluded: list[Exclusion] = []
        for i in eligible:
            room, rule = self.capacity(i, state)
            hi = min(self.hi[i], max(room, 0) * self.scale // amount, self.scale)
            if hi < self.lo[i]:
                why = Rule.TARGET_SHARE if self.hi[i] < self.lo[i] else rule
                excluded.append(Exclusion(self.funders[i].id, why))
                continue
            cands.append(Candidate(i, self.funders[i].id, float(self.rates[i]), self.lo[i], hi))
        return self.search(cands), excluded

    def search(self, cands: list[Candidate]) -> Pattern | None:
        """Best pattern among candidates; the platform is mandatory when its share is required."""
        mandatory = None
        if self.mandatory:
            platform = [c for c in cands if self.funders[c.index].is_platform]
            if not platform:
                return None
            mandatory = platform[0]
            cands = [c for c in cands if c is not mandatory]
        cands.sort(key=lambda c: (c.rate, c.key))
        found = best_pattern(cands, mandatory, self.scale)
        return None if found is None else found[1]

    def commit(self, request: LoanRequest, pattern: Pattern, state: FenState) -> dict[int, int]:
        """Split the loan by the pattern (largest remainder) and book the parts into `state`."""
        parts = split_fen(to_fen(request.amount), dict(pattern), self.scale)
        for i, fen in parts.items():
            state.add(i, fen)
        return parts

    def plan(self, request: LoanRequest, parts: Mapping[int, int], pattern: Pattern) -> FundingPlan:
        """The public value for a committed pattern."""
        quantum = self.policy.share_quantum
        shares = tuple(
            FundingShare(self.funders[i].id, (Decimal(units) * quantum).quantize(quantum),
                         (Decimal(parts[i]) * FEN).quantize(FEN), self.funders[i].guarantee_fee_rate)
            for i, units in pattern
        )  # fmt: skip
        cost = sum((s.amount * self.funders[i].funding_cost for (i, _), s in zip(pattern, shares, strict=True)),
                   Decimal(0))  # fmt: skip
        return FundingPlan(request.loan_id, Outcome.FUNDED, shares, cost)

    def allocate_in(self, request: LoanRequest, state: FenState) -> FundingPlan:
        """Allocate against `state` and book the result into it (the batch's greedy loop)."""
        eligible, excluded = self.eligible(request)
        pattern, short = self.solve(request, eligible, state)
        if pattern is None:
            why = tuple(sorted([*excluded, *short], key=lambda e: e.funder_id))
            return FundingPlan(
                request.loan_id, Outcome.UNFUNDED, reason=NO_CAPACITY, exclusions=why
            )
        return self.plan(request, self.commit(request, pattern, state), pattern)

    def allocate(self, request: LoanRequest, exposures: Mapping[str, Exposure]) -> FundingPlan:
        """The cheapest plan for one loan given current exposures; exposures are not changed."""
        return self.allocate_in(request, self.state(exposures))


def allocate(
    request: LoanRequest,
    funders: Sequence[Funder],
    exposures: Mapping[str, Exposure],
    policy: Policy | None = None,
) -> FundingPlan:
    """One-shot convenience; build an `Allocator` once when allocating many loans."""
    return Allocator(funders, policy).allocate(request, exposures)


def apply(plan: FundingPlan, exposures: Mapping[str, Exposure]) -> dict[str, Exposure]:
    """Exposures after booking `plan` (unchanged if it was not funded)."""
    updated = dict(exposures)
    for share in plan.shares:
        updated[share.funder_id] = updated.get(share.funder_id, Exposure()).after(share.amount)
    return updated

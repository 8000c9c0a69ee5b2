"""Batch allocation of a day's approvals: a column-generation LP solved with HiGHS.

Why not one MILP with a binary per (loan, funder)? At 100,000 loans × 20 funders that is two
million binaries; HiGHS will not close it in seconds. The "≥ 30% if non-zero" rule only ever
involves one loan, so it moves into the columns instead (a Dantzig–Wolfe reformulation):

* Loans with the same static eligibility (list, region, appetite) form a *class*.
* A *pattern* is a per-loan share vector that already obeys every per-loan rule (minimum
  share, the platform's share, target shares, sum to 1).
* The LP chooses how many CNY of each class to fund with each pattern, subject to each funder's
  remaining capacity (quotas, 25% of tier-1, 50% of total loans: all linear in CNY), at least
  cost, with a large penalty on CNY left unfunded. It is solved by `scipy.optimize.linprog`
  (method "highs").
* Columns start from the greedy's own patterns, so the LP optimum is never worse than greedy.
  New columns come from pricing: the single-loan search (`search.best_pattern`) run with
  dual-adjusted rates r_i − y_i. No column with negative reduced cost left ⇒ LP optimal.
* Rounding: loans of a class are dealt to its patterns within each pattern's CNY budget, each
  checked against exact remaining capacity in fen. Loans left over (budget fragments) are
  placed by the online allocator against what capacity remains.

The greedy result is the baseline and the guarantee: if rounding ever made the batch worse
(more CNY unfunded, or equal and dearer), the greedy plans are returned and `method` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import numpy as np

from lendstack.core.money import to_fen
from lendstack.funding.allocation import (
    RATE_SCALE,
    Allocator,
    FenState,
    FundingPlan,
)
from lendstack.funding.partners import Funder
from lendstack.funding.rules import Exposure, LoanRequest, Policy
from lendstack.funding.search import Candidate, Pattern, best_pattern
from lendstack.funding.split import split_fen

UNIT_FEN = 1_000_000
"""LP amounts are in units of CNY 10,000 (10^6 fen), which keeps HiGHS well scaled."""
UNFUNDED_PENALTY = 10.0
"""Per unit per year; above any funding rate, so funding a loan always beats leaving it."""
_EPS = 1e-9


class BatchMethod(StrEnum):
    LP = "column-generation-lp"
    GREEDY = "greedy"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Plans in request order, with the figures that compare them to the online greedy."""

    plans: tuple[FundingPlan, ...]
    method: BatchMethod
    annual_cost: Decimal
    greedy_cost: Decimal
    unfunded: int
    greedy_unfunded: int
    funded: Decimal
    greedy_funded: Decimal
    lp_bound: float
    """The LP's annual funding cost (CNY, penalty excluded): with the same CNY funded, no
    integral assignment can cost less."""
    rounds: int
    classes: int
    repaired: int
    """Loans placed by the online allocator after rounding."""


@dataclass(slots=True)
class _Budget:
    """CNY (in fen, float: it comes from the LP) still to deal to one pattern of one class."""

    remaining: float
    pattern: Pattern


@dataclass(slots=True)
class _Class:
    eligible: tuple[int, ...]
    loans: list[int]
    amount_fen: int = 0


def allocate_batch(
    requests: Sequence[LoanRequest],
    funders: Sequence[Funder],
    exposures: Mapping[str, Exposure],
    policy: Policy | None = None,
    *,
    max_rounds: int = 50,
) -> BatchResult:
    """Fund a day's approvals at least cost; never worse than the online greedy."""
    alloc = Allocator(funders, policy)
    start = alloc.state(exposures)
    greedy = [alloc.allocate_in(r, state) for state in [start.copy()] for r in requests]
    classes = _classes(alloc, requests)
    lp = _ColumnLP(alloc, classes, start)
    lp.seed(greedy, requests)
    rounds, bound = lp.solve(max_rounds)
    plans, repaired = _round(alloc, requests, classes, lp, start)
    return _compare(plans, greedy, requests, rounds, bound, len(classes), repaired)


def _classes(alloc: Allocator, requests: Sequence[LoanRequest]) -> list[_Class]:
    """Group loans by which funders their static rules admit."""
    by_key: dict[tuple[int, ...], _Class] = {}
    for n, request in enumerate(requests):
        key = tuple(alloc.eligible(request)[0])
        group = by_key.setdefault(key, _Class(key, []))
        group.loans.append(n)
        group.amount_fen += to_fen(request.amount)
    return list(by_key.values())


class _ColumnLP:
    """The restricted master LP and its pricing loop."""

    def __init__(self, alloc: Allocator, classes: list[_Class], start: FenState) -> None:
        self.alloc = alloc
        self.classes = classes
        self.class_of = {key: c for c, cls in enumerate(classes) for key in [cls.eligible]}
        self.columns: list[tuple[int, Pattern]] = []
        self.seen: set[tuple[int, Pattern]] = set()
        n = len(alloc.funders)
        self.caps = np.array([max(alloc.capacity(i, start)[0], 0) / UNIT_FEN for i in range(n)])
        self.rates = np.array(alloc.rates, dtype=float) / RATE_SCALE
        self.weights = np.zeros(0)

    def add(self, c: int, pattern: Pattern) -> bool:
        if (c, pattern) in self.seen:
            return False
        self.seen.add((c, pattern))
        self.columns.append((c, pattern))
        return True

    def seed(self, greedy: Sequence[FundingPlan], requests: Sequence[LoanRequest]) -> None:
        """The greedy's patterns, so the greedy solution is feasible for the LP."""
        loan_class = {n: c for c, cls in enumerate(self.classes) for n in cls.loans}
        scale = self.alloc.scale
        for n, plan in enumerate(greedy):
            if plan.funded:
                pattern = tuple(sorted((self.alloc.index[s.funder_id], int(s.share * scale))
                                       for s in plan.shares))  # fmt: skip
                self.add(loan_class[n], pattern)
        self.price(np.zeros(len(self.alloc.funders)), np.full(len(self.classes), np.inf))

    def price(self, duals: np.ndarray, class_duals: np.ndarray) -> int:
        """Add each class's best pattern under rates r − y if its reduced cost is negative."""
        added = 0
        adjusted = self.rates - duals
        for c, cls in enumerate(self.classes):
            cands = [Candidate(i, self.alloc.funders[i].id, float(adjusted[i]), self.alloc.lo[i],
                               min(self.alloc.hi[i], self.alloc.scale)) for i in cls.eligible]  # fmt: skip
            found = self.alloc_search(cands)
            if found is not None and found[0] / self.alloc.scale - class_duals[c] < -_EPS:
                added += self.add(c, found[1])
        return added

    def alloc_search(self, cands: list[Candidate]) -> tuple[float, Pattern] | None:
        mandatory = None
        if self.alloc.mandatory:
            platform = [c for c in cands if self.alloc.funders[c.index].is_platform]
            if not platform or platform[0].hi < platform[0].lo:
                return None
            mandatory = platform[0]
            cands = [c for c in cands if c is not mandatory]
        cands = sorted((c for c in cands if c.hi >= c.lo), key=lambda c: (c.rate, c.key))
        return best_pattern(cands, mandatory, self.alloc.scale)

    def solve(self, max_rounds: int) -> tuple[int, float]:
        """Alternate master solves and pricing until no column improves; returns (rounds, cost)."""
        rounds, cost = 0, 0.0
        while True:
            rounds += 1
            res = self._master()
            funded_cost = float(res.fun) - UNFUNDED_PENALTY * float(
                res.x[len(self.columns) :].sum()
            )
            cost = funded_cost * UNIT_FEN / 100
            duals = np.asarray(res.ineqlin.marginals)
            class_duals = np.asarray(res.eqlin.marginals)
            if rounds >= max_rounds or not self.price(duals, class_duals):
                return rounds, cost

    def _master(self) -> Any:
        n_cols, n_cls, n_f = len(self.columns), len(self.classes), len(self.alloc.funders)
        # scipy's optimiser is imported here, not at module level: importing the funding
        # package (every online allocation) should not pay ~0.4 s for the batch LP.
        from scipy.optimize import linprog
        from scipy.sparse import coo_matrix

        scale = self.alloc.scale
        costs = np.empty(n_cols + n_cls)
        eq_rows, eq_cols, ub_rows, ub_cols, ub_vals = [], [], [], [], []
        for j, (c, pattern) in enumerate(self.columns):
            costs[j] = sum(units * self.rates[i] for i, units in pattern) / scale
            eq_rows.append(c)
            eq_cols.append(j)
            for i, units in pattern:
                ub_rows.append(i)
                ub_cols.append(j)
                ub_vals.append(units / scale)
        costs[n_cols:] = UNFUNDED_PENALTY
        eq_rows += list(range(n_cls))
        eq_cols += list(range(n_cols, n_cols + n_cls))
        a_eq = coo_matrix(
            (np.ones(len(eq_rows)), (eq_rows, eq_cols)), shape=(n_cls, n_cols + n_cls)
        )
        a_ub = coo_matrix((ub_vals, (ub_rows, ub_cols)), shape=(n_f, n_cols + n_cls))
        b_eq = np.array([cls.amount_fen / UNIT_FEN for cls in self.classes])
        res = linprog(costs, A_ub=a_ub.tocsr(), b_ub=self.caps, A_eq=a_eq.tocsr(), b_eq=b_eq,
                      bounds=(0, None), method="highs")  # fmt: skip
        if res.status != 0:
            raise RuntimeError(f"HiGHS failed on the funding LP: {res.message}")
        self.weights = np.asarray(res.x[:n_cols])
        return res


def _round(
    alloc: Allocator,
    requests: Sequence[LoanRequest],
    classes: list[_Class],
    lp: _ColumnLP,
    start: FenState,
) -> tuple[list[FundingPlan | None], int]:
    """Deal loans to patterns within budget and exact capacity; the rest go to the greedy."""
    state = start.copy()
    plans: list[FundingPlan | None] = [None] * len(requests)
    budgets: dict[int, list[_Budget]] = {}
    for j, (c, pattern) in enumerate(lp.columns):
        if lp.weights[j] > _EPS:
            budgets.setdefault(c, []).append(_Budget(float(lp.weights[j]) * UNIT_FEN, pattern))
    leftover: list[int] = []
    for c, cls in enumerate(classes):
        pool = budgets.get(c, [])
        for n in sorted(cls.loans, key=lambda n: (-requests[n].amount, n)):
            if not _deal(alloc, requests[n], pool, state, plans, n):
                leftover.append(n)
    for n in sorted(leftover):
        plans[n] = alloc.allocate_in(requests[n], state)
    return plans, len(leftover)


def _deal(
    alloc: Allocator,
    request: LoanRequest,
    pool: list[_Budget],
    state: FenState,
    plans: list[FundingPlan | None],
    n: int,
) -> bool:
    """Book the loan on the pattern with most budget left, if it fits budget and capacity."""
    if not pool:
        return False
    entry = max(pool, key=lambda e: e.remaining)
    amount = to_fen(request.amount)
    if entry.remaining + 1 < amount:
        return False
    parts = split_fen(amount, dict(entry.pattern), alloc.scale)
    if any(fen > alloc.capacity(i, state)[0] for i, fen in parts.items()):
        return False
    for i, fen in parts.items():
        state.add(i, fen)
    entry.remaining -= amount
    plans[n] = alloc.plan(request, parts, entry.pattern)
    return True


def _totals(
    plans: Sequence[FundingPlan], requests: Sequence[LoanRequest]
) -> tuple[Decimal, Decimal, int]:
    """(CNY funded, annual cost, unfunded count). More CNY funded wins, then lower cost."""
    funded = sum((r.amount for p, r in zip(plans, requests, strict=True) if p.funded), Decimal(0))
    cost = sum((p.annual_cost for p in plans), Decimal(0))
    return funded, cost, sum(1 for p in plans if not p.funded)


def _compare(
    rounded: list[FundingPlan | None],
    greedy: list[FundingPlan],
    requests: Sequence[LoanRequest],
    rounds: int,
    bound: float,
    n_classes: int,
    repaired: int,
) -> BatchResult:
    plans = [p for p in rounded if p is not None]
    g_funded, g_cost, g_n = _totals(greedy, requests)
    b_funded, b_cost, b_n = _totals(plans, requests)
    use_lp = (-b_funded, b_cost) <= (-g_funded, g_cost)
    chosen, method = (plans, BatchMethod.LP) if use_lp else (greedy, BatchMethod.GREEDY)
    return BatchResult(
        plans=tuple(chosen), method=method, annual_cost=b_cost if use_lp else g_cost,
        greedy_cost=g_cost, unfunded=b_n if use_lp else g_n, greedy_unfunded=g_n,
        funded=b_funded if use_lp else g_funded, greedy_funded=g_funded,
        lp_bound=bound, rounds=rounds, classes=n_classes, repaired=repaired,
    )  # fmt: skip

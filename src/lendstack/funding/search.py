"""The single-loan optimum: which funders, at which shares, for the least funding cost.

Each candidate funder may take a share in [lo, hi] (integer quantum units) or nothing; the
shares must sum to `scale`. For a fixed set of funders the cheapest shares are easy: everyone
gets its lower bound and the rest fills cheapest-first up to each upper bound. So the search is
over sets, depth-first in (cost, id) order, with a lower bound that prunes whole subtrees: any
set that extends `members` with funders from position j on pays at least the cost of filling
`members` and pricing the rest at funder j's rate. With a 30% minimum share a loan has at most
three funders, and the bound usually stops the search after a handful of sets.

The same search prices columns for the batch LP, with dual-adjusted (float) rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    """A funder able to take a share in [lo, hi] of this loan, at `rate` per unit share."""

    index: int
    key: str
    rate: float
    lo: int
    hi: int


Pattern = tuple[tuple[int, int], ...]
"""((funder index, share units), ...) sorted by funder index."""


def _fill(members: Sequence[Candidate], scale: int) -> tuple[float, Pattern] | None:
    lo_sum = sum(m.lo for m in members)
    if lo_sum > scale or sum(m.hi for m in members) < scale:
        return None
    rem = scale - lo_sum
    cost = 0.0
    shares = []
    for m in members:
        add = min(m.hi - m.lo, rem)
        rem -= add
        cost += (m.lo + add) * m.rate
        shares.append((m.index, m.lo + add))
    return cost, tuple(sorted(shares))


def _bound(members: Sequence[Candidate], rate_next: float, scale: int) -> float:
    """Least cost of any superset of `members` whose other funders cost >= `rate_next`."""
    rem = scale - sum(m.lo for m in members)
    cost = sum(m.lo * m.rate for m in members)
    for m in members:
        if m.rate >= rate_next or rem <= 0:
            break
        add = min(m.hi - m.lo, rem)
        cost += add * m.rate
        rem -= add
    return cost + rem * rate_next


def best_pattern(
    others: Sequence[Candidate], mandatory: Candidate | None, scale: int
) -> tuple[float, Pattern] | None:
    """The cheapest feasible pattern, or None. `others` must be sorted by (rate, key).

    Ties go to the set found first (smaller sets, then funders earlier in (rate, key) order),
    because a set only replaces the best when strictly cheaper: deterministic by construction.
    """
    root = [mandatory] if mandatory is not None else []
    suffix_hi = _suffix_max_hi(others)
    min_lo = min((c.lo for c in others), default=scale + 1)
    best: list[tuple[float, Pattern] | None] = [None]

    def visit(start: int, members: list[Candidate], lo_sum: int) -> None:
        found = _fill(members, scale) if members else None
        if found is not None and (best[0] is None or found[0] < best[0][0]):
            best[0] = found
        slots = (scale - lo_sum) // min_lo
        if slots * suffix_hi[start] < scale - sum(m.hi for m in members):
            return
        for j in range(start, len(others)):
            c = others[j]
            if lo_sum + c.lo > scale:
                continue
            current = best[0]
            if current is not None and _bound(members, c.rate, scale) >= current[0]:
                break
            merged = sorted([*members, c], key=lambda m: (m.rate, m.key))
            visit(j + 1, merged, lo_sum + c.lo)

    visit(0, root, sum(m.lo for m in root))
    return best[0]


def _suffix_max_hi(others: Sequence[Candidate]) -> list[int]:
    out = [0] * (len(others) + 1)
    for j in range(len(others) - 1, -1, -1):
        out[j] = max(out[j + 1], others[j].hi)
    return out

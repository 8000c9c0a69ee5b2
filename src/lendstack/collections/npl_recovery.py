"""Recovery curves: cumulative cash collected after default, as a share of the defaulted claim.

A curve is indexed by whole months since default (month 0 = the first day at 90+ DPD, the
次级 threshold) and runs to `HORIZON` months. It is estimated from the lender's own charged-off
loans, per segment (product), censoring-aware: the increment of month m is the cash collected
in month m by loans observed for at least m months, over those loans' exposure, so young
charge-offs pull no month they have not lived through towards zero.

History that is too thin is not trusted:
- a segment needs `MIN_LOANS` charged-off loans and `MIN_MONTHS` months with at least
  `MIN_LOANS // 4` of them observed; otherwise the lender's pooled history is used, if it
  qualifies; otherwise the documented prior (`PRIOR`);
- an observed curve shorter than the horizon is extended with the prior's shape, scaled to meet
  the observed curve at its last month (scale capped at `MAX_SCALE`).
Every curve says which of these it is (`source`), and the valuation reports it.

The prior follows the pilot's reported outcomes (REGULATION.md §7.2): aged, written-off
personal packages recover 2–10 % of principal + interest. Gross cash of 12 % of the claim over
ten years, starting at charge-off (month 3, 180 DPD) and rising as 1 - exp(-t / 24 months),
gives after the buyer's collection cost and discounting at AMC target returns prices inside the
2022–2025 range of 2.65–7.3 % of principal + interest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

HORIZON = 120
"""Months since default a curve covers (ten years)."""
MIN_LOANS = 100
MIN_MONTHS = 12
MAX_SCALE = 3.0


class Source(StrEnum):
    HISTORY = "history"
    POOLED = "pooled history"
    PRIOR = "prior"


@dataclass(frozen=True, slots=True)
class Prior:
    ultimate: float = 0.12
    """Cumulative gross recovery as a share of the claim, as time runs out."""
    start_month: int = 3
    """Recoveries start at charge-off: 180 DPD is 3 months after default at 90 DPD."""
    tau_months: float = 24.0

    def cumulative(self, horizon: int = HORIZON) -> NDArray[np.float64]:
        months = np.arange(horizon + 1, dtype=np.float64)
        t = np.maximum(months - self.start_month, 0.0)
        return self.ultimate * (1.0 - np.exp(-t / self.tau_months))


PRIOR = Prior()


@dataclass(frozen=True, slots=True)
class History:
    """Charged-off loans of one segment: exposure (fen) and months observed since default,
    and their recoveries as (loan index, month since default, fen)."""

    exposure: NDArray[np.int64]
    observed: NDArray[np.int64]
    rec_loan: NDArray[np.int64]
    rec_month: NDArray[np.int64]
    rec_fen: NDArray[np.int64]

    @property
    def loans(self) -> int:
        return len(self.exposure)


@dataclass(frozen=True, slots=True)
class Curve:
    segment: str
    cumulative: NDArray[np.float64]
    source: Source
    loans: int
    months_observed: int
    note: str

    def as_json(self) -> dict[str, object]:
        c = self.cumulative
        return {
            "segment": self.segment,
            "source": self.source.value,
            "loans": self.loans,
            "months_observed": self.months_observed,
            "note": self.note,
            "cumulative": {str(m): round(float(c[m]), 6) for m in (6, 12, 24, 36, 60, HORIZON)},
        }


def observed_curve(history: History, horizon: int = HORIZON) -> tuple[NDArray[np.float64], int]:
    """The censoring-aware cumulative curve and the last month with enough loans observed."""
    if history.loans == 0:
        return np.zeros(horizon + 1), -1
    obs = np.minimum(history.observed, horizon)
    # exposure of loans observed at least m months, for every m
    at_least = np.bincount(obs, weights=history.exposure, minlength=horizon + 1)[::-1].cumsum()[
        ::-1
    ]
    count = np.bincount(obs, minlength=horizon + 1)[::-1].cumsum()[::-1]
    keep = history.rec_month <= np.minimum(obs[history.rec_loan], horizon)
    cash = np.bincount(history.rec_month[keep], weights=history.rec_fen[keep],
                       minlength=horizon + 1)[: horizon + 1]  # fmt: skip
    inc = np.divide(cash, at_least, out=np.zeros(horizon + 1), where=at_least > 0)
    enough = np.nonzero(count >= max(1, MIN_LOANS // 4))[0]
    last = int(enough[-1]) if len(enough) else -1
    cum = np.cumsum(inc)
    if last < horizon:
        cum[last + 1 :] = cum[max(last, 0)]
    return cum, last


def _extend(
    cum: NDArray[np.float64], last: int, prior: NDArray[np.float64]
) -> tuple[NDArray[np.float64], float]:
    """Carry the observed curve past `last` along the prior's shape, scaled to meet it."""
    if last >= len(cum) - 1:
        return cum, 1.0
    base = prior[last]
    scale = min(MAX_SCALE, cum[last] / base) if base > 0 else 1.0
    out = cum.copy()
    out[last + 1 :] = cum[last] + scale * (prior[last + 1 :] - prior[last])
    return out, float(scale)


def qualifies(history: History, last: int) -> bool:
    return history.loans >= MIN_LOANS and last >= MIN_MONTHS


def build_curve(segment: str, history: History, pooled: History, prior: Prior = PRIOR) -> Curve:
    """The segment's curve from its own history, else the pooled history, else the prior."""
    base = prior.cumulative()
    for source, hist in ((Source.HISTORY, history), (Source.POOLED, pooled)):
        cum, last = observed_curve(hist)
        if qualifies(hist, last):
            curve, scale = _extend(cum, last, base)
            note = f"{hist.loans} charged-off loans observed to month {last}"
            if last < HORIZON:
                note += f"; extended with the prior's shape × {scale:.2f}"
            return Curve(segment, curve, source, hist.loans, last, note)
    note = (
        f"history too thin ({history.loans} charged-off loans in the segment, {pooled.loans} in "
        f"all; need {MIN_LOANS} observed {MIN_MONTHS}+ months): prior {prior.ultimate:.0%} of "
        f"the claim, from month {prior.start_month}, time constant {prior.tau_months:g} months"
    )
    return Curve(segment, base, Source.PRIOR, history.loans, -1, note)


def pool(histories: Sequence[History]) -> History:
    """All segments' histories as one (loan indices renumbered)."""
    if not histories:
        empty = np.zeros(0, dtype=np.int64)
        return History(empty, empty, empty, empty, empty)
    offsets = np.cumsum([0] + [h.loans for h in histories[:-1]])
    return History(
        np.concatenate([h.exposure for h in histories]),
        np.concatenate([h.observed for h in histories]),
        np.concatenate([h.rec_loan + o for h, o in zip(histories, offsets, strict=True)]),
        np.concatenate([h.rec_month for h in histories]),
        np.concatenate([h.rec_fen for h in histories]),
    )


def months_between(days: NDArray[np.int64]) -> NDArray[np.int64]:
    """Whole months in a number of days (30.4375-day months), never negative."""
    return np.maximum(np.floor(days / 30.4375), 0).astype(np.int64)


def month_of(days: int) -> int:
    return max(0, math.floor(days / 30.4375))


__all__ = [
    "HORIZON",
    "MIN_LOANS",
    "MIN_MONTHS",
    "PRIOR",
    "Curve",
    "History",
    "Prior",
    "Source",
    "build_curve",
    "month_of",
    "months_between",
    "observed_curve",
    "pool",
]

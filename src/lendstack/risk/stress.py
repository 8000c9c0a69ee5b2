"""Macro stress tests: a 9-quarter scenario through the Vasicek model to losses and capital.

A scenario is a data file (unemployment and household-income shock per quarter). Each
quarter's macro values become a shift of the Vasicek systematic factor, the shift moves every
segment's 12-month PD, and the stressed PDs drive defaults, losses, ECL, RWA and the capital
ratio. The method, its assumptions and the calibration are in docs/stress.md.
The scenario itself (`Scenario`, its files, the factor model) is in `risk/stress_scenario.py`;
this module holds the portfolio and capital inputs, the projection and its result.

Floats carry the model (PDs, factor shifts); money is Decimal. Each segment's EAD runs off in
Decimal fen, every money figure is rounded half-even to the fen once, and totals are exact sums
of those roundings, so the capital path reconciles to the fen with the losses and profits shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lendstack.core.errors import ValidationError
from lendstack.core.money import FEN, ZERO, Rounding, quantize_fen
from lendstack.risk.capital import (
    AssetClass,
    asset_class_for,
    correlation,
    quarterly_pd,
    risk_weighted_assets,
    vasicek_pd,
)
from lendstack.risk.stress_scenario import Scenario, coerce_real

__all__ = [
    "CapitalBase",
    "Portfolio",
    "QuarterResult",
    "Segment",
    "SegmentPath",
    "SegmentQuarter",
    "StressResult",
    "run_stress",
]

_RATE = Decimal("0.000001")
_COUNT = Decimal("0.01")


def _check_money(value: Any, field: str) -> None:
    """Money comes in as Decimal in whole fen, never as a float (DESIGN.md: no float balances)."""
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValidationError(f"must be a Decimal amount >= 0, got {value!r}", field=field)
    if value != value.quantize(FEN):
        raise ValidationError(f"{value} is more precise than the fen", field=field)


# --- the portfolio and capital inputs ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """A homogeneous pool: one product (and grade), its loans, exposure and risk parameters."""

    product: str
    count: int
    ead: Decimal
    pd: float
    """12-month PD of a performing loan in the pool, at the reference unemployment rate."""
    lgd: float
    grade: str = ""
    asset_class: AssetClass | None = None
    """None: the product's class from `capital.PRODUCT_ASSET_CLASSES` (other retail if unknown)."""

    def __post_init__(self) -> None:
        if not isinstance(self.product, str) or not self.product:
            raise ValidationError("must name a product", field="product")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ValidationError(f"must be a whole number >= 0, got {self.count!r}", field="count")
        _check_money(self.ead, "ead")
        coerce_real(self, "pd", 0, 1, "pd")
        coerce_real(self, "lgd", 0, 1, "lgd")
        if self.asset_class is not None:
            try:
                object.__setattr__(self, "asset_class", AssetClass(self.asset_class))
            except ValueError as exc:
                known = ", ".join(AssetClass)
                raise ValidationError(f"must be one of {known}", field="asset_class") from exc

    @property
    def irb_class(self) -> AssetClass:
        return self.asset_class or asset_class_for(self.product)


@dataclass(frozen=True, slots=True)
class Portfolio:
    """The book to stress, as segments; the caller aggregates loans into them."""

    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.segments))
        if not self.segments:
            raise ValidationError("a portfolio needs at least one segment", field="segments")


@dataclass(frozen=True, slots=True)
class CapitalBase:
    """Starting capital and what earns or consumes it besides credit losses."""

    capital: Decimal
    pre_provision_profit_rate: float = 0.0
    """Annual profit before credit losses as a share of performing EAD (interest + fees - costs)."""
    other_rwa: Decimal = ZERO
    """RWA outside the stressed book (operational risk, other assets), held flat."""
    charge_ecl_build: bool = False
    """Also charge the change in the ECL stock each quarter, as IFRS 9 provisioning does."""

    def __post_init__(self) -> None:
        _check_money(self.capital, "capital")
        _check_money(self.other_rwa, "other_rwa")
        coerce_real(self, "pre_provision_profit_rate", 0, 1, "pre_provision_profit_rate")


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentQuarter:
    """One segment at one quarter end; quarter 0 is the starting position."""

    quarter: int
    stressed_pd: float
    performing_count: float
    """Expected number of loans still performing (a model expectation, so fractional)."""
    defaults_count: float
    defaults_amount: Decimal
    losses: Decimal
    ead: Decimal
    """Performing exposure at the quarter end: the start less everything defaulted."""
    ecl: Decimal
    rwa: Decimal


@dataclass(frozen=True, slots=True)
class SegmentPath:
    product: str
    grade: str
    asset_class: AssetClass
    correlation: float
    """The correlation used to shift this segment's PD (the scenario's override if given)."""
    quarters: tuple[SegmentQuarter, ...]


@dataclass(frozen=True, slots=True)
class QuarterResult:
    """The book at one quarter end (quarter 0: the start); flows are over the quarter."""

    quarter: int
    factor_shift: float
    stressed_pd: float
    """EAD-weighted stressed 12-month PD, weighted by exposure at the start of the quarter."""
    defaults_count: float
    defaults_amount: Decimal
    losses: Decimal
    cumulative_defaults_count: float
    cumulative_defaults_amount: Decimal
    cumulative_losses: Decimal
    ead: Decimal
    ecl: Decimal
    rwa: Decimal
    pre_provision_profit: Decimal
    capital: Decimal
    capital_ratio: float | None
    """capital / (RWA + other RWA); None once nothing is risk-weighted (all defaulted)."""

    def to_json(self) -> dict[str, Any]:
        """Money as Decimal (rendered as strings by `json_default`), rates to 6 places."""
        ratio = None if self.capital_ratio is None else _decimal(self.capital_ratio, _RATE)
        return {
            "quarter": self.quarter, "factor_shift": _decimal(self.factor_shift, _RATE),
            "stressed_pd": _decimal(self.stressed_pd, _RATE),
            "defaults_count": _decimal(self.defaults_count, _COUNT),
            "defaults_amount": self.defaults_amount, "losses": self.losses,
            "cumulative_defaults_count": _decimal(self.cumulative_defaults_count, _COUNT),
            "cumulative_defaults_amount": self.cumulative_defaults_amount,
            "cumulative_losses": self.cumulative_losses, "ead": self.ead, "ecl": self.ecl,
            "rwa": self.rwa, "pre_provision_profit": self.pre_provision_profit,
            "capital": self.capital, "capital_ratio": ratio,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class StressResult:
    """A scenario's projection: the book at the start, at each quarter end, and per segment."""

    scenario: str
    start: QuarterResult
    quarters: tuple[QuarterResult, ...]
    segments: tuple[SegmentPath, ...]

    @property
    def cumulative_defaults_count(self) -> float:
        return self.quarters[-1].cumulative_defaults_count

    @property
    def cumulative_defaults_amount(self) -> Decimal:
        return self.quarters[-1].cumulative_defaults_amount

    @property
    def cumulative_losses(self) -> Decimal:
        return self.quarters[-1].cumulative_losses

    @property
    def peak_ecl(self) -> Decimal:
        return max(q.ecl for q in self.quarters)

    @property
    def min_capital_ratio(self) -> float | None:
        ratios = [
            q.capital_ratio for q in (self.start, *self.quarters) if q.capital_ratio is not None
        ]
        return min(ratios) if ratios else None

    def to_json(self) -> dict[str, Any]:
        low = self.min_capital_ratio
        return {
            "scenario": self.scenario,
            "cumulative_defaults_count": _decimal(self.cumulative_defaults_count, _COUNT),
            "cumulative_defaults_amount": self.cumulative_defaults_amount,
            "cumulative_losses": self.cumulative_losses,
            "peak_ecl": self.peak_ecl,
            "min_capital_ratio": None if low is None else _decimal(low, _RATE),
            "quarters": [q.to_json() for q in (self.start, *self.quarters)],
        }


def _decimal(value: float, quantum: Decimal) -> Decimal:
    return Decimal(value).quantize(quantum, rounding=Rounding.HALF_EVEN.decimal_mode)


def _fen(value: float) -> Decimal:
    """A model float as money: exact binary value, rounded half-even to the fen."""
    return quantize_fen(Decimal(value), Rounding.HALF_EVEN)


# --- the projection ------------------------------------------------------------------------


def run_stress(portfolio: Portfolio, scenario: Scenario, *, capital: CapitalBase) -> StressResult:
    """Project the book through the scenario's nine quarters; pure, nothing is written."""
    shifts = scenario.shifts()
    paths = tuple(_segment_path(s, scenario, shifts) for s in portfolio.segments)
    rows = _book_rows(paths, shifts, scenario.profit_factor, capital)
    return StressResult(scenario.id, rows[0], tuple(rows[1:]), paths)


def _segment_path(segment: Segment, scenario: Scenario, shifts: Sequence[float]) -> SegmentPath:
    """One segment quarter by quarter: defaults leave the book, the rest is re-lent (static)."""
    asset_class = segment.irb_class
    override = scenario.correlation_for(segment.product)
    rho = correlation(asset_class, segment.pd) if override is None else override
    start = _start_row(segment, asset_class)
    rows = [start]
    for quarter, z in enumerate(shifts, start=1):
        stressed = vasicek_pd(segment.pd, rho, z, scenario.model.residual_sd)
        rows.append(_next_row(rows[-1], quarter, stressed, segment, asset_class))
    return SegmentPath(segment.product, segment.grade, asset_class, rho, tuple(rows))


def _start_row(segment: Segment, asset_class: AssetClass) -> SegmentQuarter:
    ead = float(segment.ead)
    return SegmentQuarter(
        quarter=0, stressed_pd=segment.pd, performing_count=float(segment.count),
        defaults_count=0.0, defaults_amount=ZERO, losses=ZERO, ead=segment.ead,
        ecl=_fen(segment.pd * segment.lgd * ead),
        rwa=_fen(risk_weighted_assets(ead, segment.pd, segment.lgd, asset_class)),
    )  # fmt: skip


def _next_row(
    prev: SegmentQuarter, quarter: int, stressed: float, segment: Segment, asset_class: AssetClass
) -> SegmentQuarter:
    """Defaults at the stressed quarterly hazard; losses are differences of cumulative losses,
    rounded once each, so the cumulative figure never moves against the cumulative defaults."""
    hazard = quarterly_pd(stressed)
    defaulted = min(prev.ead, _fen(float(prev.ead) * hazard))
    ead = prev.ead - defaulted
    losses = _loss_to_date(segment, ead) - _loss_to_date(segment, prev.ead)
    return SegmentQuarter(
        quarter=quarter, stressed_pd=stressed,
        performing_count=prev.performing_count * (1 - hazard),
        defaults_count=prev.performing_count * hazard, defaults_amount=defaulted,
        losses=losses, ead=ead, ecl=_fen(stressed * segment.lgd * float(ead)),
        rwa=_fen(risk_weighted_assets(float(ead), stressed, segment.lgd, asset_class)),
    )  # fmt: skip


def _loss_to_date(segment: Segment, ead_now: Decimal) -> Decimal:
    """LGD x everything that has defaulted so far; recoveries are taken at default."""
    return _fen(float(segment.ead - ead_now) * segment.lgd)


@dataclass(frozen=True, slots=True)
class _Totals:
    stressed_pd: float
    performing_count: float
    defaults_count: float
    defaults_amount: Decimal
    losses: Decimal
    ead: Decimal
    ecl: Decimal
    rwa: Decimal


def _totals(paths: Sequence[SegmentPath], quarter: int) -> _Totals:
    """The book at a quarter: exact Decimal sums; the PD weighted by start-of-quarter EAD."""
    rows = [p.quarters[quarter] for p in paths]
    opening = [float(p.quarters[max(quarter - 1, 0)].ead) for p in paths]
    weight = sum(opening)
    mean_pd = sum(r.stressed_pd * w for r, w in zip(rows, opening, strict=True))
    return _Totals(
        stressed_pd=mean_pd / weight if weight else 0.0,
        performing_count=sum(r.performing_count for r in rows),
        defaults_count=sum(r.defaults_count for r in rows),
        defaults_amount=sum((r.defaults_amount for r in rows), ZERO),
        losses=sum((r.losses for r in rows), ZERO), ead=sum((r.ead for r in rows), ZERO),
        ecl=sum((r.ecl for r in rows), ZERO), rwa=sum((r.rwa for r in rows), ZERO),
    )  # fmt: skip


def _book_rows(
    paths: Sequence[SegmentPath], shifts: Sequence[float], profit_factor: float, base: CapitalBase
) -> list[QuarterResult]:
    """capital_t = capital_{t-1} - losses_t + profit_t (- ECL build, if charged), in Decimal."""
    opening = _totals(paths, 0)
    rows = [_result(0, 0.0, opening, opening, ZERO, ZERO, base.capital, base)]
    capital, cumulative = base.capital, ZERO
    for quarter, z in enumerate(shifts, start=1):
        now, before = _totals(paths, quarter), rows[-1]
        profit = _fen(base.pre_provision_profit_rate / 4 * profit_factor * float(before.ead))
        build = now.ecl - before.ecl if base.charge_ecl_build else ZERO
        capital = capital - now.losses - build + profit
        cumulative += now.losses
        rows.append(_result(quarter, z, now, opening, cumulative, profit, capital, base))
    return rows


def _result(
    quarter: int, z: float, now: _Totals, opening: _Totals, cumulative_losses: Decimal,
    profit: Decimal, capital: Decimal, base: CapitalBase,
) -> QuarterResult:  # fmt: skip
    denominator = now.rwa + base.other_rwa
    return QuarterResult(
        quarter=quarter, factor_shift=z, stressed_pd=now.stressed_pd,
        defaults_count=now.defaults_count, defaults_amount=now.defaults_amount,
        losses=now.losses,
        cumulative_defaults_count=opening.performing_count - now.performing_count,
        cumulative_defaults_amount=opening.ead - now.ead,
        cumulative_losses=cumulative_losses, ead=now.ead, ecl=now.ecl, rwa=now.rwa,
        pre_provision_profit=profit, capital=capital,
        capital_ratio=float(capital) / float(denominator) if denominator > 0 else None,
    )  # fmt: skip

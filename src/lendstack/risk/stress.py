"""Macro stress tests: a 9-quarter scenario through the Vasicek model to losses and capital.

A scenario is a data file (unemployment and household-income shock per quarter). Each
quarter's macro values become a shift of the Vasicek systematic factor, the shift moves every
segment's 12-month PD, and the stressed PDs drive defaults, losses, ECL, RWA and the capital
ratio. The method, its assumptions and the calibration are in docs/stress.md.

Floats carry the model (PDs, factor shifts); money is Decimal. Each segment's EAD runs off in
Decimal fen, every money figure is rounded half-even to the fen once, and totals are exact sums
of those roundings, so the capital path reconciles to the fen with the losses and profits shown.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr
from pydantic import ValidationError as PydanticError
from pydantic_core import PydanticCustomError

from lendstack.core.datafiles import load_toml
from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.money import FEN, ZERO, Rounding, quantize_fen
from lendstack.risk.capital import (
    AssetClass,
    asset_class_for,
    correlation,
    quarterly_pd,
    risk_weighted_assets,
    vasicek_pd,
)

__all__ = [
    "QUARTERS",
    "CapitalBase",
    "FactorModel",
    "MacroQuarter",
    "Portfolio",
    "QuarterResult",
    "Scenario",
    "Segment",
    "SegmentPath",
    "SegmentQuarter",
    "StressResult",
    "builtin_scenario",
    "builtin_scenarios",
    "load_scenario",
    "parse_scenario",
    "run_stress",
]

QUARTERS = 9
"""The stress horizon: nine quarters, as in the Fed's and the EBA's supervisory exercises."""

_RATE = Decimal("0.000001")
_COUNT = Decimal("0.01")


def _real(value: Any, low: float, high: float, field: str) -> float:
    """A model number as float: int, float or Decimal in [low, high]; never a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValidationError(f"must be a number, got {value!r}", field=field)
    number = float(value)
    if not low <= number <= high:  # also refuses NaN
        raise ValidationError(f"must be in [{low}, {high}], got {value}", field=field)
    return number


def _check_money(value: Any, field: str) -> None:
    """Money comes in as Decimal in whole fen, never as a float (DESIGN.md: no float balances)."""
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValidationError(f"must be a Decimal amount >= 0, got {value!r}", field=field)
    if value != value.quantize(FEN):
        raise ValidationError(f"{value} is more precise than the fen", field=field)


def _set_real(record: Any, name: str, low: float, high: float, field: str) -> None:
    """Check and normalise one numeric field of a frozen record, so Decimal and float agree."""
    object.__setattr__(record, name, _real(getattr(record, name), low, high, field))


# --- scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MacroQuarter:
    """One quarter of the macro path: unemployment rate and income shortfall, both in per cent."""

    quarter: int
    unemployment: float
    income_shock: float
    """Real household disposable income below its trend path, per cent (2.0 = 2 % below)."""

    def __post_init__(self) -> None:
        if isinstance(self.quarter, bool) or not isinstance(self.quarter, int):
            raise ValidationError(f"must be a whole number, got {self.quarter!r}", field="quarter")
        where = f"quarters[{self.quarter}]"
        _set_real(self, "unemployment", 0, 100, f"{where}.unemployment")
        _set_real(self, "income_shock", -100, 100, f"{where}.income_shock")


@dataclass(frozen=True, slots=True)
class FactorModel:
    """How a macro quarter becomes the factor shift z = -beta (u - u_ref) - gamma s."""

    reference_unemployment: float = 5.2
    """The rate at which the book's PDs were estimated (2025 average, docs/stress.md)."""
    unemployment_beta: float = 0.5
    """Factor standard deviations per percentage point of unemployment above the reference."""
    income_gamma: float = 0.15
    """Factor standard deviations per per cent of household income below trend."""
    residual_sd: float = 1.0
    """Spread of the factor around the shift: 1 projects expectations, 0 reads a point."""

    def __post_init__(self) -> None:
        _set_real(self, "reference_unemployment", 0, 100, "model.reference_unemployment")
        _set_real(self, "unemployment_beta", 0, 10, "model.unemployment_beta")
        _set_real(self, "income_gamma", 0, 10, "model.income_gamma")
        _set_real(self, "residual_sd", 0, 1, "model.residual_sd")

    def shift(self, macro: MacroQuarter) -> float:
        """Negative when the economy is worse than the reference; beta, gamma >= 0 keep it so."""
        excess = macro.unemployment - self.reference_unemployment
        shift = -self.unemployment_beta * excess - self.income_gamma * macro.income_shock
        return shift + 0.0  # turns -0.0 (beta x 0) into 0.0, so reports never show "-0"


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named 9-quarter macro path with its factor model and optional correlation overrides."""

    id: str
    name: str
    quarters: tuple[MacroQuarter, ...]
    model: FactorModel = FactorModel()
    profit_factor: float = 1.0
    """Multiplier on pre-provision profit: margins shrink in a downturn."""
    correlations: tuple[tuple[str, float], ...] = ()
    """(product id, asset correlation) pairs that replace the Basel correlation in the shift."""
    description: str = ""
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id or self.id != self.id.lower() or not self.id.replace("-", "").isalnum():
            raise ValidationError(f"must be a lower-case slug, got {self.id!r}", field="id")
        object.__setattr__(self, "quarters", _complete_quarters(tuple(self.quarters)))
        _set_real(self, "profit_factor", 0, 10, "profit_factor")
        pairs = tuple((p, _real(r, 0, 1, f"correlations.{p}")) for p, r in self.correlations)
        for product, rho in pairs:
            if rho in (0.0, 1.0):
                raise ValidationError(
                    f"must be in (0, 1), got {rho}", field=f"correlations.{product}"
                )
        object.__setattr__(self, "correlations", pairs)

    def shifts(self) -> tuple[float, ...]:
        return tuple(self.model.shift(q) for q in self.quarters)

    def correlation_for(self, product: str) -> float | None:
        return dict(self.correlations).get(product)


def _complete_quarters(quarters: tuple[MacroQuarter, ...]) -> tuple[MacroQuarter, ...]:
    """Exactly quarters 1..9, each once; a gap or a repeat names the quarter."""
    numbers = [q.quarter for q in quarters]
    for n in numbers:
        if not 1 <= n <= QUARTERS:
            raise ValidationError(
                f"quarters run from 1 to {QUARTERS}", field=f"quarters[{n}].quarter"
            )
    for n in range(1, QUARTERS + 1):
        found = numbers.count(n)
        if found != 1:
            problem = "is missing" if found == 0 else f"appears {found} times"
            raise ValidationError(
                f"quarter {n} {problem}: a scenario has each of quarters 1-{QUARTERS} once "
                f"(found {sorted(numbers)})",
                field=f"quarters[{n}]",
            )
    return tuple(sorted(quarters, key=lambda q: q.quarter))


def _number(value: Any) -> float:
    """TOML numbers only (read as int or Decimal): a string or a boolean is refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise PydanticCustomError(
            "number", "must be a number, not {kind}", {"kind": type(value).__name__}
        )
    if not math.isfinite(value):
        raise PydanticCustomError(
            "number", "must be a finite number, got {value}", {"value": value}
        )
    return float(value)


_Number = Annotated[float, BeforeValidator(_number)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _QuarterFile(_Strict):
    quarter: StrictInt
    unemployment: _Number
    income_shock: _Number


_DEFAULT_MODEL = FactorModel()


class _ModelFile(_Strict):
    reference_unemployment: _Number = _DEFAULT_MODEL.reference_unemployment
    unemployment_beta: _Number = _DEFAULT_MODEL.unemployment_beta
    income_gamma: _Number = _DEFAULT_MODEL.income_gamma
    residual_sd: _Number = _DEFAULT_MODEL.residual_sd


class _ScenarioFile(_Strict):
    """The on-disk shape (types, presence, no unknown keys); ranges live in the dataclasses."""

    id: StrictStr
    name: StrictStr
    description: StrictStr = ""
    sources: list[StrictStr] = Field(default_factory=list)
    profit_factor: _Number = 1.0
    model: _ModelFile = Field(default_factory=_ModelFile)
    correlations: dict[StrictStr, _Number] = Field(default_factory=dict)
    quarters: list[_QuarterFile]

    def build(self) -> Scenario:
        quarters = tuple(
            MacroQuarter(q.quarter, q.unemployment, q.income_shock) for q in self.quarters
        )
        return Scenario(
            id=self.id, name=self.name, quarters=quarters,
            model=FactorModel(**self.model.model_dump()), profit_factor=self.profit_factor,
            correlations=tuple(sorted(self.correlations.items())),
            description=self.description, sources=tuple(self.sources),
        )  # fmt: skip


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """A scenario from TOML text. Numbers are read exactly (Decimal) and become floats once here.

    Every error is a `ValidationError` naming `source` and the field, e.g.
    `quarters[4].unemployment`; `[n]` is the quarter number, `[#n]` the n-th `[[quarters]]`
    entry when its own `quarter` key is missing or not a number.
    """
    data = load_toml(text, source)
    try:
        shape = _ScenarioFile.model_validate(data)
    except PydanticError as exc:
        first = exc.errors()[0]
        field = _field_name(first["loc"], data)
        raise ValidationError(f"{source}: {first['msg']}", field=field) from exc
    try:
        return shape.build()
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}", field=exc.field) from exc


def _field_name(loc: Sequence[int | str], data: Mapping[str, Any]) -> str:
    """Pydantic's location as the user reads it: list positions become quarter numbers."""
    if len(loc) >= 2 and loc[0] == "quarters" and isinstance(loc[1], int):
        entries = data.get("quarters")
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
        number = entry.get("quarter") if isinstance(entry, dict) else None
        valid = isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= QUARTERS
        label = str(number) if valid else f"#{loc[1] + 1}"
        return ".".join([f"quarters[{label}]", *map(str, loc[2:])])
    return ".".join(map(str, loc)) or "file"


def load_scenario(path: Path | str) -> Scenario:
    """A scenario file; an unreadable file is `NotFound` (field `scenario`)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFound(f"cannot read scenario file {file}: {exc}", field="scenario") from exc
    return parse_scenario(text, file.name)


@functools.cache
def builtin_scenarios() -> tuple[Scenario, ...]:
    """The shipped scenarios (lendstack/risk/scenarios), mildest first by peak factor shift."""
    folder = resources.files("lendstack") / "risk" / "scenarios"
    items = [t for t in folder.iterdir() if t.name.endswith(".toml")]
    scenarios = [parse_scenario(t.read_text("utf-8"), t.name) for t in items]
    return tuple(sorted(scenarios, key=lambda s: (-min(s.shifts()), s.id)))


def builtin_scenario(scenario_id: str) -> Scenario:
    for scenario in builtin_scenarios():
        if scenario.id == scenario_id:
            return scenario
    known = ", ".join(s.id for s in builtin_scenarios())
    raise NotFound(f"no built-in scenario {scenario_id!r} (built in: {known})", field="scenario")


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
        _set_real(self, "pd", 0, 1, "pd")
        _set_real(self, "lgd", 0, 1, "lgd")
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
        _set_real(self, "pre_provision_profit_rate", 0, 1, "pre_provision_profit_rate")


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

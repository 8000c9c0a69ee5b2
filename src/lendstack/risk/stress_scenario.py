"""Stress scenarios: the 9-quarter macro path, its factor model, and loading it from TOML.

A scenario is a data file (unemployment and household-income shock per quarter, the factor
model's coefficients, optional correlation overrides); the shipped ones are in
`risk/scenarios/`. This module reads and validates those files into `Scenario` records and
turns each quarter into a shift of the Vasicek systematic factor. It is separate from
`risk/stress.py`, which projects a portfolio through a scenario, so the file format and its
error messages can change without touching the projection, and the CLI can list and load
scenarios without it.
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

__all__ = [
    "QUARTERS",
    "FactorModel",
    "MacroQuarter",
    "Scenario",
    "builtin_scenario",
    "builtin_scenarios",
    "coerce_real",
    "load_scenario",
    "parse_scenario",
]

QUARTERS = 9
"""The stress horizon: nine quarters, as in the Fed's and the EBA's supervisory exercises."""


def _real(value: Any, low: float, high: float, field: str) -> float:
    """A model number as float: int, float or Decimal in [low, high]; never a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValidationError(f"must be a number, got {value!r}", field=field)
    number = float(value)
    if not low <= number <= high:  # also refuses NaN
        raise ValidationError(f"must be in [{low}, {high}], got {value}", field=field)
    return number


def coerce_real(record: Any, name: str, low: float, high: float, field: str) -> None:
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
        coerce_real(self, "unemployment", 0, 100, f"{where}.unemployment")
        coerce_real(self, "income_shock", -100, 100, f"{where}.income_shock")


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
        coerce_real(self, "reference_unemployment", 0, 100, "model.reference_unemployment")
        coerce_real(self, "unemployment_beta", 0, 10, "model.unemployment_beta")
        coerce_real(self, "income_gamma", 0, 10, "model.income_gamma")
        coerce_real(self, "residual_sd", 0, 1, "model.residual_sd")

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
        coerce_real(self, "profit_factor", 0, 10, "profit_factor")
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

"""ECL configuration: scenarios, `EclConfig`, its TOML file, and the LGD / PD table helpers.

Everything an ECL run depends on besides the loans and the PD term structure lives here: the
probability-weighted forward-looking scenarios and their Vasicek shift, the discount basis,
rounding, staging thresholds, and the per-product LGD and origination-PD tables read from
`ecl_config/default.toml` (or a file the user names). It is separate from `risk/ecl.py` so the
computation reads as the formula, and so storage and the CLI can build or read a config
without the numerical code; `risk/pd_curves.py` and `risk/ecl.py` both build on it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from scipy.special import ndtr, ndtri

from lendstack.core.datafiles import load_toml, validated
from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.money import Rounding
from lendstack.risk.staging import StagingConfig, parse_staging

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
TWELVE_MONTHS = 12


class DiscountBasis(StrEnum):
    EIR = "eir"
    """At the loan's effective interest rate (IFRS 9 5.5.17 / B5.5.44), monthly compounding."""
    NONE = "none"
    """Undiscounted: for sensitivity runs and hand-checkable tests."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A forward-looking scenario: a systematic-factor move `z` (standard deviations,
    negative = downturn) and/or a plain PD multiplier; z = 0, multiplier 1 is the base."""

    name: str
    weight: Decimal
    z: float = 0.0
    pd_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValidationError("must not be empty", field="scenarios.name")
        w = self.weight if isinstance(self.weight, Decimal) else Decimal(str(self.weight))
        if not w.is_finite() or not 0 <= w <= 1:
            raise ValidationError(f"must be in [0, 1], got {w}", field="scenarios.weight")
        z, m = float(self.z), float(self.pd_multiplier)
        if not math.isfinite(z):
            raise ValidationError(f"must be finite, got {z}", field="scenarios.z")
        if not (math.isfinite(m) and m > 0):
            raise ValidationError(f"must be > 0, got {m}", field="scenarios.pd_multiplier")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "pd_multiplier", m)

    def shift(self, p: F64, correlation: float) -> F64:
        """min(1, m * Phi(Phi^-1(p) - sqrt(rho/(1-rho)) z)); exactly p for the base."""
        out = np.asarray(p, dtype=np.float64)
        if self.z != 0.0:
            k = math.sqrt(correlation / (1.0 - correlation))
            out = np.asarray(ndtr(ndtri(out) - k * self.z), dtype=np.float64)
        if self.pd_multiplier != 1.0:
            out = np.minimum(1.0, out * self.pd_multiplier)
        return out


DEFAULT_SCENARIOS = (
    Scenario("base", Decimal("0.6")),
    Scenario("adverse", Decimal("0.3"), z=-1.0),
    Scenario("severe", Decimal("0.1"), z=-2.0),
)


@dataclass(frozen=True, slots=True)
class EclConfig:
    """Everything an ECL run depends on besides the loans; `default.toml` ships the defaults."""

    id: str = "default"
    scenarios: tuple[Scenario, ...] = DEFAULT_SCENARIOS
    correlation: float = 0.05
    stress_months: int = 36
    discount: DiscountBasis = DiscountBasis.EIR
    rounding: Rounding = Rounding.HALF_UP
    lgd_default: float = 0.85
    lgd_by_product: tuple[tuple[str, float], ...] = ()
    staging: StagingConfig = field(default_factory=StagingConfig)
    pd_default: float = 0.03
    """12-month PD at origination of a loan that no scored decision covers (from the book)."""
    pd_by_product: tuple[tuple[str, float], ...] = ()
    pd_bucket_floor: tuple[tuple[str, float], ...] = ()
    """Delinquency bucket label (M1, M2, ...) -> the least current 12-month PD of a loan in it."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scenarios", tuple(self.scenarios))
        object.__setattr__(self, "discount", DiscountBasis(self.discount))
        object.__setattr__(self, "rounding", Rounding(self.rounding))
        names = [s.name for s in self.scenarios]
        if not names or len(set(names)) != len(names):
            raise ValidationError("need at least one, with unique names", field="scenarios.name")
        total = sum((s.weight for s in self.scenarios), Decimal(0))
        if total != 1:
            raise ValidationError(f"weights must sum to 1, got {total}", field="scenarios.weight")
        if not 0 <= float(self.correlation) < 1:
            raise ValidationError(f"must be in [0, 1), got {self.correlation}", field="correlation")
        if isinstance(self.stress_months, bool) or not isinstance(self.stress_months, int):
            raise ValidationError("must be an integer", field="stress_months")
        if self.stress_months < TWELVE_MONTHS:
            raise ValidationError(
                "must be >= 12: a shift is calibrated on the 12-month PD", field="stress_months"
            )
        products = tuple((f"lgd.products.{k}", v) for k, v in self.lgd_by_product)
        for name, lgd in (("lgd.default", self.lgd_default), *products):
            if not 0 <= float(lgd) <= 1:
                raise ValidationError(f"LGD must be in [0, 1], got {lgd}", field=name)
        pds = (
            ("pd.default", self.pd_default),
            *((f"pd.products.{k}", v) for k, v in self.pd_by_product),
            *((f"pd.buckets.{k}", v) for k, v in self.pd_bucket_floor),
        )
        for name, pd in pds:
            if not 0 <= float(pd) <= 1:
                raise ValidationError(f"PD must be in [0, 1], got {pd}", field=name)
        object.__setattr__(self, "correlation", float(self.correlation))
        object.__setattr__(self, "lgd_default", float(self.lgd_default))
        object.__setattr__(self, "pd_default", float(self.pd_default))

    @property
    def weights(self) -> F64:
        return np.array([float(s.weight) for s in self.scenarios], dtype=np.float64)


# --- config files ------------------------------------------------------------------------


class _ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr
    weight: Decimal
    z: Decimal = Decimal(0)
    pd_multiplier: Decimal = Decimal(1)


class _LgdFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: Decimal
    products: dict[str, Decimal] = {}


class _PdFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: Decimal = Decimal("0.03")
    products: dict[str, Decimal] = {}
    buckets: dict[str, Decimal] = {}


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: StrictStr
    description: StrictStr = ""
    rounding: Rounding = Rounding.HALF_UP
    discount: DiscountBasis = DiscountBasis.EIR
    correlation: Decimal
    stress_months: StrictInt
    staging: dict[str, Any] = {}
    scenarios: list[_ScenarioFile]
    lgd: _LgdFile
    pd: _PdFile = Field(default_factory=_PdFile)


def parse_config(data: dict[str, Any], source: str) -> EclConfig:
    """An `EclConfig` from parsed TOML; every error is a ValidationError naming the field."""
    raw = validated(_ConfigFile, data, source)
    try:
        return EclConfig(
            id=raw.id,
            scenarios=tuple(
                Scenario(s.name, s.weight, float(s.z), float(s.pd_multiplier))
                for s in raw.scenarios
            ),
            correlation=float(raw.correlation),
            stress_months=raw.stress_months,
            discount=raw.discount,
            rounding=raw.rounding,
            lgd_default=float(raw.lgd.default),
            lgd_by_product=tuple((k, float(v)) for k, v in sorted(raw.lgd.products.items())),
            staging=parse_staging(raw.staging, source),
            pd_default=float(raw.pd.default),
            pd_by_product=tuple((k, float(v)) for k, v in sorted(raw.pd.products.items())),
            pd_bucket_floor=tuple((k, float(v)) for k, v in sorted(raw.pd.buckets.items())),
        )
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}", field=exc.field) from exc


def load_config(path: Path) -> EclConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFound(f"cannot read ECL config {path}: {exc}", field="config") from exc
    return parse_config(load_toml(text, str(path)), str(path))


@functools.cache
def default_config() -> EclConfig:
    """The shipped `ecl_config/default.toml` (read once)."""
    item = resources.files("lendstack.risk") / "ecl_config" / "default.toml"
    return parse_config(load_toml(item.read_text("utf-8"), "default.toml"), "default.toml")


def lgd_for_products(products: NDArray[np.str_], config: EclConfig) -> F64:
    """Per-loan LGD from the config's product table; unknown products take `lgd.default`."""
    table = dict(config.lgd_by_product)
    names, inverse = np.unique(np.asarray(products), return_inverse=True)
    values = np.array([table.get(str(p), config.lgd_default) for p in names], dtype=np.float64)
    return values[inverse.reshape(-1)]


def pd_for_products(products: NDArray[np.str_], config: EclConfig) -> F64:
    """Per-loan 12-month PD at origination from the config's product table, for loans that
    no scored decision covers; unknown products take `pd.default`."""
    table = dict(config.pd_by_product)
    names, inverse = np.unique(np.asarray(products), return_inverse=True)
    values = np.array([table.get(str(p), config.pd_default) for p in names], dtype=np.float64)
    return values[inverse.reshape(-1)]


def bucket_adjusted_pd(pd_12m: F64, buckets: NDArray[np.str_], config: EclConfig) -> F64:
    """The current 12-month PD: the model PD, raised to the floor of the loan's delinquency
    bucket (`pd.buckets`); buckets without a floor (M0) keep the model PD."""
    table = dict(config.pd_bucket_floor)
    names, inverse = np.unique(np.asarray(buckets), return_inverse=True)
    floors = np.array([table.get(str(b), 0.0) for b in names], dtype=np.float64)
    return np.maximum(np.asarray(pd_12m, dtype=np.float64), floors[inverse.reshape(-1)])


def lgd_from_recoveries(recovered_fen: I64, exposure_fen: I64) -> float:
    """Pooled workout LGD: 1 - discounted recoveries / exposure at default, over a cohort."""
    exposure = int(np.sum(exposure_fen, dtype=np.int64))
    if exposure <= 0:
        raise ValidationError("needs a positive total exposure", field="exposure_fen")
    return min(1.0, max(0.0, 1.0 - int(np.sum(recovered_fen, dtype=np.int64)) / exposure))


def lgd_from_sale_price(price_ratio: float, cost_ratio: float = 0.0) -> float:
    """LGD implied by an NPL sale at `price_ratio` of principal + interest, net of costs."""
    if not (0 <= price_ratio <= 1 and 0 <= cost_ratio <= 1):
        raise ValidationError("ratios must be in [0, 1]", field="price_ratio")
    return 1.0 - price_ratio * (1.0 - cost_ratio)

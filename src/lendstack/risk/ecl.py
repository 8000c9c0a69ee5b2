"""IFRS 9 / CAS 22 expected credit loss, loan by loan, vectorised over numpy arrays.

ECL of a loan under scenario s is  LGD x sum_t PD_s(t) x EAD(t) x DF(t)  over the first 12
months (stage 1) or the remaining life (stages 2 and 3), where PD_s(t) is the unconditional
probability of defaulting in month t+1 and EAD(t) is column t of the schedule's exposure path.
Stage 3 loans have defaulted: PD = 1 and ECL = LGD x EAD now (column 0), undiscounted, since
the LGD already states the loss on a defaulted exposure. Scenarios are probability-weighted.

PD term structures come from a monthly transition matrix (matrix powers from each loan's
current state) or from a model 12-month PD read as a constant monthly hazard. A scenario moves
the 12-month PD by a Vasicek shift p' = Phi(Phi^-1(p) - sqrt(rho / (1 - rho)) z) and an optional
multiplier, and scales the monthly default hazards of its first `stress_months` months by the
factor that reaches p'; docs/ecl.md gives the reasoning.

Money: the estimate is a float64 model figure in fen (floats are fine for model outputs, not
balances). Each loan's figure is rounded to integer fen with the configured mode, and every
total is an exact integer sum of those, so loan level sums to the portfolio by construction.
The month loop uses only + and x on per-loan vectors (powers and the normal CDF are taken
once over the whole book), so a loan's figure does not depend on the chunk size.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from datetime import date
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
from lendstack.core.errors import InvariantViolation, NotFound, ValidationError
from lendstack.core.money import Rounding, from_fen
from lendstack.risk.rollforward import RollForward, stage_sums
from lendstack.risk.staging import (
    CAUSES,
    Stage,
    StagingConfig,
    assign_stages,
    check_probabilities,
    parse_staging,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
TWELVE_MONTHS = 12
DEFAULT_CHUNK = 16_384


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


# --- PD term structures ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransitionMatrix:
    """A monthly, row-stochastic transition matrix over loan states (M0, ..., M6+, default,
    and any others such as paid off). `default_state` must be absorbing."""

    states: tuple[str, ...]
    matrix: F64
    default_state: str

    def __post_init__(self) -> None:
        states = tuple(self.states)
        m = np.array(self.matrix, dtype=np.float64)
        k = len(states)
        if len(set(states)) != k or m.shape != (k, k):
            raise ValidationError(f"need {k} unique states and a {k}x{k} matrix", field="matrix")
        if not np.all(np.isfinite(m)) or (m < 0).any() or not np.allclose(m.sum(1), 1, atol=1e-9):
            raise ValidationError("rows must be probabilities summing to 1", field="matrix")
        if self.default_state not in states:
            raise ValidationError(f"{self.default_state!r} not in states", field="default_state")
        d = states.index(self.default_state)
        if m[d, d] != 1.0:
            raise ValidationError("the default state must be absorbing", field="default_state")
        m.setflags(write=False)
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "matrix", m)

    @property
    def default_index(self) -> int:
        return self.states.index(self.default_state)

    def index_of(self, labels: NDArray[np.str_]) -> NDArray[np.int16]:
        """State indices for an array of labels; an unknown label is a ValidationError."""
        names, inverse = np.unique(np.asarray(labels), return_inverse=True)
        lookup = {s: i for i, s in enumerate(self.states)}
        missing = [str(n) for n in names if str(n) not in lookup]
        if missing:
            raise ValidationError(f"unknown state(s) {missing[:5]}", field="state")
        codes = np.array([lookup[str(n)] for n in names], dtype=np.int16)
        return codes[inverse.reshape(-1)]


def parse_matrix(data: Any, source: str) -> TransitionMatrix:
    """A `TransitionMatrix` from parsed JSON: {"states": [...], "matrix": [[...], ...],
    "default_state": "D"} (`default_state` may be omitted when a state is called "D")."""
    if not isinstance(data, dict):
        raise ValidationError(f"{source}: must be a JSON object", field="matrix")
    unknown = sorted(set(data) - {"states", "matrix", "default_state", "description"})
    if unknown:
        raise ValidationError(f"{source}: unknown key {unknown[0]!r}", field=unknown[0])
    states = data.get("states")
    if not isinstance(states, list) or not states or not all(isinstance(s, str) for s in states):
        raise ValidationError(f"{source}: must be a list of state names", field="states")
    rows = data.get("matrix")
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise ValidationError(f"{source}: must be a list of rows", field="matrix")
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(
                    f"{source}: must be a number, got {value!r}", field=f"matrix[{i}][{j}]"
                )
    default_state = data.get("default_state", "D")
    if not isinstance(default_state, str):
        raise ValidationError(f"{source}: must be a state name", field="default_state")
    try:
        matrix = np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise ValidationError(f"{source}: rows of unequal length", field="matrix") from exc
    try:
        return TransitionMatrix(tuple(states), matrix, default_state)
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}", field=exc.field) from exc


def load_matrix(path: Path) -> TransitionMatrix:
    """A transition matrix JSON file; unreadable is `NotFound`, malformed a ValidationError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFound(f"cannot read transition matrix {path}: {exc}", field="matrix") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{path}: not valid JSON: {exc}", field="matrix") from exc
    return parse_matrix(data, str(path))


def matrix_pd_curves(tm: TransitionMatrix, config: EclConfig, horizon: int) -> F64:
    """Marginal PDs (scenarios, horizon, states): [s, t, j] = P(default in month t+1 | j now).

    The base curve comes from matrix powers. A scenario scales every monthly default hazard
    of a starting state, within the stress window, by the one factor that moves its
    12-month PD to the scenario's shifted value: the same rule as the model-PD path, where
    the hazard is constant and the factor has a closed form.
    """
    months = max(horizon, TWELVE_MONTHS)
    base = _matrix_marginals(tm, months)
    hazard = _hazards(base)
    window = np.arange(months) < config.stress_months
    out = np.empty((len(config.scenarios), horizon, len(tm.states)), dtype=np.float64)
    for si, scenario in enumerate(config.scenarios):
        if scenario.z == 0.0 and scenario.pd_multiplier == 1.0:
            out[si] = base[:horizon]
            continue
        target = scenario.shift(base[:TWELVE_MONTHS].sum(axis=0), config.correlation)
        alpha = _hazard_factor(hazard[:TWELVE_MONTHS], target)
        scaled = np.where(window[:, None], np.minimum(1.0, hazard * alpha), hazard)
        out[si] = _marginals_from_hazards(scaled)[:horizon]
    return out


def _matrix_marginals(tm: TransitionMatrix, months: int) -> F64:
    """(months, states): unconditional probability of defaulting in each month."""
    d = tm.default_index
    dist = np.eye(len(tm.states))
    prev = dist[:, d].copy()
    out = np.empty((months, len(tm.states)), dtype=np.float64)
    for t in range(months):
        dist = dist @ tm.matrix
        cum = np.minimum(np.maximum(dist[:, d], prev), 1.0)
        out[t] = cum - prev
        prev = cum
    return out


def _hazards(marginals: F64) -> F64:
    """Monthly hazards: marginal PD over the probability of not having defaulted yet."""
    alive = 1.0 - np.cumsum(marginals, axis=0) + marginals
    hazard = np.divide(marginals, alive, out=np.zeros_like(marginals), where=alive > 1e-15)
    return np.asarray(np.clip(hazard, 0.0, 1.0), dtype=np.float64)


def _marginals_from_hazards(hazard: F64) -> F64:
    survival = np.cumprod(1.0 - hazard, axis=0)
    before = np.vstack([np.ones((1, hazard.shape[1])), survival[:-1]])
    return np.asarray(before * hazard, dtype=np.float64)


def _hazard_factor(hazard: F64, target: F64) -> F64:
    """Per state, the factor a >= 0 with 1 - prod(1 - min(1, a h_t)) = target (bisection).
    A state with no default hazard in the first 12 months keeps a = 1."""

    def pd12(a: F64) -> F64:
        return np.asarray(1.0 - np.prod(1.0 - np.minimum(1.0, hazard * a), axis=0))

    lo, hi = np.zeros_like(target), np.ones_like(target)
    for _ in range(64):
        short = pd12(hi) < target
        if not short.any():
            break
        hi = np.where(short, hi * 2.0, hi)
    for _ in range(80):
        mid = (lo + hi) / 2.0
        low = pd12(mid) < target
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    return np.where(hazard.sum(axis=0) > 0, hi, 1.0)


def monthly_hazard(pd_12m: F64) -> F64:
    """The constant monthly hazard h with 1 - (1 - h)^12 = pd_12m."""
    with np.errstate(divide="ignore"):  # pd_12m = 1 gives log1p(-1) = -inf and h = 1, as meant
        return np.asarray(-np.expm1(np.log1p(-pd_12m) / TWELVE_MONTHS), dtype=np.float64)


# --- the loans ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoanBook:
    """Per-loan inputs, equal-length numpy arrays in one order (see docs/ecl.md, "Inputs").

    `ead_fen[i, t]` is loan i's exposure if it defaults in month t+1 after the reporting date:
    column 0 is the gross carrying amount now (principal, accrued interest and arrears),
    column t the same projected to the t-th month-end on schedule, and 0 once paid off.
    `pd_origination` / `pd_now` are lifetime PDs for the staging ratio test; without
    `pd_now` the run's own probability-weighted lifetime PD over the remaining life is used.
    The PD term structure needs `state` (indices into the matrix's states) for a transition
    matrix, or `pd_12m` (the model's 12-month PD now) without one.
    """

    loan_id: I64
    ead_fen: NDArray[np.integer[Any]]
    eir: F64
    lgd: F64
    dpd: NDArray[np.integer[Any]]
    defaulted: NDArray[np.bool_]
    pd_origination: F64
    pd_now: F64 | None = None
    state: NDArray[np.integer[Any]] | None = None
    pd_12m: F64 | None = None

    def __post_init__(self) -> None:
        n = self.loan_id.shape[0]
        _int_array(self.loan_id, "loan_id", 1)
        if np.unique(self.loan_id).size != n:
            raise ValidationError("loan ids must be unique", field="loan_id")
        _int_array(self.ead_fen, "ead_fen", 2)
        if self.ead_fen.shape[0] != n or self.ead_fen.shape[1] < 1:
            raise ValidationError(
                f"must be (loans, months), got {self.ead_fen.shape}", field="ead_fen"
            )
        if n and int(self.ead_fen.min()) < 0:
            raise ValidationError("exposures must be >= 0", field="ead_fen")
        for name in (
            "eir",
            "lgd",
            "dpd",
            "defaulted",
            "pd_origination",
            "pd_now",
            "state",
            "pd_12m",
        ):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n,):
                raise ValidationError(f"shape {arr.shape}, expected ({n},)", field=name)
        if not (np.all(np.isfinite(self.eir)) and np.all(self.eir >= 0)):
            raise ValidationError("must be finite and >= 0", field="eir")
        for name in ("lgd", "pd_origination", "pd_now", "pd_12m"):
            if getattr(self, name) is not None:
                check_probabilities(getattr(self, name), name)

    @property
    def horizon(self) -> int:
        return int(self.ead_fen.shape[1])


def _int_array(arr: NDArray[Any], name: str, ndim: int) -> None:
    if arr.ndim != ndim or not np.issubdtype(arr.dtype, np.integer):
        raise ValidationError(f"must be a {ndim}-D integer array (fen, ids)", field=name)


# --- the computation ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EclResult:
    """One ECL run: per-loan arrays in input order, integer fen, and exact totals."""

    loan_id: I64
    stage: NDArray[np.uint8]
    causes: NDArray[np.uint8]
    ecl_fen: I64
    """The allowance: 12-month ECL in stage 1, lifetime ECL in stages 2 and 3."""
    ecl_12m_fen: I64
    ecl_lifetime_fen: I64
    scenario_fen: I64
    """(loans, scenarios): the stage-appropriate ECL under each scenario alone."""
    ead_fen: I64
    lifetime_pd: F64
    config: EclConfig
    as_of: date | None = None

    @property
    def total_fen(self) -> int:
        return int(self.ecl_fen.sum(dtype=np.int64))

    @property
    def total(self) -> Decimal:
        return from_fen(self.total_fen)

    def by_stage(self) -> dict[Stage, tuple[int, int]]:
        """Stage -> (allowance fen, loan count)."""
        sums = stage_sums(self.stage, self.ecl_fen)
        return {s: (sums[s - 1], int(np.count_nonzero(self.stage == s))) for s in Stage}

    def as_json(self, roll_forward: RollForward | None = None) -> dict[str, Any]:
        """Totals for `lendstack risk ecl --format json`; money as decimal strings."""
        ead = stage_sums(self.stage, self.ead_fen)
        out: dict[str, Any] = {
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "config": self.config.id,
            "currency": "CNY",
            "rounding": self.config.rounding.value,
            "loans": int(self.loan_id.shape[0]),
            "total": str(self.total),
            "ead": str(from_fen(sum(ead))),
            "by_stage": {
                str(int(s)): {"amount": str(from_fen(fen)), "loans": n, "ead": str(from_fen(e))}
                for (s, (fen, n)), e in zip(self.by_stage().items(), ead, strict=True)
            },
            "causes": {str(c.name): int(np.count_nonzero(self.causes & c.value)) for c in CAUSES},
            "scenarios": [
                {
                    "name": sc.name,
                    "weight": str(sc.weight),
                    "z": sc.z,
                    "pd_multiplier": sc.pd_multiplier,
                    "total": str(from_fen(int(self.scenario_fen[:, i].sum(dtype=np.int64)))),
                }
                for i, sc in enumerate(self.config.scenarios)
            ],
        }
        if roll_forward is not None:
            out["roll_forward"] = roll_forward.as_json()
        return out


def compute_ecl(
    book: LoanBook,
    config: EclConfig | None = None,
    matrix: TransitionMatrix | None = None,
    *,
    as_of: date | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> EclResult:
    """Stage every loan and measure its ECL; see the module docstring for the formula."""
    cfg = config or default_config()
    if chunk < 1:
        raise ValidationError("must be >= 1", field="chunk")
    source = _pd_source(book, cfg, matrix)
    acc12, rest, life_pd = _accumulate(book, cfg, source, chunk)
    w = cfg.weights
    e12, erest, pd_life = _weighted(acc12, w), _weighted(rest, w), _weighted(life_pd, w)
    defaulted = book.defaulted.astype(bool)
    if matrix is not None and book.state is not None:
        defaulted = defaulted | (book.state == matrix.default_index)
    pd_now = book.pd_now if book.pd_now is not None else np.minimum(pd_life, 1.0)
    staging = assign_stages(book.dpd, defaulted, book.pd_origination, pd_now, cfg.staging)
    ead_now = book.ead_fen[:, 0].astype(np.int64)
    impaired = book.lgd * ead_now
    s1, s3 = staging.stage == 1, staging.stage == 3
    r12 = _round(np.where(s3, impaired, book.lgd * e12), cfg.rounding)
    rlife = _round(np.where(s3, impaired, book.lgd * (e12 + erest)), cfg.rounding)
    per_scenario = np.where(s1[:, None], acc12, acc12 + rest) * book.lgd[:, None]
    per_scenario = np.where(s3[:, None], impaired[:, None], per_scenario)
    return EclResult(
        loan_id=book.loan_id.astype(np.int64),
        stage=staging.stage,
        causes=staging.causes,
        ecl_fen=np.where(s1, r12, rlife),
        ecl_12m_fen=r12,
        ecl_lifetime_fen=rlife,
        scenario_fen=_round(per_scenario, cfg.rounding),
        ead_fen=ead_now,
        lifetime_pd=pd_life,
        config=cfg,
        as_of=as_of,
    )


def _weighted(per_scenario: F64, weights: F64) -> F64:
    """Sum over scenarios in a fixed order (columns of `per_scenario`)."""
    out = per_scenario[:, 0] * weights[0]
    for s in range(1, weights.shape[0]):
        out = out + per_scenario[:, s] * weights[s]
    return np.asarray(out, dtype=np.float64)


def _round(values: F64, rounding: Rounding) -> I64:
    """Non-negative fen estimates to integer fen; half-up is floor plus (fraction >= 0.5),
    which avoids the floor(x + 0.5) error just below one half."""
    if values.size and not (np.all(np.isfinite(values)) and values.min() >= 0):
        raise InvariantViolation("ECL estimates must be finite and >= 0")
    low = np.floor(values)
    if rounding is Rounding.HALF_UP:
        out = low + (values - low >= 0.5)
    elif rounding is Rounding.HALF_EVEN:
        out = np.rint(values)
    elif rounding is Rounding.DOWN:
        out = low
    else:
        out = np.ceil(values)
    return out.astype(np.int64)


class _MatrixMarginals:
    """Month t's marginal PD of each loan in a chunk: a gather from the state curves."""

    def __init__(self, curves: F64, state: NDArray[np.intp]) -> None:
        self.curves, self.state = curves, state
        self.buf = np.empty(state.shape[0], dtype=np.float64)

    def __call__(self, s: int, t: int) -> F64:
        return np.take(self.curves[s, t], self.state, out=self.buf)


class _HazardMarginals:
    """Month t's marginal PD from monthly hazards: survival to t times the hazard in t.
    Must be called once per (s, t) in increasing t; it carries the survival forward."""

    def __init__(self, hazard: F64, base: F64, stress_months: int) -> None:
        self.hazard, self.keep = hazard, 1.0 - hazard
        self.base, self.base_keep = base, 1.0 - base
        self.months = stress_months
        self.survival = np.ones_like(hazard)
        self.buf = np.empty(base.shape[0], dtype=np.float64)

    def __call__(self, s: int, t: int) -> F64:
        stressed = t < self.months
        h = self.hazard[s] if stressed else self.base
        keep = self.keep[s] if stressed else self.base_keep
        np.multiply(self.survival[s], h, out=self.buf)
        np.multiply(self.survival[s], keep, out=self.survival[s])
        return self.buf


@dataclass(frozen=True, slots=True)
class _PdSource:
    """The run's PD term structure: state curves (matrix) or per-loan hazards (model)."""

    curves: F64 | None = None
    state: NDArray[np.intp] | None = None
    hazard: F64 | None = None
    base_hazard: F64 | None = None
    stress_months: int = 0

    def for_chunk(self, lo: int, hi: int) -> _MatrixMarginals | _HazardMarginals:
        if self.curves is not None and self.state is not None:
            return _MatrixMarginals(self.curves, self.state[lo:hi])
        assert self.hazard is not None
        assert self.base_hazard is not None
        return _HazardMarginals(self.hazard[:, lo:hi], self.base_hazard[lo:hi], self.stress_months)


def _pd_source(book: LoanBook, cfg: EclConfig, matrix: TransitionMatrix | None) -> _PdSource:
    if matrix is not None:
        if book.state is None:
            raise ValidationError("a transition matrix needs each loan's state", field="state")
        state = book.state.astype(np.intp)
        if state.size and not (state.min() >= 0 and state.max() < len(matrix.states)):
            raise ValidationError("state indices outside the matrix", field="state")
        return _PdSource(curves=matrix_pd_curves(matrix, cfg, book.horizon), state=state)
    if book.pd_12m is None:
        raise ValidationError("needs the model 12-month PD, or a transition matrix", field="pd_12m")
    hazard = np.stack(
        [monthly_hazard(sc.shift(book.pd_12m, cfg.correlation)) for sc in cfg.scenarios]
    )
    return _PdSource(
        hazard=hazard, base_hazard=monthly_hazard(book.pd_12m), stress_months=cfg.stress_months
    )


def _accumulate(
    book: LoanBook, cfg: EclConfig, source: _PdSource, chunk: int
) -> tuple[F64, F64, F64]:
    """Per loan and scenario, as (loans, scenarios): sum over months 1-12 of PD x EAD x DF,
    the same over months 13+, and the lifetime PD over months with exposure."""
    n, scenarios = book.loan_id.shape[0], len(cfg.scenarios)
    acc12, rest, life = (np.zeros((scenarios, n)) for _ in range(3))
    if cfg.discount is DiscountBasis.EIR:
        monthly_df = np.power(1.0 + book.eir, -1.0 / TWELVE_MONTHS)
    else:
        monthly_df = np.ones(n)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        ead_t = np.ascontiguousarray(book.ead_fen[lo:hi].T, dtype=np.float64)
        marginals = source.for_chunk(lo, hi)
        sums = (acc12[:, lo:hi], rest[:, lo:hi], life[:, lo:hi])
        _months(ead_t, monthly_df[lo:hi], marginals, sums)
    return acc12.T, rest.T, life.T


def _months(
    ead_t: F64,
    monthly_df: F64,
    marginals: _MatrixMarginals | _HazardMarginals,
    sums: tuple[F64, F64, F64],
) -> None:
    """The inner loop over months for one chunk: only + and x, in a fixed order."""
    acc12, rest, life = sums
    df = np.ones_like(monthly_df)
    w, term = np.empty_like(df), np.empty_like(df)
    for t in range(ead_t.shape[0]):
        np.multiply(df, monthly_df, out=df)
        np.multiply(ead_t[t], df, out=w)
        alive = ead_t[t] > 0
        target = acc12 if t < TWELVE_MONTHS else rest
        for s in range(acc12.shape[0]):
            marginal = marginals(s, t)
            np.multiply(marginal, w, out=term)
            np.add(target[s], term, out=target[s])
            np.add(life[s], marginal, out=life[s], where=alive)

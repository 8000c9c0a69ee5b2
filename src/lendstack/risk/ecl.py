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

The configuration (`EclConfig`, scenarios, LGD tables) is in `risk/ecl_settings.py`, the PD
term structures (`TransitionMatrix`, `matrix_pd_curves`, `monthly_hazard`) in
`risk/pd_curves.py`; this module holds the loans, the computation and its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lendstack.core.errors import InvariantViolation, ValidationError
from lendstack.core.money import Rounding, from_fen
from lendstack.risk.ecl_settings import (
    F64,
    I64,
    TWELVE_MONTHS,
    DiscountBasis,
    EclConfig,
    default_config,
)
from lendstack.risk.pd_curves import TransitionMatrix, matrix_pd_curves, monthly_hazard
from lendstack.risk.rollforward import RollForward, stage_sums
from lendstack.risk.staging import CAUSES, Stage, assign_stages, check_probabilities

DEFAULT_CHUNK = 16_384


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
    forborne: NDArray[np.bool_] | None = None
    """Restructured loans still under observation: at least stage 2."""

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
            "forborne",
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
    staging = assign_stages(
        book.dpd, defaulted, book.pd_origination, pd_now, cfg.staging, book.forborne
    )
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

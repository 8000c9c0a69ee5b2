"""Synthetic loan-month panels from a seed: test input for the analytics and benchmark load.

Each loan's month-end state follows one Markov chain over M0 … M6+, CO and PO (a monthly
matrix of plausible internet-lending roll rates, `BASE_TRANSITIONS`). Because the law is
known, tests can check the estimators against it: the observed h-month transitions must match
the h-th power of the one-month matrix within sampling error. A `Spike` multiplies the
roll-forward probabilities of chosen origination cohorts, so an early-warning or vintage test
can look for a planted default wave.

Everything else is derived so that the panel passes `validate_panel(check_values=True)`:
DPD sits inside the state's bucket (each loan has a fixed day of the month its installments
fall due), principal amortises as an equal-installment loan on the installments paid, the
risk class follows the cn-2023 DPD floors, and the first-payment-default flag follows the
loan's first delinquency episode. With a term, a loan that is current at or after its last
installment pays off (PO); `term_months=None` keeps the chain time-homogeneous.

The simulation is vectorised over loans (one numpy step per month on book), so 10M
loan-months take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import polars as pl

from lendstack.core.errors import ValidationError
from lendstack.core.regions import PROVINCES
from lendstack.risk.panel import CLASS_FLOORS, RISK_CLASS_DTYPE, STATE_DTYPE, STATES

# Monthly transition probabilities; rows and columns in STATES order (M0 … M6+, CO, PO).
# Roll-forward rates rise with the bucket, as collections data show; M6+ charges off (180 DPD).
BASE_TRANSITIONS: tuple[tuple[float, ...], ...] = (
    (0.955, 0.025, 0.000, 0.000, 0.000, 0.000, 0.000, 0.000, 0.020),  # M0
    (0.550, 0.100, 0.350, 0.000, 0.000, 0.000, 0.000, 0.000, 0.000),  # M1
    (0.150, 0.100, 0.050, 0.700, 0.000, 0.000, 0.000, 0.000, 0.000),  # M2
    (0.050, 0.030, 0.020, 0.050, 0.850, 0.000, 0.000, 0.000, 0.000),  # M3
    (0.030, 0.000, 0.000, 0.020, 0.050, 0.900, 0.000, 0.000, 0.000),  # M4
    (0.020, 0.000, 0.000, 0.000, 0.000, 0.050, 0.930, 0.000, 0.000),  # M5
    (0.010, 0.000, 0.000, 0.000, 0.000, 0.000, 0.090, 0.900, 0.000),  # M6+
    (0.000, 0.000, 0.000, 0.000, 0.000, 0.000, 0.000, 1.000, 0.000),  # CO
    (0.000, 0.000, 0.000, 0.000, 0.000, 0.000, 0.000, 0.000, 1.000),  # PO
)  # fmt: skip

PRODUCTS = ("cash-loan-installment", "huabei-installment", "guaranteed-installment",
            "consumer-loan-equal-principal")  # fmt: skip
FUNDERS = ("platform", "big-state-bank", "harbour-joint-stock", "westlake-city-bank")
CHANNELS = ("mall-app", "payment-app", "super-app", "food-delivery-app", "ride-hailing-app",
            "short-video-app", "search-app")  # fmt: skip
_WEIGHTS = {"product_id": (0.5, 0.3, 0.1, 0.1), "funder": (0.3, 0.35, 0.25, 0.1),
            "channel": (0.25, 0.25, 0.15, 0.12, 0.08, 0.1, 0.05)}  # fmt: skip
_LEVELS = {"product_id": PRODUCTS, "funder": FUNDERS, "province": tuple(sorted(PROVINCES)),
           "channel": CHANNELS}  # fmt: skip
MONTHLY_RATE = 0.015
OPEN_ENDED_AMORTISATION = 36
"""Months over which a loan without a term (term_months=None) amortises its principal."""

_M0, _M6, _CO, _PO = (STATES.index(s) for s in ("M0", "M6+", "CO", "PO"))


@dataclass(frozen=True, slots=True)
class Spike:
    """Multiply the roll-forward probabilities Mk → Mk+1 (k = 0..5) of one cohort by `factor`.

    The rest of each row shrinks in proportion, so rows still sum to 1.
    """

    cohort: date
    factor: float


@dataclass(frozen=True, slots=True)
class PanelSpec:
    """`cohorts` monthly cohorts from `first_cohort`, observed for `months` month-ends.

    The default originates in every observed month, like a live lender's book.
    """

    first_cohort: date = date(2024, 1, 1)
    cohorts: int = 36
    loans_per_cohort: int = 1_000
    months: int = 36
    term_months: int | None = 12
    transitions: tuple[tuple[float, ...], ...] = BASE_TRANSITIONS
    spikes: tuple[Spike, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.first_cohort.day != 1:
            raise ValidationError("must be the first of a month", field="first_cohort")
        if min(self.cohorts, self.loans_per_cohort) < 1 or self.months < self.cohorts:
            raise ValidationError("need cohorts, loans >= 1 and months >= cohorts", field="months")
        matrix = np.asarray(self.transitions, dtype=np.float64)
        if matrix.shape != (len(STATES), len(STATES)) or (matrix < 0).any():
            raise ValidationError("must be a non-negative 9x9 matrix", field="transitions")
        if not np.allclose(matrix.sum(axis=1), 1.0, atol=1e-9):
            raise ValidationError("rows must sum to 1", field="transitions")

    def spiked(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """The matrices (base first, one per spike) and each cohort's index into them."""
        base = np.asarray(self.transitions, dtype=np.float64)
        matrices = [base, *(_spike(base, s.factor) for s in self.spikes)]
        group = np.zeros(self.cohorts, dtype=np.int64)
        for number, spike in enumerate(self.spikes, start=1):
            offset = _months_between(self.first_cohort, spike.cohort)
            if not 0 <= offset < self.cohorts or spike.cohort.day != 1:
                raise ValidationError(f"{spike.cohort} is not a cohort", field="spikes")
            group[offset] = number
        return np.stack(matrices), group


def _spike(base: npt.NDArray[np.float64], factor: float) -> npt.NDArray[np.float64]:
    out = base.copy()
    for k in range(_M6):
        old = out[k, k + 1]
        new = min(old * factor, 0.99)
        rest = 1.0 - old
        out[k] *= (1.0 - new) / rest if rest > 0 else 0.0
        out[k, k + 1] = new
    return out


def _months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


_Rows: TypeAlias = tuple[npt.NDArray[Any], ...]
"""loan index, months on book, state code, DPD, principal (fen), FPD flag."""


@dataclass(slots=True)
class _Book:
    """Per-loan simulation state (mutable numpy arrays, private to one generate call)."""

    cohort: npt.NDArray[np.int64]
    group: npt.NDArray[np.int64]
    amount: npt.NDArray[np.int64]
    due_day: npt.NDArray[np.int64]
    state: npt.NDArray[np.int64]
    dpd: npt.NDArray[np.int64]
    paid: npt.NDArray[np.int64]
    balance: npt.NDArray[np.int64]
    in_first_episode: npt.NDArray[np.bool_]
    fpd: npt.NDArray[np.bool_]
    rows: list[_Rows] = field(default_factory=list)


def generate_panel(spec: PanelSpec) -> pl.DataFrame:
    """A panel in PANEL_SCHEMA (dimension columns as `pl.Enum`), rows grouped by month on book.

    The same spec and seed give the same panel.
    """
    rng = np.random.default_rng(spec.seed)
    matrices, cohort_group = spec.spiked()
    cumulative = np.cumsum(matrices, axis=2)
    cumulative[:, :, -1] = 1.0 + 1e-12  # a draw u < 1 always lands somewhere
    book = _open_book(spec, cohort_group, rng)
    remaining = _remaining_share(spec.term_months or OPEN_ENDED_AMORTISATION)
    horizon = spec.months - 1 - book.cohort
    book.rows.append(_emit(book, np.arange(book.cohort.size), 0))
    for mob in range(1, int(horizon.max()) + 1):
        active = np.flatnonzero((book.state < _CO) & (horizon >= mob))
        if active.size:
            _step(book, active, mob, cumulative, rng, spec.term_months, remaining)
    return _frame(spec, book, rng)


def _open_book(
    spec: PanelSpec, cohort_group: npt.NDArray[np.int64], rng: np.random.Generator
) -> _Book:
    n = spec.cohorts * spec.loans_per_cohort
    cohort = np.repeat(np.arange(spec.cohorts, dtype=np.int64), spec.loans_per_cohort)
    amount = (np.clip(rng.lognormal(np.log(8_000), 0.6, n), 1_000, 50_000) * 100).astype(np.int64)
    zeros = np.zeros(n, dtype=np.int64)
    return _Book(
        cohort=cohort, group=cohort_group[cohort], amount=amount,
        due_day=rng.integers(1, 31, n), state=zeros.copy(), dpd=zeros.copy(), paid=zeros.copy(),
        balance=amount.copy(), in_first_episode=np.zeros(n, dtype=np.bool_), fpd=np.zeros(n, dtype=np.bool_),
    )  # fmt: skip


def _remaining_share(term: int) -> npt.NDArray[np.float64]:
    """Share of principal outstanding after p equal installments, p = 0..term."""
    growth = (1.0 + MONTHLY_RATE) ** np.arange(term + 1)
    return np.asarray((growth[-1] - growth) / (growth[-1] - 1.0), dtype=np.float64)


def _step(
    book: _Book,
    active: npt.NDArray[np.int64],
    mob: int,
    cumulative: npt.NDArray[np.float64],
    rng: np.random.Generator,
    term: int | None,
    remaining: npt.NDArray[np.float64],
) -> None:
    """Move the active loans one month along the chain and record their rows."""
    previous = book.state[active]
    rows = cumulative[book.group[active], previous]
    new = (rng.random(active.size)[:, None] > rows).sum(axis=1)
    if term is not None:
        new[(new == _M0) & (mob >= term)] = _PO  # current at maturity: paid off
    _update_dpd(book, active, previous, new)
    missed = np.where(new <= _M6, (book.dpd[active] + 29) // 30, 0)
    paid = np.clip(mob - missed, book.paid[active], remaining.size - 1)
    book.paid[active] = paid
    on_books = new <= _M6
    book.balance[active] = np.where(
        on_books,
        np.rint(book.amount[active] * remaining[paid]).astype(np.int64),
        book.balance[active],
    )
    book.balance[active[new == _PO]] = 0
    episode = (new != _M0) & (new != _PO)
    book.in_first_episode[active] = episode & (book.in_first_episode[active] | (mob == 1))
    book.fpd[active] |= book.in_first_episode[active] & (book.dpd[active] >= 30)
    book.state[active] = new
    book.rows.append(_emit(book, active, mob))


def _update_dpd(
    book: _Book,
    active: npt.NDArray[np.int64],
    previous: npt.NDArray[np.int64],
    new: npt.NDArray[np.int64],
) -> None:
    """DPD inside the new bucket: the loan's due day past the bucket floor; M6+ and CO age on."""
    due = book.due_day[active]
    prior = book.dpd[active]
    in_bucket = np.where(new >= 1, 30 * (new - 1) + due, 0)
    ageing = np.maximum(prior + 30, 30 * (_M6 - 1) + due)
    dpd = np.where((new == _M6) & (previous == _M6), ageing, in_bucket)
    dpd = np.where(new == _CO, np.maximum(prior + 30, 181), dpd)
    book.dpd[active] = np.where(new == _PO, 0, dpd)


def _emit(book: _Book, active: npt.NDArray[np.int64], mob: int) -> _Rows:
    """This month's rows for `active`, in the narrowest dtypes (10M rows stay ~200 MB)."""
    return (
        active.astype(np.int32),
        np.full(active.size, mob, dtype=np.int16),
        book.state[active].astype(np.uint8),
        book.dpd[active].astype(np.int32),
        book.balance[active],
        book.fpd[active],
    )


def _frame(spec: PanelSpec, book: _Book, rng: np.random.Generator) -> pl.DataFrame:
    loan, mob, state, dpd, balance, fpd = (
        np.concatenate(parts) for parts in zip(*book.rows, strict=True)
    )
    loan = loan.astype(np.int64)
    cohort = book.cohort[loan]
    months = _month_starts(spec.first_cohort, spec.months + 1)
    month_end = months[cohort + mob + 1] - np.timedelta64(1, "D")
    severity = np.zeros(dpd.size, dtype=np.uint8)
    for floor in CLASS_FLOORS:
        severity += dpd > floor
    columns = {
        "loan_id": pl.Series(loan + 1, dtype=pl.Int64),
        "month_end": pl.Series(month_end),
        "origination_month": pl.Series(months[cohort]),
        "months_on_book": pl.Series(mob, dtype=pl.Int32),
        "state": pl.Series(state).cat.to(STATE_DTYPE),
        "dpd": pl.Series(dpd, dtype=pl.Int32),
        "principal_fen": pl.Series(balance, dtype=pl.Int64),
        "risk_class": pl.Series(severity).cat.to(RISK_CLASS_DTYPE),
        **_dimensions(book.cohort.size, loan, rng),
        "first_payment_default": pl.Series(fpd),
    }
    return pl.DataFrame(columns)


def _month_starts(first: date, count: int) -> npt.NDArray[np.datetime64]:
    start = np.datetime64(first, "M")
    return (start + np.arange(count)).astype("datetime64[D]")


def _dimensions(
    loans: int, loan: npt.NDArray[np.int64], rng: np.random.Generator
) -> dict[str, pl.Series]:
    """Product, funder, province and channel per loan, broadcast to its rows as enums."""
    out = {}
    for name, levels in _LEVELS.items():
        weights = _WEIGHTS.get(name)
        codes = rng.choice(len(levels), loans, p=weights).astype(np.uint8)
        out[name] = pl.Series(codes[loan]).cat.to(pl.Enum(levels))
    return out


def spec_for_loan_months(target: int, base: PanelSpec | None = None) -> PanelSpec:
    """`base` (default `PanelSpec()`) resized to about `target` rows, from a small pilot run."""
    pilot = replace(base or PanelSpec(), loans_per_cohort=500)
    rows_per_loan = generate_panel(pilot).height / (pilot.cohorts * pilot.loans_per_cohort)
    return replace(pilot, loans_per_cohort=max(1, round(target / rows_per_loan / pilot.cohorts)))

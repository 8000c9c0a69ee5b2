"""Roll rates and cohort-method transition matrices, with powers checked against observation.

Roll rates are what collections reads: of the loans (or the principal) in bucket i at one
month-end, the share in each state at the next. States are the panel's M0 … M6+, CO and PO;
a balance-weighted rate weights each loan by its principal at the *start* month, so each row
still sums to 1.

The transition matrix answers a credit-risk question instead: how likely is a loan in a
performing bucket to default within h months. It uses the cohort method (Jafry & Schuermann
2004): take every loan in state i at some month-end t, look at its state at t + h, and pool
the counts over all t with t + h inside the panel. Its states are M0 … M3, D, CO and PO:
D (default) is first reaching M4+ (more than 90 DPD, the Basel default and the cn-2023 次级
floor); D, CO and PO are absorbing, so a loan that defaulted and later cured or paid off
still counts as D. Multi-period matrices come both from powers of the one-month matrix
(which assume a time-homogeneous Markov chain) and from observed h-month transitions;
`compare_powers` sets the two side by side with binomial standard errors, so a reader can
tell sampling noise from a broken Markov assumption.

Every matrix row sums to 1 (to float rounding, far inside 1e-12): absorbing states and states
with no observations get an identity row, and `observed_rows` says which rows are data.

Pairs of month-ends come from one sort on the packed `panel_key` (loan_id · 2^16 + month
index) and a shift, the fastest of the variants measured in docs/risk-analytics.md. A loan that leaves
the books has no row after its CO/PO row, so absorbed loans are carried forward from their
last row. A window that spans a gap in a loan's rows (a broken panel; `validate_panel`
with `check_values` finds it) is dropped rather than guessed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from lendstack.core.errors import ValidationError
from lendstack.core.money import from_fen
from lendstack.risk.panel import (
    BUCKETS,
    EXITS,
    STATE_DTYPE,
    STATES,
    PanelLike,
    month_index,
    panel_key,
    validate_panel,
)

DEFAULT = "D"
DEFAULT_BUCKET = 4
"""Index of the first defaulted bucket: M4 = 91+ DPD."""


class Weight(StrEnum):
    """What a transition counts: loans, or their principal (fen) at the start month."""

    LOANS = "loans"
    BALANCE = "balance"


@dataclass(frozen=True, slots=True)
class TransitionMatrix:
    """Row-stochastic probabilities between `states` over `horizon` months, with the data.

    `observations[i, j]` is the loans (or fen) seen moving from state i to j; rows of
    absorbing or unobserved states are identity rows in `probabilities`.
    """

    states: tuple[str, ...]
    horizon: int
    weight: Weight
    absorbing: tuple[str, ...]
    observations: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.float64]

    @property
    def observed_rows(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.observations.sum(axis=1) > 0) & ~self._absorbing_mask()

    def _absorbing_mask(self) -> npt.NDArray[np.bool_]:
        return np.array([s in self.absorbing for s in self.states], dtype=np.bool_)

    def power(self, months: int) -> npt.NDArray[np.float64]:
        """The matrix over `months` × horizon months, under the Markov assumption."""
        return np.linalg.matrix_power(self.probabilities, months)

    def rate(self, source: str, target: str) -> float:
        return float(self.probabilities[self.states.index(source), self.states.index(target)])

    def as_json(self) -> dict[str, Any]:
        money = self.weight is Weight.BALANCE
        return {
            "states": list(self.states),
            "horizon_months": self.horizon,
            "weight": self.weight.value,
            "absorbing": list(self.absorbing),
            "observed_rows": self.observed_rows.tolist(),
            "probabilities": self.probabilities.tolist(),
            "observations": [[_amount(v, money) for v in row] for row in self.observations],
        }


def _amount(value: Any, money: bool) -> str | int:
    return str(from_fen(int(value))) if money else int(value)


def matrix_from_counts(
    states: Sequence[str],
    observations: npt.NDArray[np.int64],
    *,
    absorbing: Sequence[str],
    horizon: int,
    weight: Weight,
) -> TransitionMatrix:
    """Row-normalise `observations`; absorbing and empty rows become identity rows."""
    counts = np.asarray(observations, dtype=np.int64)
    totals = counts.sum(axis=1)
    identity = np.array([s in absorbing for s in states]) | (totals == 0)
    safe = np.where(identity, 1, totals).astype(np.float64)
    probabilities = np.where(identity[:, None], np.eye(len(states)), counts / safe[:, None])
    return TransitionMatrix(tuple(states), horizon, weight, tuple(absorbing), counts, probabilities)


def _sorted(panel: PanelLike) -> pl.LazyFrame:
    """The panel sorted by `panel_key` (loan, then month): one int64 sort instead of a hash
    self-join per horizon, ~5x faster on 10M rows (docs/risk-analytics.md)."""
    lazy = validate_panel(panel)
    return lazy.select(
        panel_key().alias("key"),
        "loan_id",
        month_index("month_end").alias("month"),
        "state",
        "principal_fen",
    ).sort("key")


def _ahead(column: str, months: int) -> pl.Expr:
    """`column` on the same loan's row `months` later, null if that row is not there."""
    present = pl.col("key").shift(-months) == pl.col("key") + months
    return pl.when(present).then(pl.col(column).shift(-months))


@dataclass(frozen=True, slots=True)
class RollRates:
    """Month-on-month flows between the panel's states.

    `flows`: month_end (of the start month), from_state, to_state, loans, principal_fen
    (the start month's principal of those loans).
    """

    flows: pl.DataFrame

    @property
    def months(self) -> tuple[date, ...]:
        return tuple(self.flows["month_end"].unique().sort().to_list())

    def matrix(self, weight: Weight = Weight.LOANS, month: date | None = None) -> TransitionMatrix:
        """The one-month matrix for one start month, or pooled over all months."""
        flows = self.flows if month is None else self.flows.filter(pl.col("month_end") == month)
        if month is not None and flows.is_empty():
            raise ValidationError(f"no flows start at {month}", field="month")
        counts = _count_matrix(flows, _weight_column(weight), len(STATES))
        return matrix_from_counts(STATES, counts, absorbing=EXITS, horizon=1, weight=weight)

    def roll_forward(self) -> pl.DataFrame:
        """Per start month and bucket, the share rolling one state on (M0→M1 … M5→M6+,
        M6+→CO), by loans and by balance; 0 when none rolled."""
        ahead = dict(itertools.pairwise(STATES[:8]))
        keys = ["month_end", "from_state", "to_state"]
        totals = self.flows.group_by("month_end", "from_state").agg(
            pl.col("loans").sum().alias("from_loans"),
            pl.col("principal_fen").sum().alias("from_fen"),
        )
        target = pl.col("from_state").cast(pl.String).replace_strict(ahead).cast(STATE_DTYPE)
        rolled = pl.col("loans", "principal_fen").fill_null(0)
        return (
            totals.with_columns(target.alias("to_state"))
            .join(self.flows, on=keys, how="left")
            .with_columns(rolled)
            .select(
                *keys,
                (pl.col("loans") / pl.col("from_loans")).alias("loans_rate"),
                (pl.col("principal_fen") / pl.col("from_fen")).alias("balance_rate"),
            )
            .sort("month_end", "from_state")
        )

    def as_json(self) -> dict[str, Any]:
        flows = [
            {"month_end": row["month_end"].isoformat(), "from_state": row["from_state"],
             "to_state": row["to_state"], "loans": row["loans"],
             "principal": str(from_fen(row["principal_fen"]))}
            for row in self.flows.with_columns(pl.col(pl.Enum).cast(pl.String)).iter_rows(named=True)
        ]  # fmt: skip
        forward = self.roll_forward().with_columns(
            pl.col("month_end").cast(pl.String), pl.col(pl.Enum).cast(pl.String)
        )
        return {
            "months": [m.isoformat() for m in self.months],
            "pooled": {w.value: self.matrix(w).as_json() for w in Weight},
            "roll_forward": forward.to_dicts(),
            "flows": flows,
        }


def _weight_column(weight: Weight) -> str:
    return "loans" if weight is Weight.LOANS else "principal_fen"


def _count_matrix(flows: pl.DataFrame, column: str, size: int) -> npt.NDArray[np.int64]:
    """Sum `column` into a size × size matrix indexed by the from/to state codes."""
    codes = flows.select(
        pl.col("from_state").to_physical().cast(pl.Int64).alias("i"),
        pl.col("to_state").to_physical().cast(pl.Int64).alias("j"),
        pl.col(column).cast(pl.Int64).alias("v"),
    )
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (codes["i"].to_numpy(), codes["j"].to_numpy()), codes["v"].to_numpy())
    return counts


def roll_rates(panel: PanelLike) -> RollRates:
    """Flows between consecutive month-ends for every loan on the books at the first."""
    flows = (
        _sorted(panel)
        .with_columns(_ahead("state", 1).alias("to_state"))
        .filter(pl.col("state").is_in(BUCKETS) & pl.col("to_state").is_not_null())
        .group_by("month", "state", "to_state")
        .agg(pl.len().cast(pl.Int64).alias("loans"), pl.col("principal_fen").sum())
        .collect()
    )
    return RollRates(_label_months(flows).sort("month_end", "from_state", "to_state"))


def _label_months(flows: pl.DataFrame) -> pl.DataFrame:
    """Month index → that month's last day; `state` → from_state."""
    year, month = pl.col("month") // 12, pl.col("month") % 12 + 1
    month_end = pl.date(year, month, 1).dt.month_end().alias("month_end")
    return flows.select(
        month_end, pl.col("state").alias("from_state"), "to_state", "loans", "principal_fen"
    )


def transition_states(default_bucket: int = DEFAULT_BUCKET) -> tuple[str, ...]:
    """M0 … M{b−1}, D, CO, PO for default at bucket b (default 4: more than 90 DPD)."""
    if not 1 <= default_bucket < len(BUCKETS):
        raise ValidationError(f"must be 1..{len(BUCKETS) - 1}", field="default_bucket")
    return (*BUCKETS[:default_bucket], DEFAULT, *EXITS)


def transition_matrix(
    panel: PanelLike,
    horizon: int = 1,
    *,
    weight: Weight = Weight.LOANS,
    default_bucket: int = DEFAULT_BUCKET,
) -> TransitionMatrix:
    """The observed `horizon`-month matrix by the cohort method (D, CO, PO absorbing)."""
    return _Cohorts.of(panel, default_bucket).observed(horizon, weight)


@dataclass(frozen=True, slots=True)
class _Cohorts:
    """The panel sorted once for the cohort method, with each row's effective state.

    `rows`: key, month, code (effective state's index in `transition_states`), principal_fen,
    and the loan's last row's month and code (how its history ends).
    """

    rows: pl.DataFrame
    last_month: int
    default_bucket: int

    @classmethod
    def of(cls, panel: PanelLike, default_bucket: int) -> _Cohorts:
        states = transition_states(default_bucket)
        bucket = pl.col("state").to_physical().cast(pl.Int32)
        new_loan = (pl.col("loan_id") != pl.col("loan_id").shift(1)).fill_null(True)
        run = new_loan.cum_sum()
        # Segmented "ever defaulted": the last loan run that had a default so far is this one.
        hit = pl.when(bucket.is_between(default_bucket, len(BUCKETS) - 1)).then(run)
        defaulted = hit.otherwise(-1).cum_max() == run
        code = (
            pl.when(defaulted).then(states.index(DEFAULT))
            .when(pl.col("state") == EXITS[0]).then(states.index(EXITS[0]))
            .when(pl.col("state") == EXITS[1]).then(states.index(EXITS[1]))
            .otherwise(bucket)
        )  # fmt: skip
        is_last = (pl.col("loan_id") != pl.col("loan_id").shift(-1)).fill_null(True)
        rows = (
            _sorted(panel)
            .with_columns(code.alias("code"))
            .with_columns(
                pl.when(is_last).then(pl.col("month")).backward_fill().alias("end_month"),
                pl.when(is_last).then(pl.col("code")).backward_fill().alias("end_code"),
            )
            .select("key", "month", "code", "principal_fen", "end_month", "end_code")
            .collect()
        )
        last = rows["month"].max()
        if not isinstance(last, int):
            raise ValidationError("the panel has no rows", field="month_end")
        return cls(rows, last, default_bucket)

    def observed(self, horizon: int, weight: Weight) -> TransitionMatrix:
        """Pool (state at t, state at t + horizon) over every t with t + horizon in the panel.

        A loan absorbed before t + horizon (its history ends in D, CO or PO) is carried
        forward in that state; a loan whose rows stop while still performing is dropped.
        """
        if horizon < 1:
            raise ValidationError("must be >= 1", field="horizon")
        b = self.default_bucket
        carried = (pl.col("end_month") <= pl.col("month") + horizon) & (pl.col("end_code") >= b)
        target = pl.coalesce(_ahead("code", horizon), pl.when(carried).then(pl.col("end_code")))
        flows = (
            self.rows.lazy()
            .with_columns(target.alias("to_code"))
            .filter((pl.col("code") < b) & (pl.col("month") <= self.last_month - horizon))
            .drop_nulls("to_code")
            .group_by("code", "to_code")
            .agg(pl.len().cast(pl.Int64).alias("loans"), pl.col("principal_fen").sum())
            .collect()
        )
        states = transition_states(b)
        counts = np.zeros((len(states), len(states)), dtype=np.int64)
        values = flows[_weight_column(weight)].cast(pl.Int64).to_numpy()
        np.add.at(counts, (flows["code"].to_numpy(), flows["to_code"].to_numpy()), values)
        return matrix_from_counts(
            states, counts, absorbing=(DEFAULT, *EXITS), horizon=horizon, weight=weight
        )


@dataclass(frozen=True, slots=True)
class PowerComparison:
    """The observed h-month matrix beside the h-th power of the observed one-month matrix.

    The standard errors treat each observed row as a binomial sample around the powered
    matrix. They are a little optimistic: one loan contributes several overlapping windows,
    and the one-month matrix is itself an estimate. So read |z| up to ~4 as agreement, and
    a wide, systematic gap (say PO or D at every horizon) as a chain that is not
    time-homogeneous: maturities, seasoning or a changing book.
    """

    one_month: TransitionMatrix
    observed: TransitionMatrix

    @property
    def horizon(self) -> int:
        return self.observed.horizon

    @property
    def from_powers(self) -> npt.NDArray[np.float64]:
        return self.one_month.power(self.horizon)

    @property
    def difference(self) -> npt.NDArray[np.float64]:
        """Observed minus powered, on observed rows (0 elsewhere)."""
        rows = self.observed.observed_rows[:, None]
        return np.where(rows, self.observed.probabilities - self.from_powers, 0.0)

    @property
    def standard_errors(self) -> npt.NDArray[np.float64]:
        """Binomial SE of each observed cell if the powered matrix were the truth."""
        p = self.from_powers
        n = self.observed.observations.sum(axis=1).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(p * (1.0 - p) / n[:, None])
        return np.where(self.observed.observed_rows[:, None], se, np.nan)

    @property
    def max_abs_difference(self) -> float:
        return float(np.abs(self.difference).max())

    @property
    def max_z(self) -> float:
        """Largest |difference| / SE; a nonzero difference where SE is 0 counts as infinite."""
        diff, se = np.abs(self.difference), self.standard_errors
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, diff / se, np.where(diff > 0, np.inf, 0.0))
        return float(np.where(np.isnan(z), 0.0, z).max())

    def as_json(self) -> dict[str, Any]:
        return {
            "horizon_months": self.horizon,
            "states": list(self.observed.states),
            "observed": self.observed.probabilities.tolist(),
            "from_powers": self.from_powers.tolist(),
            "observed_rows": self.observed.observed_rows.tolist(),
            "loans_per_row": self.observed.observations.sum(axis=1).tolist(),
            "max_abs_difference": self.max_abs_difference,
            "max_z": self.max_z if math.isfinite(self.max_z) else None,  # JSON has no infinity
        }


def compare_powers(
    panel: PanelLike,
    horizons: Sequence[int] = (3, 6, 12),
    *,
    default_bucket: int = DEFAULT_BUCKET,
) -> tuple[PowerComparison, ...]:
    """For each horizon h: observed h-month transitions vs the one-month matrix to the h.

    Counts are loans (the standard errors are binomial in loans). The panel is read once.
    """
    cohorts = _Cohorts.of(panel, default_bucket)
    one = cohorts.observed(1, Weight.LOANS)
    return tuple(PowerComparison(one, cohorts.observed(h, Weight.LOANS)) for h in horizons)

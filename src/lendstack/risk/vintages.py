"""Vintage curves: for each origination-month cohort, the cumulative share of its loans that
reached 30+ DPD, 90+ DPD and charge-off, by months on book.

"Reached N+ DPD by month m" means the loan had `dpd >= N` on some month-end at months on book
<= m, or was charged off by then: a charge-off counts as every delinquency event, so the
curves nest (charged off <= 90+ <= 30+) and a loan written off early (fraud, death) is not
lost from the delinquency curves. Being "ever" measures, the curves never fall.

A cohort is the loans with a row at months on book 0, i.e. observed from origination. A loan
whose history starts later in the panel (a migrated book) is left out of numerator and
denominator alike: its early delinquency is unknown, and counting it would bias the curve
down. A cohort's curve runs from months on book 0 to the panel's last month-end, so young
cohorts have short curves; loans that left the books early keep counting at their final
status.

Work is one pass that keeps only event rows (a few per cent of the panel) and takes a
per-loan minimum, plus a count of MOB-0 rows; no sort or join of the whole panel. Measured
in docs/risk-analytics.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from lendstack.core.errors import ValidationError
from lendstack.risk.panel import PanelLike, State, month_index, validate_panel

DEFAULT_THRESHOLDS = (30, 90)
CHARGED_OFF = "charged_off"


def measure_name(threshold: int) -> str:
    """The column prefix of the `threshold`+ DPD measure: 30 → "dpd30"."""
    return f"dpd{threshold}"


@dataclass(frozen=True, slots=True)
class VintageCurves:
    """One row per cohort and month on book.

    `table` columns: origination_month, months_on_book, loans, then for each measure
    (dpd30, dpd90, …, charged_off) `<measure>_loans` (cumulative count) and `<measure>_rate`
    (that count / loans).
    """

    as_of: date
    thresholds: tuple[int, ...]
    table: pl.DataFrame

    @property
    def measures(self) -> tuple[str, ...]:
        return (*(measure_name(t) for t in self.thresholds), CHARGED_OFF)

    def curves(self, measure: str) -> pl.DataFrame:
        """Cohorts as rows, months on book as columns: the shape a vintage chart plots."""
        if measure not in self.measures:
            raise ValidationError(f"unknown measure (known: {self.measures})", field="measure")
        return self.table.pivot(
            "months_on_book", index="origination_month", values=f"{measure}_rate"
        ).sort("origination_month")

    def as_json(self) -> dict[str, Any]:
        """Per cohort: its size and one array of rates (floats) per measure, by MOB."""
        cohorts = []
        for (month,), part in self.table.group_by("origination_month", maintain_order=True):
            assert isinstance(month, date)
            row: dict[str, Any] = {
                "origination_month": month.isoformat(),
                "loans": int(part["loans"][0]),
                "months_on_book": part["months_on_book"].to_list(),
            }
            row.update({m: part[f"{m}_rate"].to_list() for m in self.measures})
            cohorts.append(row)
        return {
            "as_of": self.as_of.isoformat(),
            "thresholds_dpd": list(self.thresholds),
            "measures": list(self.measures),
            "cohorts": cohorts,
        }


def vintage_curves(
    panel: PanelLike,
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS,
    *,
    as_of: date | None = None,
) -> VintageCurves:
    """Cumulative 30+/90+ DPD and charge-off shares per cohort; `as_of` defaults to the
    panel's last month-end (rows after it are ignored)."""
    if not thresholds or any(t < 1 for t in thresholds):
        raise ValidationError("need one or more thresholds >= 1", field="thresholds")
    lazy = validate_panel(panel)
    if as_of is not None:
        lazy = lazy.filter(pl.col("month_end") <= as_of)
    firsts, sizes = _firsts_and_sizes(lazy, thresholds)
    last = lazy.select(pl.col("month_end").max())
    first_rows, size_rows, last_row = pl.collect_all([firsts, sizes, last])
    end = as_of or _last_month_end(last_row)
    table = _table(first_rows.lazy(), size_rows.lazy(), end, thresholds)
    return VintageCurves(end, tuple(thresholds), table.collect())


def vintage_table(lazy: pl.LazyFrame, thresholds: tuple[int, ...], as_of: date) -> pl.LazyFrame:
    """`vintage_curves(lazy, thresholds, as_of=as_of).table` of a panel `validate_panel`
    already returned, not yet collected: for a caller that collects it with other measures
    of the same panel in one `pl.collect_all` (each collect has a fixed cost, which is most
    of the cost on a month-end's panel)."""
    lazy = lazy.filter(pl.col("month_end") <= as_of)
    firsts, sizes = _firsts_and_sizes(lazy, thresholds)
    return _table(firsts, sizes, as_of, thresholds)


def _firsts_and_sizes(
    lazy: pl.LazyFrame, thresholds: tuple[int, ...]
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Each cohort loan's first MOB of each measure (null: never), and each cohort's size."""
    starts = lazy.filter(pl.col("months_on_book") == 0).select("loan_id", "origination_month")
    firsts = (
        lazy.filter(_any_event(thresholds))
        .group_by("loan_id")
        .agg(*(pl.col("months_on_book").filter(e).min().alias(n) for n, e in _events(thresholds)))
        .join(starts, on="loan_id", how="inner")
    )
    sizes = starts.group_by("origination_month").agg(pl.len().cast(pl.Int64).alias("loans"))
    return firsts, sizes


def _table(
    firsts: pl.LazyFrame, sizes: pl.LazyFrame, end: date, thresholds: tuple[int, ...]
) -> pl.LazyFrame:
    table = _grid(sizes, end)
    for name, _ in _events(thresholds):
        table = _accumulate(table, _new_per_month(firsts, name), name)
    return table.sort(_KEY)


_KEY = ["origination_month", "months_on_book"]


def _last_month_end(last: pl.DataFrame) -> date:
    value = last.item()
    if not isinstance(value, date):
        raise ValidationError("the panel has no rows", field="month_end")
    return value


def _events(thresholds: tuple[int, ...]) -> list[tuple[str, pl.Expr]]:
    charged_off = pl.col("state") == State.CHARGED_OFF.value
    named = [(measure_name(t), (pl.col("dpd") >= t) | charged_off) for t in thresholds]
    return [*named, (CHARGED_OFF, charged_off)]


def _any_event(thresholds: tuple[int, ...]) -> pl.Expr:
    """True on rows that start some measure: the few per cent of the panel worth grouping."""
    return (pl.col("dpd") >= min(thresholds)) | (pl.col("state") == State.CHARGED_OFF.value)


def _grid(sizes: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """Every cohort × months on book 0 … (as_of − cohort), with the cohort's size."""
    last = as_of.year * 12 + as_of.month - 1
    span = (pl.lit(last) - month_index("origination_month")).cast(pl.Int32)
    return (
        sizes.filter(span >= 0)
        .with_columns(pl.int_ranges(0, span + 1, dtype=pl.Int32).alias("months_on_book"))
        .explode("months_on_book")
    )


def _new_per_month(firsts: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """How many of a cohort's loans had the event for the first time at each MOB."""
    return (
        firsts.drop_nulls(name)
        .group_by("origination_month", pl.col(name).alias("months_on_book"))
        .agg(pl.len().cast(pl.Int64).alias("new"))
    )


def _accumulate(table: pl.LazyFrame, new: pl.LazyFrame, name: str) -> pl.LazyFrame:
    cumulative = pl.col("new").fill_null(0).cum_sum().over("origination_month", order_by=_KEY[1])
    return (
        table.join(new, on=_KEY, how="left")
        .with_columns(cumulative.alias(f"{name}_loans"))
        .with_columns((pl.col(f"{name}_loans") / pl.col("loans")).alias(f"{name}_rate"))
        .drop("new")
    )

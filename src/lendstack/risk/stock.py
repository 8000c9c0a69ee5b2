"""Stock measures at a month-end (delinquency and NPL ratios by dimension) and the
first-payment-default rate by cohort.

Stock ratios weigh balances, as supervisors read them: the NPL ratio is the principal of loans
classed 次级 + 可疑 + 损失 (substandard, doubtful, loss) over all outstanding principal, and a
delinquency ratio is the principal of loans at least N days past due over the same total.
Only loans on the books count (states M0 … M6+): a CO row is a write-off, a PO row is gone.
Each dimension (product, funder, province, channel) partitions the same loans, so each
dimension's balances add up to the total; the table carries that total as its own row.

The NPL numerator reads `risk_class`, not DPD: the class is the lender's five-category
judgment (a stricter profile or a manual downgrade moves it), and the ratio must report what
the books say.

First-payment default (FPD): the first installment reached 30+ DPD, read from the panel's
`first_payment_default` flag. A cohort's rate is over its *seasoned* loans, those whose
first-payment outcome is known: a row at months on book 2 (installment 1 falls due within a
month of disbursement, so 30 days past it lies at or before the end of MOB 2), an exit
before that, or the flag itself. Younger loans would only dilute the rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

import polars as pl

from lendstack.core.errors import ValidationError
from lendstack.core.money import from_fen
from lendstack.risk.panel import BUCKETS, EXITS, NON_PERFORMING, PanelLike, validate_panel

DELINQUENCY_THRESHOLDS = (1, 30, 90)
FPD_SEASONING_MONTHS = 2
TOTAL = "total"


class Dimension(StrEnum):
    """The panel columns stock measures break down by."""

    PRODUCT = "product_id"
    FUNDER = "funder"
    PROVINCE = "province"
    CHANNEL = "channel"


@dataclass(frozen=True, slots=True)
class StockMeasures:
    """One row per (dimension, value), plus the total as dimension "total", value "all".

    Columns: dimension, value, loans, balance_fen, dpd<N>_fen for each threshold,
    substandard_fen, doubtful_fen, loss_fen, npl_fen, then dpd<N>_ratio and npl_ratio
    (null where the balance is 0).
    """

    month_end: date
    thresholds: tuple[int, ...]
    table: pl.DataFrame

    def rows(self, dimension: Dimension | None = None) -> pl.DataFrame:
        """The rows of one dimension, or the total row for None."""
        name = TOTAL if dimension is None else dimension.value
        return self.table.filter(pl.col("dimension") == name)

    def as_json(self) -> dict[str, Any]:
        return {
            "month_end": self.month_end.isoformat(),
            "thresholds_dpd": list(self.thresholds),
            "rows": _json_rows(self.table),
        }


def _json_rows(table: pl.DataFrame) -> list[dict[str, Any]]:
    """Fen columns become decimal yuan strings (`balance_fen` → `balance`); ratios stay floats."""
    out = []
    for row in table.to_dicts():
        item: dict[str, Any] = {}
        for name, value in row.items():
            if name.endswith("_fen"):
                item[name.removesuffix("_fen")] = str(from_fen(int(value)))
            else:
                item[name] = value.isoformat() if isinstance(value, date) else value
        out.append(item)
    return out


def stock_measures(
    panel: PanelLike,
    month_end: date | None = None,
    *,
    dimensions: tuple[Dimension, ...] = tuple(Dimension),
    thresholds: tuple[int, ...] = DELINQUENCY_THRESHOLDS,
) -> StockMeasures:
    """Delinquency and NPL ratios at `month_end` (default: the panel's last), by dimension."""
    _check_thresholds(thresholds)
    lazy = validate_panel(panel)
    when = month_end or lazy.select(pl.col("month_end").max()).collect().item()
    if not isinstance(when, date):
        raise ValidationError("the panel has no rows", field="month_end")
    on_books = _on_books(lazy, when)
    parts = [_total(on_books, thresholds)]
    for dimension in dimensions:
        grouped = _breakdown(on_books, [dimension.value], thresholds)
        labelled = grouped.with_columns(_label(dimension.value, pl.col(dimension.value)))
        parts.append(labelled.select(_columns(thresholds)))
    tables = pl.collect_all(parts)
    return StockMeasures(when, tuple(thresholds), pl.concat(tables))


def stock_total(
    lazy: pl.LazyFrame, month_end: date, thresholds: tuple[int, ...] = DELINQUENCY_THRESHOLDS
) -> pl.LazyFrame:
    """`stock_measures(lazy, month_end, dimensions=()).table` (the total row) of a panel
    `validate_panel` already returned, not yet collected: for a caller that collects it with
    other measures of the same panel in one `pl.collect_all`."""
    _check_thresholds(thresholds)
    return _total(_on_books(lazy, month_end), thresholds)


def _on_books(lazy: pl.LazyFrame, when: date) -> pl.LazyFrame:
    return lazy.filter((pl.col("month_end") == when) & pl.col("state").is_in(BUCKETS))


def _total(on_books: pl.LazyFrame, thresholds: tuple[int, ...]) -> pl.LazyFrame:
    total = _breakdown(on_books, [], thresholds).with_columns(_label(TOTAL, pl.lit("all")))
    return total.select(_columns(thresholds))


def stock_history(
    panel: PanelLike,
    dimension: Dimension | None = None,
    *,
    thresholds: tuple[int, ...] = DELINQUENCY_THRESHOLDS,
) -> pl.DataFrame:
    """The same measures at every month-end (one row per month, or per month and value)."""
    _check_thresholds(thresholds)
    on_books = validate_panel(panel).filter(pl.col("state").is_in(BUCKETS))
    keys = ["month_end"] if dimension is None else ["month_end", dimension.value]
    return _breakdown(on_books, keys, thresholds).sort(keys).collect()


def _check_thresholds(thresholds: tuple[int, ...]) -> None:
    if not thresholds or any(t < 1 for t in thresholds):
        raise ValidationError("need one or more thresholds >= 1", field="thresholds")


def _label(dimension: str, value: pl.Expr) -> list[pl.Expr]:
    return [pl.lit(dimension).alias("dimension"), value.cast(pl.String).alias("value")]


def _columns(thresholds: tuple[int, ...]) -> list[str]:
    measures = [*(f"dpd{t}" for t in thresholds), "substandard", "doubtful", "loss", "npl"]
    ratios = [f"dpd{t}_ratio" for t in thresholds]
    return ["dimension", "value", "loans", "balance_fen", *(f"{m}_fen" for m in measures),
            *ratios, "npl_ratio"]  # fmt: skip


def _breakdown(
    on_books: pl.LazyFrame, keys: list[str], thresholds: tuple[int, ...]
) -> pl.LazyFrame:
    """Balances and ratios per `keys` (the whole book for no keys)."""
    balance = pl.col("principal_fen")
    sums = [
        pl.len().cast(pl.Int64).alias("loans"),
        balance.sum().alias("balance_fen"),
        *(balance.filter(pl.col("dpd") >= t).sum().alias(f"dpd{t}_fen") for t in thresholds),
        *(balance.filter(pl.col("risk_class") == c).sum().alias(f"{c}_fen") for c in NON_PERFORMING),
        balance.filter(pl.col("risk_class").is_in(NON_PERFORMING)).sum().alias("npl_fen"),
    ]  # fmt: skip
    grouped = on_books.group_by(keys).agg(sums) if keys else on_books.select(sums)
    total = pl.col("balance_fen")
    ratio_of = [f"dpd{t}" for t in thresholds] + ["npl"]
    return grouped.with_columns(
        pl.when(total > 0).then(pl.col(f"{m}_fen") / total).alias(f"{m}_ratio") for m in ratio_of
    )


@dataclass(frozen=True, slots=True)
class FirstPaymentDefault:
    """Columns: origination_month, loans, seasoned_loans, fpd_loans, fpd_rate (null if none
    seasoned)."""

    seasoning_months: int
    table: pl.DataFrame

    def as_json(self) -> dict[str, Any]:
        rows = self.table.with_columns(pl.col("origination_month").cast(pl.String)).to_dicts()
        return {"seasoning_months": self.seasoning_months, "cohorts": rows}


def fpd_by_cohort(
    panel: PanelLike,
    *,
    seasoning_months: int = FPD_SEASONING_MONTHS,
    as_of: date | None = None,
) -> FirstPaymentDefault:
    """FPD rate per origination month over its seasoned loans (see the module docstring)."""
    if seasoning_months < 1:
        raise ValidationError("must be >= 1", field="seasoning_months")
    lazy = validate_panel(panel)
    if as_of is not None:
        lazy = lazy.filter(pl.col("month_end") <= as_of)
    return FirstPaymentDefault(seasoning_months, fpd_table(lazy, seasoning_months).collect())


def fpd_table(lazy: pl.LazyFrame, seasoning_months: int) -> pl.LazyFrame:
    """`fpd_by_cohort(lazy, seasoning_months=…).table` of a panel `validate_panel` already
    returned, not yet collected: for a caller that collects it with other measures of the
    same panel in one `pl.collect_all`."""
    if seasoning_months < 1:
        raise ValidationError("must be >= 1", field="seasoning_months")
    mob, flagged = pl.col("months_on_book"), pl.col("first_payment_default")
    starts = lazy.filter(mob == 0).select("loan_id", "origination_month")
    known = (
        flagged
        | (mob == seasoning_months)
        | (pl.col("state").is_in(EXITS) & (mob < seasoning_months))
    )
    seasoned = _loans_per_cohort(lazy.filter(known), starts, "seasoned_loans")
    defaulted = _loans_per_cohort(lazy.filter(flagged), starts, "fpd_loans")
    sizes = starts.group_by("origination_month").agg(pl.len().cast(pl.Int64).alias("loans"))
    return (
        sizes.join(seasoned, on="origination_month", how="left")
        .join(defaulted, on="origination_month", how="left")
        .with_columns(pl.col("seasoned_loans", "fpd_loans").fill_null(0))
        .with_columns(
            pl.when(pl.col("seasoned_loans") > 0)
            .then(pl.col("fpd_loans") / pl.col("seasoned_loans"))
            .alias("fpd_rate")
        )
        .sort("origination_month")
    )


def _loans_per_cohort(rows: pl.LazyFrame, starts: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """Distinct loans among `rows` per cohort, counting only loans observed from origination."""
    loans = rows.select("loan_id").unique()
    return (
        starts.join(loans, on="loan_id", how="semi")
        .group_by("origination_month")
        .agg(pl.len().cast(pl.Int64).alias(name))
    )

"""The loan-month panel: one row per loan per month-end, the input of every portfolio measure.

Vintage curves, roll rates, transition matrices and stock ratios all read this one table, so
its shape is fixed here, once, as a polars schema with a sentence per column. Storage writes
month-end rows into a table whose columns carry exactly these names, so exporting the panel is
a plain `SELECT` (to Parquet, read by polars or DuckDB).

Row life: a loan has a row at the end of its origination month (months on book 0) and at
every month-end while it is on the books. The month it leaves, it has one last row in state
`CO` (charged off) or `PO` (paid off), and no rows after. A loan with no `CO`/`PO` row is
still open at the panel's last month-end (or the data stop there).

The state column keeps buckets and exits apart from DPD on purpose: a loan can be charged off
(fraud, death) or paid off at any DPD, and the analytics need the exit itself.

`validate_panel` checks names and dtypes (cheap, no data read) and coerces the compatible
ones; with `check_values=True` it also scans the data once for broken invariants. Every
problem raises `ValidationError` naming the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, TypeAlias

import polars as pl

from lendstack.core.errors import ValidationError

PanelLike: TypeAlias = pl.DataFrame | pl.LazyFrame


class State(StrEnum):
    """A loan's state at a month-end: its delinquency bucket, or how it left the books.

    M0 is current (0 DPD); Mk holds DPD in [30k-29, 30k] for k = 1..5; M6+ is 151 DPD or
    more. These are the servicing buckets (width 30) with everything past M6 folded into one,
    as roll-rate reports show them.
    """

    M0 = "M0"
    M1 = "M1"
    M2 = "M2"
    M3 = "M3"
    M4 = "M4"
    M5 = "M5"
    M6_PLUS = "M6+"
    CHARGED_OFF = "CO"
    PAID_OFF = "PO"


STATES: tuple[str, ...] = tuple(s.value for s in State)
BUCKETS: tuple[str, ...] = STATES[:7]
"""M0 … M6+: the states in which a loan is on the books."""
EXITS: tuple[str, ...] = (State.CHARGED_OFF.value, State.PAID_OFF.value)
"""CO and PO: terminal, so absorbing in every matrix."""
BUCKET_WIDTH = 30
"""DPD per bucket, as in the servicing default scheme (M1 = 1..30 DPD)."""

RISK_CLASSES: tuple[str, ...] = ("normal", "special_mention", "substandard", "doubtful", "loss")
"""正常/关注/次级/可疑/损失: the values of servicing's `RiskClass`, in increasing severity
(a test keeps the two in step)."""
NON_PERFORMING: tuple[str, ...] = RISK_CLASSES[2:]
"""次级 + 可疑 + 损失: the numerator of the NPL ratio."""
CLASS_FLOORS: tuple[int, ...] = (0, 90, 270, 360)
"""cn-2023 (servicing's default profile): more than 0 / 90 / 270 / 360 DPD → 关注 / 次级 /
可疑 / 损失. Used only where a panel is made up (tests, the generator); real panels carry the
class the lender assigned."""

STATE_DTYPE = pl.Enum(STATES)
RISK_CLASS_DTYPE = pl.Enum(RISK_CLASSES)

_COLUMNS: dict[str, pl.DataType] = {
    "loan_id": pl.Int64(),
    "month_end": pl.Date(),
    "origination_month": pl.Date(),
    "months_on_book": pl.Int32(),
    "state": STATE_DTYPE,
    "dpd": pl.Int32(),
    "principal_fen": pl.Int64(),
    "risk_class": RISK_CLASS_DTYPE,
    "product_id": pl.String(),
    "funder": pl.String(),
    "province": pl.String(),
    "channel": pl.String(),
    "first_payment_default": pl.Boolean(),
}
PANEL_SCHEMA = pl.Schema(_COLUMNS)
"""The canonical panel. Integers of any width, and strings for the two enums, are coerced."""

COLUMN_DOCS: dict[str, str] = {
    "loan_id": "The loan's id (loans.id).",
    "month_end": "The last calendar day of the month this row describes.",
    "origination_month": "The first day of the month the loan was disbursed in: its cohort.",
    "months_on_book": "Whole months from origination_month to month_end; 0 in the origination "
    "month.",
    "state": "M0 … M6+ by DPD while on the books; CO on the month-end of charge-off, PO on the "
    "month-end of payoff (last row of the loan).",
    "dpd": "Days past due of the oldest unpaid installment at month_end (0 when current).",
    "principal_fen": "Outstanding principal in fen at month_end; on the CO row, the principal "
    "written off; 0 on the PO row.",
    "risk_class": "五级分类 at month_end: normal, special_mention, substandard, doubtful, loss.",
    "product_id": "The product's id.",
    "funder": "The lead funder's id, or 'platform' when the platform funds alone.",
    "province": "The borrower's province, as lendstack.core.regions spells it.",
    "channel": "The acquisition channel (the app the application came from).",
    "first_payment_default": "True from the first month-end at which installment 1 has been "
    "30+ DPD (unpaid 30 days after its due date), and on every later row.",
}


def month_index(column: str) -> pl.Expr:
    """Months since year 0 (year·12 + month − 1): consecutive months differ by exactly 1."""
    day = pl.col(column)
    return day.dt.year().cast(pl.Int32) * 12 + day.dt.month().cast(pl.Int32) - 1


def validate_panel(panel: PanelLike, *, check_values: bool = False) -> pl.LazyFrame:
    """The panel's columns in canonical order and dtypes, or `ValidationError` naming a column.

    Extra columns are dropped. Without `check_values` nothing is read when state and
    risk_class are already the panel's enums; given as strings (a plain SQL export), their
    distinct labels are read once (~0.3 s on 10M rows) so that an unknown label fails here,
    named, instead of vanishing from every count.
    """
    lazy = panel.lazy()
    schema = lazy.collect_schema()
    exprs = [_coerce(name, schema.get(name)) for name in PANEL_SCHEMA]
    _check_labels(lazy, [n for n in _LABELS if schema[n] != PANEL_SCHEMA[n]])
    checked = lazy.select(exprs)
    if check_values:
        _check_values(checked)
    return checked


_STRINGLIKE = (pl.String, pl.Categorical, pl.Enum)


def _coerce(name: str, actual: pl.DataType | None) -> pl.Expr:
    if actual is None:
        raise ValidationError("the panel has no such column", field=name)
    expected = PANEL_SCHEMA[name]
    column = pl.col(name)
    if expected.is_integer() and actual.is_integer():
        return column.cast(expected)
    if expected == pl.Date and actual == pl.Date:
        return column
    if expected == pl.Boolean and (actual == pl.Boolean or actual.is_integer()):
        return column.cast(pl.Boolean)  # SQLite stores booleans as 0/1
    if isinstance(expected, pl.Enum) and isinstance(actual, _STRINGLIKE):
        return _as_enum(column, actual, expected)
    if expected == pl.String and isinstance(actual, _STRINGLIKE):
        return column  # categorical dimensions group faster; keep them
    raise ValidationError(f"must be {expected}, got {actual}", field=name)


def _as_enum(column: pl.Expr, actual: pl.DataType, expected: pl.Enum) -> pl.Expr:
    return column if actual == expected else column.cast(pl.String).cast(expected)


_LABELS = {"state": STATES, "risk_class": RISK_CLASSES}


def _check_labels(lazy: pl.LazyFrame, names: list[str]) -> None:
    """Refuse labels outside the enum (or nulls) in the string-typed label columns."""
    if not names:
        return
    found = lazy.select(pl.col(n).cast(pl.String).unique().implode() for n in names).collect()
    for name in names:
        unknown = set(found[name][0]) - set(_LABELS[name])
        if unknown:
            shown = ", ".join(sorted(repr(label) for label in unknown))
            raise ValidationError(f"unknown labels {shown}; expected {_LABELS[name]}", field=name)


def _check_values(panel: pl.LazyFrame) -> None:
    """One sort and one scan; the first broken rule raises, naming its column."""
    rules = _value_rules()
    keyed = panel.with_columns(panel_key().alias("_key")).sort("_key")
    found = keyed.select([bad.any().alias(str(i)) for i, (_, _, bad) in enumerate(rules)])
    row = found.collect().row(0)
    for (field, message, _), broken in zip(rules, row, strict=True):
        if broken:
            raise ValidationError(message, field=field)


def _value_rules() -> list[tuple[str, str, pl.Expr]]:
    """(column, message, violation) triples over the panel sorted by `panel_key`; each
    violation is True on an offending row. Neighbour comparisons replace per-loan windows."""
    c = pl.col
    nulls = [(name, "has null or unknown values", c(name).is_null()) for name in PANEL_SCHEMA]
    mob = month_index("month_end") - month_index("origination_month")
    next_day = (c("month_end") + pl.duration(days=1)).dt.day()
    same_loan_before = c("loan_id") == c("loan_id").shift(1)
    step = c("_key") - c("_key").shift(1)
    return [
        *nulls,
        ("month_end", "must be the last day of a month", next_day != 1),
        ("origination_month", "must be the first day of a month", c("origination_month").dt.day() != 1),
        ("months_on_book", "must equal the months from origination_month to month_end", c("months_on_book") != mob),
        ("dpd", "must be >= 0", c("dpd") < 0),
        ("principal_fen", "must be >= 0", c("principal_fen") < 0),
        ("state", "must be the DPD bucket while on the books",
         c("state").is_in(BUCKETS) & (c("state") != _bucket_of_dpd())),
        ("month_end", "has more than one row per loan and month-end", step == 0),
        ("state", "CO/PO must be a loan's last row",
         c("state").is_in(EXITS) & (c("loan_id") == c("loan_id").shift(-1))),
        ("month_end", "a loan's month-ends must be consecutive (no gaps)", same_loan_before & (step > 1)),
    ]  # fmt: skip


def panel_key() -> pl.Expr:
    """loan_id · 2^16 + month index: one int64 that sorts a panel by loan, then month.

    After that sort a loan's months are adjacent, so "the same loan h months later" is a
    shift by h plus a check that the key moved by exactly h: far cheaper than a self-join.
    Month indexes stay below 2^16 until the year 5461.
    """
    return pl.col("loan_id") * (1 << 16) + month_index("month_end")


def _bucket_of_dpd() -> pl.Expr:
    """The state label M0 … M6+ that `dpd` falls in (ceil(dpd / 30) capped at 6)."""
    index = ((pl.col("dpd") + BUCKET_WIDTH - 1) // BUCKET_WIDTH).clip(0, 6)
    return pl.lit(pl.Series(BUCKETS, dtype=STATE_DTYPE)).gather(index)


def bucket_index(dpd: int) -> int:
    """ceil(dpd / 30) capped at 6: the index into BUCKETS of a loan `dpd` days past due."""
    if dpd < 0:
        raise ValidationError(f"must be >= 0, got {dpd}", field="dpd")
    return min(-(-dpd // BUCKET_WIDTH), len(BUCKETS) - 1)


def class_of_dpd(dpd: int) -> str:
    """The cn-2023 risk class of a loan `dpd` days past due."""
    return RISK_CLASSES[sum(dpd > floor for floor in CLASS_FLOORS)]


def month_end_after(origination_month: date, months: int) -> date:
    """The last day of the month `months` after `origination_month`."""
    following = origination_month.year * 12 + origination_month.month + months
    return date(following // 12, following % 12 + 1, 1) - timedelta(days=1)


def loan_rows(
    loan_id: int,
    origination_month: date,
    dpds: Sequence[int],
    *,
    exit_state: State | None = None,
    exit_dpd: int = 0,
    principal_fen: int | Sequence[int] = 1_000_000,
    first_mob: int = 0,
    risk_classes: Sequence[str] | None = None,
    fpd_from_mob: int | None = None,
    **dimensions: str,
) -> list[dict[str, Any]]:
    """One loan's panel rows from its month-end DPDs, the contract above made executable.

    Rows start at months on book `first_mob` (0 unless the history is left-truncated); state
    and, unless given, risk class follow from DPD; `exit_state` (CO or PO) appends the last
    row, with the last principal written off for CO and 0 for PO. For tests and examples;
    `dimensions` overrides product_id, funder, province and channel.
    """
    balances = [principal_fen] * len(dpds) if isinstance(principal_fen, int) else principal_fen
    classes = risk_classes or [class_of_dpd(d) for d in dpds]
    if exit_state is not None and exit_state.value not in EXITS:
        raise ValidationError("must be CO or PO", field="exit_state")
    if len(balances) != len(dpds) or len(classes) != len(dpds):
        raise ValidationError("need one principal and class per DPD", field="principal_fen")
    dims = {**_EXAMPLE_DIMENSIONS, **dimensions}
    rows = []
    for offset, (dpd, balance, risk_class) in enumerate(zip(dpds, balances, classes, strict=True)):
        state = BUCKETS[bucket_index(dpd)]
        rows.append((first_mob + offset, state, dpd, balance, risk_class))
    if exit_state is not None:
        written_off = balances[-1] if exit_state is State.CHARGED_OFF and balances else 0
        mob = first_mob + len(dpds)
        rows.append((mob, exit_state.value, exit_dpd, written_off, class_of_dpd(exit_dpd)))
    return [
        {"loan_id": loan_id, "month_end": month_end_after(origination_month, mob),
         "origination_month": origination_month, "months_on_book": mob, "state": state,
         "dpd": dpd, "principal_fen": balance, "risk_class": risk_class, **dims,
         "first_payment_default": fpd_from_mob is not None and mob >= fpd_from_mob}
        for mob, state, dpd, balance, risk_class in rows
    ]  # fmt: skip


_EXAMPLE_DIMENSIONS = {
    "product_id": "cash-loan-installment",
    "funder": "platform",
    "province": "Zhejiang",
    "channel": "mall-app",
}


def panel_frame(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """A DataFrame in PANEL_SCHEMA from row dicts (e.g. `loan_rows` output)."""
    return pl.DataFrame(list(rows), schema=PANEL_SCHEMA)

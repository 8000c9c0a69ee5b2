"""The regulator report's records: its inputs, tables and sections, and shared helpers.

Kept apart from the table builders so storage can build `RegulatorInputs` and the page
renderer can read a `RegulatorReport` without importing the computations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from lendstack.core.money import from_fen
from lendstack.funding import Policy
from lendstack.risk.regulator_apr import Contracts

PLATFORM = "platform"
UNITS = 10_000
"""Funder shares are held in units of 1/10,000 (funder_positions.share_units)."""
APR_BANDS = (0.0, 0.06, 0.10, 0.14, 0.18, 0.20, 0.22, 0.24, 0.36)
LISTED_LOANS = 1000
"""Loans listed by name in a breach table; the count is always complete."""
ALERT_FIELDS = ("id", "severity", "period", "metric", "subject", "value", "threshold", "loans",
                "cohorts")  # fmt: skip
CLASS_NAMES = {
    "normal": "正常", "special_mention": "关注", "substandard": "次级", "doubtful": "可疑",
    "loss": "损失",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Period:
    month: date
    """The first day of the reported month."""
    month_end: date
    closed_days: int


@dataclass(frozen=True, slots=True)
class FunderInfo:
    id: str
    name: str
    kind: str
    """`FunderKind` value: platform, state_owned, joint_stock, city_commercial, rural, …"""


@dataclass(frozen=True, slots=True)
class Concentration:
    """One bank's co-lent balance against rules 2.2 (25 % of tier-1) and 2.3 (50 % of loans)."""

    funder_id: str
    name: str
    kind: str
    loans: int
    balance_fen: int
    tier1_capital_fen: int
    total_loans_fen: int
    tier1_limit_fen: int | None
    total_loans_limit_fen: int | None
    tier1_headroom_fen: int | None
    total_loans_headroom_fen: int | None


@dataclass(frozen=True, slots=True)
class EclSnapshot:
    run_id: int
    as_of: date
    config_id: str
    posted: bool
    total_fen: int
    ead_fen: int
    stages: tuple[tuple[int, int, int], ...]
    """(stage, allowance fen, loans)."""


@dataclass(frozen=True, slots=True)
class RegulatorInputs:
    """What storage reads for one month. Frames:

    - panel: loan_month_ends rows at the month-end (every state, CO/PO included);
    - caps: per on-book loan apr_cap, apr_rule, line_cap_fen, line_rule, borrower;
    - positions: loan_id, funder_id, share_units (co-funded loans on the books);
    - plans: loan_id, funder_id, share (the booked plan, decimal strings);
    - originations: loan_id, principal_fen (loans disbursed in the month).
    """

    period: Period
    pack: str
    panel: pl.DataFrame
    contracts: Contracts
    caps: pl.DataFrame
    positions: pl.DataFrame
    plans: pl.DataFrame
    originations: pl.DataFrame
    funders: tuple[FunderInfo, ...]
    policy: Policy
    concentration: tuple[Concentration, ...]
    ledger_principal_fen: int
    ecl: EclSnapshot | None
    alerts: tuple[dict[str, object], ...]
    npl_sales: tuple[dict[str, object], ...] | None
    npl_sales_note: str = ""
    monitoring: dict[str, list[dict[str, object]]] | None = None
    monitoring_note: str = "Model monitoring was not requested."
    """Why `monitoring` is None: shown in its place."""
    history: pl.DataFrame | None = None
    """The loan-month panel up to the month-end (from `history_since`), for the analytics."""
    history_note: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """One table of the report; `name` is its CSV file stem and XLSX sheet."""

    name: str
    title: str
    rows: tuple[dict[str, object], ...]
    note: str = ""
    fields: tuple[str, ...] = ()
    """The columns when known up front, so an empty table still has its header."""

    @property
    def columns(self) -> tuple[str, ...]:
        if self.fields:
            return self.fields
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    tables: tuple[Table, ...]
    text: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegulatorReport:
    period: Period
    pack: str
    summary: dict[str, object]
    sections: tuple[Section, ...]
    charts: dict[str, Any] = field(default_factory=dict)
    """Plain data for the page's charts (no matplotlib here)."""

    def tables(self) -> tuple[Table, ...]:
        return tuple(t for s in self.sections for t in s.tables)

    def as_json(self) -> dict[str, Any]:
        return {
            "month": self.period.month.strftime("%Y-%m"),
            "month_end": self.period.month_end.isoformat(),
            "closed_days": self.period.closed_days,
            "rule_pack": self.pack,
            "summary": {k: _json(v) for k, v in self.summary.items()},
            "tables": {t.name: [_row_json(r) for r in t.rows] for t in self.tables()},
        }


def _json(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _row_json(row: dict[str, object]) -> dict[str, object]:
    return {k: _json(v) for k, v in row.items()}


def money(fen: int | None) -> str | None:
    """Integer fen as an exact decimal string of yuan ("12345.67")."""
    return None if fen is None else str(from_fen(int(fen)))


def ratio(part: int | float, whole: int | float) -> float | None:
    return None if not whole else float(part) / float(whole)


def split_by_units(
    shares: pl.DataFrame, amounts: pl.DataFrame, amount: str = "principal_fen"
) -> pl.DataFrame:
    """Each loan's `amount` split over its (loan_id, funder_id, units) rows, to the fen.

    Largest remainder: floor parts first, then the fen left over go one each to the parts
    with the largest remainders (ties: funder id), so a loan's parts sum to its amount.
    """
    j = shares.join(amounts.select("loan_id", amount), on="loan_id", how="inner")
    raw = pl.col(amount) * pl.col("units")
    total = pl.col("units").sum().over("loan_id")
    j = j.with_columns((raw // total).alias("base"), (raw % total).alias("rem"))
    j = j.with_columns((pl.col(amount) - pl.col("base").sum().over("loan_id")).alias("short"))
    j = j.sort(["loan_id", "rem", "funder_id"], descending=[False, True, False])
    j = j.with_columns(pl.int_range(pl.len()).over("loan_id").alias("rank"))
    fen = pl.col("base") + (pl.col("rank") < pl.col("short")).cast(pl.Int64)
    return j.select("loan_id", "funder_id", fen.alias("fen"))


def funder_kinds(inputs: RegulatorInputs) -> dict[str, str]:
    """Funder id -> kind; the panel's "platform" (no plan) is the platform's own book."""
    return {PLATFORM: PLATFORM, **{f.id: f.kind for f in inputs.funders}}


def plan_units(plans: pl.DataFrame) -> pl.DataFrame:
    units = (pl.col("share").cast(pl.Float64) * UNITS).round(0).cast(pl.Int64)
    return plans.select("loan_id", "funder_id", units.alias("units"))

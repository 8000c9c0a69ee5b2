"""The regulator report's portfolio-analytics section: vintage curves, the month's roll-rate
matrix, first-payment default by cohort, and multi-month transitions from powers against
those observed (each the same figure as its `lendstack risk …` command, over the history
the report reads: the loan-month panel up to the month-end).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from lendstack.risk.regulator_model import Section, Table
from lendstack.risk.rollrates import (
    PowerComparison,
    TransitionMatrix,
    Weight,
    compare_powers,
    roll_rates,
)
from lendstack.risk.stock import fpd_by_cohort
from lendstack.risk.vintages import vintage_curves

TITLE = "Portfolio analytics"
CHART_COHORTS = 12
"""Vintage curves drawn: the latest cohorts (the table has them all)."""
HORIZONS = (3, 6)


def analytics_section(
    history: pl.DataFrame | None, month_end: date, note: str = ""
) -> tuple[Section, dict[str, Any]]:
    """The section and its chart data; without a history, a section saying why."""
    if history is None or history.is_empty():
        return Section(TITLE, (), (note or "No loan-month history to analyse.",)), {}
    vintages = vintage_curves(history, as_of=month_end)
    tables = (
        _vintage_table(vintages.table),
        _roll_table(history, month_end),
        _fpd_table(history, month_end),
        *(_power_table(c) for c in compare_powers(history, HORIZONS)),
    )
    return Section(TITLE, tables, (note,) if note else ()), {"vintages": _curves(vintages.table)}


def _vintage_table(table: pl.DataFrame) -> Table:
    rows = table.with_columns(pl.col("origination_month").cast(pl.String)).to_dicts()
    return Table(
        "vintage_curves",
        "Vintage curves: cumulative share of each cohort at 30+ / 90+ DPD and charged off",
        tuple(rows),
    )


def _roll_table(history: pl.DataFrame, month_end: date) -> Table:
    rolls = roll_rates(history)
    start = max((m for m in rolls.months if m < month_end), default=None)
    if start is None:
        return Table("roll_rates", "Roll rates over the month", (), "No month to roll from yet.")
    return Table(
        "roll_rates",
        f"Roll rates from {start} to {month_end} (share of loans)",
        _matrix_rows(rolls.matrix(Weight.LOANS, start)),
    )


def _matrix_rows(matrix: TransitionMatrix) -> tuple[dict[str, object], ...]:
    rows = []
    for i, source in enumerate(matrix.states):
        if not matrix.observed_rows[i]:
            continue
        row: dict[str, object] = {"from": source, "loans": int(matrix.observations[i].sum())}
        row.update(
            {
                t: round(float(p), 6)
                for t, p in zip(matrix.states, matrix.probabilities[i], strict=True)
            }
        )
        rows.append(row)
    return tuple(rows)


def _fpd_table(history: pl.DataFrame, month_end: date) -> Table:
    fpd = fpd_by_cohort(history, as_of=month_end).table
    rows = fpd.with_columns(pl.col("origination_month").cast(pl.String)).to_dicts()
    return Table("first_payment_default", "First-payment default by cohort", tuple(rows))


def _power_table(comparison: PowerComparison) -> Table:
    states, h = comparison.observed.states, comparison.horizon
    observed, powered = comparison.observed.probabilities, comparison.from_powers
    rows = [
        {"from": s, "to": t, "observed": round(float(observed[i, j]), 6),
         "from_powers": round(float(powered[i, j]), 6)}
        for i, s in enumerate(states) if comparison.observed.observed_rows[i]
        for j, t in enumerate(states) if observed[i, j] or powered[i, j]
    ]  # fmt: skip
    return Table(
        f"transitions_{h}m",
        f"{h}-month transitions: observed against the one-month matrix to the power {h}",
        tuple(rows),
        note=f"largest difference {comparison.max_abs_difference:.4f}",
    )


def _curves(table: pl.DataFrame) -> dict[str, list[tuple[int, float]]]:
    """cohort -> [(months on book, cumulative 30+ share)] for the latest cohorts."""
    cohorts = table["origination_month"].unique().sort().to_list()[-CHART_COHORTS:]
    out: dict[str, list[tuple[int, float]]] = {}
    for cohort in cohorts:
        part = table.filter(pl.col("origination_month") == cohort).sort("months_on_book")
        points = zip(part["months_on_book"].to_list(), part["dpd30_rate"].to_list(), strict=True)
        out[str(cohort)[:7]] = [(int(m), float(r)) for m, r in points if r is not None]
    return out


__all__ = ["TITLE", "analytics_section"]

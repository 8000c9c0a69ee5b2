"""The monthly regulator report's tables, built from the month-end book (a pure core).

A supervisor reads one month of a lender's book: balances and new lending by product, lender,
partner, province and channel; the all-in APR distribution and the loans above the cap (there
must be none); the amount caps; co-lending shares and the banks' concentration limits; the
five-category classification and NPL ratio; provisions and ECL by stage; NPL disposals;
alerts; model monitoring. Storage reads the inputs (`lendstack.storage.regulator`); this
module only computes, so every figure can be tested from hand-made frames.

Money stays integer fen until it is shown, and is shown as exact decimal strings. Each
breakdown partitions the same balance: a loan funded by several partners is split between
them to the fen by largest remainder (its funder positions' shares), so every dimension's
rows add up to the book's total, and the total is reconciled with the ledger's principal
receivable (account 1301) at the month-end.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl

from lendstack.risk.panel import BUCKETS, RISK_CLASSES
from lendstack.risk.regulator_analytics import analytics_section
from lendstack.risk.regulator_checks import (
    MONITORING,
    amount_cap_tables,
    apr_tables,
    colending_tables,
    concentration_row,
    disposal_tables,
    monitoring_section,
    provision_tables,
)
from lendstack.risk.regulator_model import (
    ALERT_FIELDS,
    CLASS_NAMES,
    PLATFORM,
    Concentration,
    EclSnapshot,
    FunderInfo,
    Period,
    RegulatorInputs,
    RegulatorReport,
    Section,
    Table,
    funder_kinds,
    money,
    plan_units,
    ratio,
    split_by_units,
)
from lendstack.risk.stock import Dimension, stock_measures

# --- the report -------------------------------------------------------------------------


def build_report(inputs: RegulatorInputs) -> RegulatorReport:
    """Every section, in the order a supervisor reads them."""
    on_books = inputs.panel.filter(pl.col("state").is_in(BUCKETS))
    parts = funder_parts(on_books, inputs.positions)
    balances, reconciliation = balance_tables(inputs, on_books, parts)
    classes, npl = classification_tables(inputs.panel, inputs.period.month_end)
    apr, apr_rows = apr_tables(inputs, on_books)
    caps = amount_cap_tables(inputs, on_books)
    shares = colending_tables(inputs, parts)
    provisions = provision_tables(inputs.ecl, on_books)
    disposals = disposal_tables(inputs)
    sections = [
        Section("Balances and originations", (balances, reconciliation)),
        Section("APR distribution", apr),
        Section("Amount caps", caps),
        Section("Co-lending shares and concentration", shares),
        Section("Five-category classification and NPL ratio", (classes, npl)),
        Section("Provision coverage and ECL by stage", provisions),
        Section("NPL disposals in the month", disposals),
        Section(
            "Alerts",
            (Table("alerts", "Alerts raised for the month", inputs.alerts, fields=ALERT_FIELDS),),
        ),
    ]
    analytics, analytics_charts = analytics_section(
        inputs.history, inputs.period.month_end, inputs.history_note
    )
    sections.append(analytics)
    if inputs.monitoring is not None:
        sections.append(monitoring_section(inputs.monitoring))
    else:
        sections.append(Section(MONITORING, (), (inputs.monitoring_note,)))
    summary = _summary(inputs, on_books, sections)
    charts = {**_chart_data(balances, classes, apr_rows, shares, provisions), **analytics_charts}
    return RegulatorReport(inputs.period, inputs.pack, summary, tuple(sections), charts)


# --- balances ---------------------------------------------------------------------------


# --- balances ---------------------------------------------------------------------------


def funder_parts(on_books: pl.DataFrame, positions: pl.DataFrame) -> pl.DataFrame:
    """(loan_id, funder_id, fen) for every on-book loan: co-funded loans split by their
    positions' shares, the rest wholly the panel's funder (the platform)."""
    funded = positions.filter(pl.col("share_units") > 0).rename({"share_units": "units"})
    split = split_by_units(funded, on_books)
    alone = on_books.join(funded.select("loan_id").unique(), on="loan_id", how="anti")
    whole = alone.select("loan_id", pl.col("funder").alias("funder_id"),
                         pl.col("principal_fen").alias("fen"))  # fmt: skip
    return pl.concat([split, whole])


def balance_tables(
    inputs: RegulatorInputs, on_books: pl.DataFrame, parts: pl.DataFrame
) -> tuple[Table, Table]:
    """Balances and originations by dimension, and the ledger reconciliation."""
    kinds = funder_kinds(inputs)
    new = inputs.originations.join(
        inputs.panel.select("loan_id", "product_id", "province", "channel"), on="loan_id"
    )
    new_parts = split_by_units(plan_units(inputs.plans), new)
    planned = new_parts.select("loan_id").unique()
    new_alone = new.join(planned, on="loan_id", how="anti").select(
        "loan_id", pl.lit(PLATFORM).alias("funder_id"), pl.col("principal_fen").alias("fen")
    )
    new_parts = pl.concat([new_parts, new_alone])
    rows: list[dict[str, object]] = [_total_row(on_books, new)]
    for dim in ("product_id", "province", "channel"):
        rows += _dim_rows(dim.removesuffix("_id"), on_books, new, dim)
    lender = pl.col("funder_id").replace_strict(kinds, default="unknown").alias("lender_type")
    for name, key in (("lender_type", lender), ("partner", pl.col("funder_id"))):
        held = parts.with_columns(key.alias("value"))
        granted = new_parts.with_columns(key.alias("value"))
        rows += _part_rows(name, held, granted)
    balance = int(on_books["principal_fen"].sum())
    ledger = inputs.ledger_principal_fen
    recon = Table("reconciliation", "Balance against the ledger (1301 principal receivable)", (
        {"item": "loans on the books (month-end panel)", "amount": money(balance)},
        {"item": "ledger 1301 principal receivable at the month-end", "amount": money(ledger)},
        {"item": "difference", "amount": money(balance - ledger)},
    ))  # fmt: skip
    note = "Partner and lender-type rows split co-funded loans by funder share, to the fen."
    return Table("balances", "Balances and originations by dimension", tuple(rows), note), recon


def _total_row(on_books: pl.DataFrame, new: pl.DataFrame) -> dict[str, object]:
    return {
        "dimension": "total", "value": "all", "loans": on_books.height,
        "balance": money(int(on_books["principal_fen"].sum())),
        "originated_loans": new.height, "originated_amount": money(int(new["principal_fen"].sum())),
    }  # fmt: skip


def _dim_rows(
    name: str, on_books: pl.DataFrame, new: pl.DataFrame, column: str
) -> list[dict[str, object]]:
    held = on_books.group_by(column).agg(pl.len().alias("n"), pl.col("principal_fen").sum())
    granted = new.group_by(column).agg(
        pl.len().alias("m"), pl.col("principal_fen").sum().alias("o")
    )
    joined = held.join(granted, on=column, how="full", coalesce=True).sort(column)
    return [
        {"dimension": name, "value": v, "loans": n or 0, "balance": money(b or 0),
         "originated_loans": m or 0, "originated_amount": money(o or 0)}
        for v, n, b, m, o in joined.select(column, "n", "principal_fen", "m", "o").iter_rows()
    ]  # fmt: skip


def _part_rows(name: str, held: pl.DataFrame, granted: pl.DataFrame) -> list[dict[str, object]]:
    a = held.group_by("value").agg(pl.col("loan_id").n_unique().alias("n"), pl.col("fen").sum())
    b = granted.group_by("value").agg(pl.col("loan_id").n_unique().alias("m"),
                                      pl.col("fen").sum().alias("o"))  # fmt: skip
    joined = a.join(b, on="value", how="full", coalesce=True).sort("value")
    return [
        {"dimension": name, "value": v, "loans": n or 0, "balance": money(f or 0),
         "originated_loans": m or 0, "originated_amount": money(o or 0)}
        for v, n, f, m, o in joined.select("value", "n", "fen", "m", "o").iter_rows()
    ]  # fmt: skip


# --- classification ---------------------------------------------------------------------


def classification_tables(panel: pl.DataFrame, month_end: date) -> tuple[Table, Table]:
    """The five categories (loans, balance, share) and the NPL ratio by dimension (risk.stock)."""
    on_books = panel.filter(pl.col("state").is_in(BUCKETS))
    total = int(on_books["principal_fen"].sum())
    grouped = {
        c: (n, f)
        for c, n, f in on_books.group_by("risk_class")
        .agg(pl.len(), pl.col("principal_fen").sum())
        .iter_rows()
    }
    rows = []
    for c in RISK_CLASSES:
        n, fen = grouped.get(c, (0, 0))
        rows.append({"class": c, "类别": CLASS_NAMES[c], "loans": n, "balance": money(fen),
                     "share": ratio(fen, total), "npl": c in RISK_CLASSES[2:]})  # fmt: skip
    npl_fen = sum(int(grouped.get(c, (0, 0))[1]) for c in RISK_CLASSES[2:])
    rows.append({"class": "NPL (次级+可疑+损失)", "类别": "不良", "loans": sum(
        int(grouped.get(c, (0, 0))[0]) for c in RISK_CLASSES[2:]), "balance": money(npl_fen),
        "share": ratio(npl_fen, total), "npl": True})  # fmt: skip
    classes = Table("classification", "Five-category classification (五级分类)", tuple(rows))
    return classes, _npl_table(panel, month_end)


def _npl_table(panel: pl.DataFrame, month_end: date) -> Table:
    if panel.filter(pl.col("state").is_in(BUCKETS)).is_empty():
        return Table("npl_by_dimension", "NPL and delinquency ratios by dimension", ())
    frame = panel.with_columns(
        pl.lit(month_end).alias("month_end"), pl.lit(month_end).alias("origination_month"),
        pl.lit(False).alias("first_payment_default"),
    )  # fmt: skip
    measures = stock_measures(frame, month_end, dimensions=tuple(Dimension))
    rows = []
    for r in measures.table.to_dicts():
        rows.append({
            "dimension": r["dimension"], "value": r["value"], "loans": r["loans"],
            "balance": money(r["balance_fen"]), "npl": money(r["npl_fen"]),
            "npl_ratio": r["npl_ratio"], "dpd30_ratio": r.get("dpd30_ratio"),
            "dpd90_ratio": r.get("dpd90_ratio"),
        })  # fmt: skip
    return Table("npl_by_dimension", "NPL and delinquency ratios by dimension", tuple(rows))


# --- summary ----------------------------------------------------------------------------


def _count(sections: list[Section], name: str, key: str = "breaches") -> int:
    for s in sections:
        for t in s.tables:
            if t.name == name:
                return sum(int(r.get(key) or 0) for r in t.rows)  # type: ignore[call-overload]
    return 0


def _summary(
    inputs: RegulatorInputs, on_books: pl.DataFrame, sections: list[Section]
) -> dict[str, object]:
    balance = int(on_books["principal_fen"].sum())
    npl = int(on_books.filter(pl.col("risk_class").is_in(RISK_CLASSES[2:]))["principal_fen"].sum())
    breaches = sum(
        1 for c in inputs.concentration
        if concentration_row(c)["tier1_breach"] or concentration_row(c)["total_loans_breach"]
    )  # fmt: skip
    return {
        "loans_on_books": on_books.height, "balance": money(balance),
        "ledger_principal_receivable": money(inputs.ledger_principal_fen),
        "reconciled": balance == inputs.ledger_principal_fen,
        "originated_loans": inputs.originations.height,
        "originated_amount": money(int(inputs.originations["principal_fen"].sum())),
        "npl_balance": money(npl), "npl_ratio": ratio(npl, balance),
        "apr_above_cap": _count(sections, "apr_summary", "above_cap"),
        "amount_cap_breaches": _count(sections, "amount_caps"),
        "share_floor_breaches": _count(sections, "share_floor"),
        "concentration_breaches": breaches,
        "ecl_total": money(inputs.ecl.total_fen) if inputs.ecl else None,
        "alerts": len(inputs.alerts),
        "model_monitoring": inputs.monitoring is not None,
    }  # fmt: skip


def _chart_data(
    balances: Table, classes: Table, apr: Any, shares: tuple[Table, ...],
    provisions: tuple[Table, ...],
) -> dict[str, Any]:  # fmt: skip
    def by(dim: str) -> dict[str, float]:
        return {str(r["value"]): float(str(r["balance"])) for r in balances.rows
                if r["dimension"] == dim}  # fmt: skip

    concentration = next(t for t in shares if t.name == "concentration")
    stages = next((t for t in provisions if t.name == "ecl_by_stage"), None)
    return {
        "product": by("product"),
        "province": by("province"),
        "lender_type": by("lender_type"),
        "classes": {str(r["class"]): float(str(r["balance"])) for r in classes.rows[:5]},
        "apr": apr[~np.isnan(apr)] if apr.size else apr,
        "tier1_used": {str(r["funder"]): float(r["tier1_used"] or 0) for r in concentration.rows},  # type: ignore[arg-type]
        "total_loans_used": {
            str(r["funder"]): float(r["total_loans_used"] or 0)  # type: ignore[arg-type]
            for r in concentration.rows
        },
        "stages": {}
        if stages is None
        else {f"stage {r['stage']}": float(str(r["allowance"])) for r in stages.rows},
    }


__all__ = [
    "Concentration",
    "EclSnapshot",
    "FunderInfo",
    "Period",
    "RegulatorInputs",
    "RegulatorReport",
    "Section",
    "Table",
    "build_report",
    "split_by_units",
]

"""The regulator report's compliance tables: APR caps, amount caps, co-lending shares and
concentration, provisions, disposals and model monitoring (a pure core).

Each function reads `RegulatorInputs` (see `lendstack.risk.regulator`) and returns tables; a
breach table lists at most `LISTED_LOANS` loans while its count is always complete.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import polars as pl

from lendstack.risk.panel import RISK_CLASSES
from lendstack.risk.regulator_apr import above_cap, float_aprs
from lendstack.risk.regulator_model import (
    APR_BANDS,
    LISTED_LOANS,
    PLATFORM,
    UNITS,
    Concentration,
    EclSnapshot,
    RegulatorInputs,
    Section,
    Table,
    funder_kinds,
    money,
    plan_units,
    ratio,
)

# --- APR --------------------------------------------------------------------------------


def apr_tables(inputs: RegulatorInputs, on_books: pl.DataFrame) -> tuple[tuple[Table, ...], Any]:
    """Distribution by band, summary, and every loan above its cap (decided exactly)."""
    c = inputs.contracts
    apr = float_aprs(c)
    caps = pl.DataFrame({"loan_id": c.loan_id}).join(inputs.caps, on="loan_id", how="left")
    cap = caps["apr_cap"].fill_null(np.nan).to_numpy()
    balance = pl.DataFrame({"loan_id": c.loan_id}).join(
        on_books.select("loan_id", "principal_fen", "product_id"), on="loan_id", how="left"
    )
    fen = balance["principal_fen"].fill_null(0).to_numpy()
    count, above = above_cap(c, apr, cap, LISTED_LOANS)
    bands = _bands(apr, fen)
    listed = tuple(
        {"loan_id": int(c.loan_id[i]), "apr": str(exact), "cap": repr(float(cap[i])),
         "rule": caps["apr_rule"][i], "product": balance["product_id"][i],
         "balance": money(int(fen[i]))}
        for i, exact in above
    )  # fmt: skip
    valid = apr[~np.isnan(apr)]
    summary: dict[str, object] = {
        "loans": int(c.loan_id.shape[0]), "loans_with_cap": int((~np.isnan(cap)).sum()),
        "min": _stat(valid, np.min), "p50": _stat(valid, np.median), "mean": _stat(valid, np.mean),
        "p95": _stat(valid, lambda a: np.quantile(a, 0.95)), "max": _stat(valid, np.max),
        "above_cap": count, "share_above_cap": ratio(count, c.loan_id.shape[0]),
    }  # fmt: skip
    note = ("No loan is above its APR cap." if not above else
            f"{count} loans are above their APR cap; the first {len(above)} are listed.")  # fmt: skip
    tables = (
        Table("apr_summary", "All-in APR (nominal annual IRR, every fee included)", (summary,), note),
        Table("apr_distribution", "APR distribution by band", bands),
        Table("apr_above_cap", "Loans above their APR cap (must be empty)", listed,
              fields=("loan_id", "apr", "cap", "rule", "product", "balance")),
    )  # fmt: skip
    return tables, apr


def _stat(values: Any, fn: Any) -> float | None:
    return None if values.size == 0 else float(fn(values))


def _bands(apr: Any, fen: Any) -> tuple[dict[str, object], ...]:
    edges = [*APR_BANDS, np.inf]
    known = ~np.isnan(apr)
    rows = []
    total = int(known.sum())
    for lo, hi in itertools.pairwise(edges):
        inside = known & (apr > lo if lo > 0 else apr >= lo) & (apr <= hi)
        n = int(inside.sum())
        label = f"> {lo:.0%}" if hi == np.inf else f"{lo:.0%}–{hi:.0%}"
        rows.append({"band": label, "loans": n, "balance": money(int(fen[inside].sum())),
                     "share_of_loans": ratio(n, total)})  # fmt: skip
    return tuple(rows)


# --- amount caps ------------------------------------------------------------------------


def amount_cap_tables(inputs: RegulatorInputs, on_books: pl.DataFrame) -> tuple[Table, ...]:
    """Per loan: contract principal within the credit-line cap; per borrower: the month-end
    balance of all their loans within the strictest cap of any of them."""
    c = inputs.contracts
    loans = (
        pl.DataFrame({"loan_id": c.loan_id, "amount_fen": c.principal_fen})
        .join(inputs.caps.select("loan_id", "line_cap_fen", "line_rule", "borrower"), on="loan_id")
        .join(on_books.select("loan_id", "principal_fen"), on="loan_id", how="left")
    )
    capped = loans.filter(pl.col("line_cap_fen").is_not_null())
    per_loan = capped.filter(pl.col("amount_fen") > pl.col("line_cap_fen"))
    borrowers = capped.group_by("borrower").agg(
        pl.col("principal_fen").sum().alias("balance_fen"), pl.len().alias("loans"),
        pl.col("line_cap_fen").min(), pl.col("line_rule").sort_by("line_cap_fen").first(),
    )  # fmt: skip
    per_borrower = borrowers.filter(pl.col("balance_fen") > pl.col("line_cap_fen"))
    unknown = int(loans["borrower"].str.starts_with("loan:").sum())
    checks = (
        {"check": "loan amount <= credit-line cap", "checked": capped.height,
         "breaches": per_loan.height, "largest": money(_max(capped["amount_fen"]))},
        {"check": "borrower balance <= credit-line cap", "checked": borrowers.height,
         "breaches": per_borrower.height, "largest": money(_max(borrowers["balance_fen"]))},
    )  # fmt: skip
    note = (f"{unknown} loans were not booked from a logged decision; each counts as its own "
            "borrower." if unknown else "")  # fmt: skip
    breaches = [
        {"kind": "loan", "subject": f"loan {r['loan_id']}", "amount": money(r["amount_fen"]),
         "cap": money(r["line_cap_fen"]), "rule": r["line_rule"]}
        for r in per_loan.head(LISTED_LOANS).to_dicts()
    ] + [
        {"kind": "borrower", "subject": r["borrower"], "amount": money(r["balance_fen"]),
         "cap": money(r["line_cap_fen"]), "rule": r["line_rule"]}
        for r in per_borrower.sort("borrower").head(LISTED_LOANS).to_dicts()
    ]  # fmt: skip
    return (
        Table("amount_caps", "Compliance with the amount caps", checks, note),
        Table(
            "amount_cap_breaches",
            "Amount-cap breaches (must be empty)",
            tuple(breaches),
            fields=("kind", "subject", "amount", "cap", "rule"),
        ),
    )


def _max(series: pl.Series) -> int:
    value = series.max()
    return 0 if value is None else int(value)  # type: ignore[arg-type]


# --- co-lending -------------------------------------------------------------------------


def colending_tables(inputs: RegulatorInputs, parts: pl.DataFrame) -> tuple[Table, ...]:
    """Shares per funder, the per-loan minimum-share check, and concentration limits."""
    names = {PLATFORM: PLATFORM, **{f.id: f.name for f in inputs.funders}}
    kinds = funder_kinds(inputs)
    total = int(parts["fen"].sum()) if parts.height else 0
    held = parts.group_by("funder_id").agg(pl.col("loan_id").n_unique().alias("loans"),
                                           pl.col("fen").sum()).sort("funder_id")  # fmt: skip
    units = plan_units(inputs.plans)
    avg = dict(units.group_by("funder_id").agg(pl.col("units").mean()).iter_rows())
    shares = tuple(
        {"funder": f, "name": names.get(f, f), "kind": kinds.get(f, "unknown"), "loans": n,
         "balance": money(fen), "share_of_book": ratio(fen, total),
         "average_plan_share": None if f not in avg else float(avg[f]) / UNITS}
        for f, n, fen in held.iter_rows()
    )  # fmt: skip
    floor = _share_floor(inputs, units, kinds)
    return (
        Table("colending_shares", "Co-lending shares by funder", shares),
        *floor,
        Table("concentration", "Bank concentration: 25 % of tier-1 capital, 50 % of total loans",
              tuple(concentration_row(c) for c in inputs.concentration),
              fields=CONCENTRATION_FIELDS),
    )  # fmt: skip


def _share_floor(
    inputs: RegulatorInputs, units: pl.DataFrame, kinds: dict[str, str]
) -> tuple[Table, Table]:
    """Every co-funded loan: each non-zero share >= min_share, the platform's own share >=
    platform_min_share (REGULATION.md 2.1)."""
    p = inputs.policy
    min_units, own_units = int(p.min_share * UNITS), int(p.platform_min_share * UNITS)
    is_platform = pl.col("funder_id").replace_strict(kinds, default="unknown") == PLATFORM
    loans = units.with_columns(is_platform.alias("own")).group_by("loan_id").agg(
        pl.col("units").filter(pl.col("units") > 0).min().alias("smallest"),
        pl.col("units").filter(pl.col("own")).sum().alias("own_units"),
        (~pl.col("own")).any().alias("has_bank"),
    ).filter(pl.col("has_bank"))  # fmt: skip
    bad = loans.filter((pl.col("smallest") < min_units) | (pl.col("own_units") < own_units))
    check = (
        {"check": f"every share >= {p.min_share} and the platform's own share >= "
                  f"{p.platform_min_share}", "co_funded_loans": loans.height,
         "breaches": bad.height},
    )  # fmt: skip
    listed = tuple(
        {"loan_id": r["loan_id"], "smallest_share": r["smallest"] / UNITS,
         "platform_share": r["own_units"] / UNITS}
        for r in bad.sort("loan_id").head(LISTED_LOANS).to_dicts()
    )  # fmt: skip
    return (
        Table("share_floor", "Minimum co-lending shares", check),
        Table(
            "share_floor_breaches",
            "Loans below a minimum share (must be empty)",
            listed,
            fields=("loan_id", "smallest_share", "platform_share"),
        ),
    )


CONCENTRATION_FIELDS = (
    "funder", "name", "kind", "loans", "balance", "tier1_capital", "tier1_limit_25pct",
    "tier1_used", "tier1_headroom", "tier1_breach", "total_loans", "total_loans_limit_50pct",
    "total_loans_used", "total_loans_headroom", "total_loans_breach",
)  # fmt: skip
SALE_FIELDS = (
    "id", "business_date", "buyer_id", "loans", "principal", "carrying", "price",
    "allowance_released", "loss",
)  # fmt: skip


def concentration_row(c: Concentration) -> dict[str, object]:
    return {
        "funder": c.funder_id, "name": c.name, "kind": c.kind, "loans": c.loans,
        "balance": money(c.balance_fen), "tier1_capital": money(c.tier1_capital_fen),
        "tier1_limit_25pct": money(c.tier1_limit_fen),
        "tier1_used": ratio(c.balance_fen, c.tier1_limit_fen or 0),
        "tier1_headroom": money(c.tier1_headroom_fen),
        "tier1_breach": c.tier1_limit_fen is not None and c.balance_fen > c.tier1_limit_fen,
        "total_loans": money(c.total_loans_fen),
        "total_loans_limit_50pct": money(c.total_loans_limit_fen),
        "total_loans_used": ratio(c.balance_fen, c.total_loans_limit_fen or 0),
        "total_loans_headroom": money(c.total_loans_headroom_fen),
        "total_loans_breach": c.total_loans_headroom_fen is not None
        and c.total_loans_headroom_fen < 0,
    }  # fmt: skip


# --- provisions, disposals, monitoring ----------------------------------------------------


def provision_tables(ecl: EclSnapshot | None, on_books: pl.DataFrame) -> tuple[Table, ...]:
    """ECL by stage from the run in force, and coverage of the NPL balance by the allowance."""
    if ecl is None:
        return (Table("provisions", "Provision coverage", (),
                      "No ECL run at or before the month-end (lendstack risk ecl).",
                      fields=("ecl_run", "as_of", "allowance")),)  # fmt: skip
    npl = int(on_books.filter(pl.col("risk_class").is_in(RISK_CLASSES[2:]))["principal_fen"].sum())
    balance = int(on_books["principal_fen"].sum())
    stages: tuple[dict[str, object], ...] = tuple(
        {"stage": s, "loans": n, "allowance": money(fen), "share": ratio(fen, ecl.total_fen)}
        for s, fen, n in ecl.stages
    )
    coverage = (
        {"ecl_run": ecl.run_id, "as_of": ecl.as_of, "posted": ecl.posted, "config": ecl.config_id,
         "allowance": money(ecl.total_fen), "ead": money(ecl.ead_fen),
         "npl_balance": money(npl), "provision_coverage": ratio(ecl.total_fen, npl),
         "loan_balance": money(balance), "provision_ratio": ratio(ecl.total_fen, balance)},
    )  # fmt: skip
    note = ("Coverage = allowance / NPL principal (拨备覆盖率); ratio = allowance / principal "
            "(拨贷比), both against the month-end book.")  # fmt: skip
    return (
        Table("provisions", "Provision coverage", coverage, note),
        Table("ecl_by_stage", "ECL by stage", stages),
    )


def disposal_tables(inputs: RegulatorInputs) -> tuple[Table, ...]:
    """Charge-offs (the month's CO rows) and, where recorded, NPL sales."""
    co = inputs.panel.filter(pl.col("state") == "CO")
    grouped = (
        co.group_by("product_id").agg(pl.len(), pl.col("principal_fen").sum()).sort("product_id")
    )
    rows = tuple(
        {"product": p, "loans": n, "principal_written_off": money(f)}
        for p, n, f in grouped.iter_rows()
    )
    sales: tuple[dict[str, object], ...] = ()
    note = inputs.npl_sales_note
    if inputs.npl_sales is not None:
        sales = tuple(
            {
                k.removesuffix("_fen"): money(int(v))
                if k.endswith("_fen") and isinstance(v, int)
                else v
                for k, v in r.items()
            }
            for r in inputs.npl_sales
        )
        note = note or ("" if sales else "No NPL sales recorded in the month.")
    return (
        Table(
            "charge_offs",
            "Charge-offs in the month",
            rows,
            fields=("product", "loans", "principal_written_off"),
        ),
        Table("npl_sales", "NPL sales in the month", sales, note, fields=SALE_FIELDS),
    )


MONITORING = "Model monitoring and fairness"


def monitoring_section(tables: dict[str, list[dict[str, object]]]) -> Section:
    titles = {
        "score_psi": "Score PSI (recent applications vs training)",
        "feature_psi": "Feature PSI",
        "performance": "Performance on matured loans vs development",
        "fairness": "Approval and default rates by group (adverse-impact ratio)",
    }
    return Section(MONITORING, tuple(
        Table(f"monitoring_{k}", titles.get(k, k), tuple(v)) for k, v in tables.items()
    ))  # fmt: skip

"""report.html: one self-contained page per run (and a comparison page for several scenarios).

Built with the shared toolkit (`lendstack.reporting`): charts are inline SVG, tables escaped,
no network. Reads only metrics.json's content and the run's loans table, so a report can be
rebuilt from the outputs alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from lendstack.reporting import Page, bar_chart, line_chart

_PATHS = (
    ("approval_rate", "Approval rate"),
    ("dpd30_rate", "30+ DPD (share of balance)"),
    ("dpd90_rate", "90+ DPD (share of balance)"),
    ("npl_ratio", "NPL ratio (substandard + doubtful + loss)"),
)


def _series(monthly: Sequence[Mapping[str, Any]], key: str) -> list[tuple[float, float]]:
    return [(float(m["month"]), float(m[key] or 0.0)) for m in monthly]


def _vintages(loans: pl.DataFrame) -> dict[str, list[tuple[float, float]]]:
    """Cumulative bad rate by origination month (ever 90+ DPD or charged off at run end)."""
    if loans.is_empty() or "bad" not in loans.columns:
        return {}
    by = (
        loans.with_columns(
            pl.col("disbursement_date").cast(pl.Utf8).str.slice(0, 7).alias("cohort")
        )
        .group_by("cohort")
        .agg(pl.col("bad").mean().alias("bad_rate"), pl.len().alias("loans"))
        .sort("cohort")
    )
    points = [(float(i + 1), float(r)) for i, r in enumerate(by["bad_rate"].to_list())]
    return {"bad rate by origination month (at run end)": points}


def _pnl(monthly: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    keys = ("income", "partner_share", "losses", "funding_cost", "net_income")
    return {k.replace("_", " "): _series(monthly, k) for k in keys}


def _limit_use(monthly: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    banks = sorted({f for m in monthly for f in m.get("partner_limit_use", {})})
    return {
        f: [(float(m["month"]), 100 * m.get("partner_limit_use", {}).get(f, 0.0)) for m in monthly]
        for f in banks
    }


def _exposure(monthly: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    funders = sorted({f for m in monthly for f in m["partner_exposure"]})
    return {
        f: [(float(m["month"]), m["partner_exposure"].get(f, 0.0) / 1e6) for m in monthly]
        for f in funders
    }


def _collections(monthly: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Contact attempts, promises to pay and cures per month (the collections hook)."""
    return {
        label: [(float(m["month"]), float(m.get(key, 0) or 0)) for m in monthly]
        for key, label in (("contacts", "contact attempts"), ("promises", "promises to pay"),
                           ("cured", "loans cured"))
    }  # fmt: skip


def _model_paths(
    monthly: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, list[tuple[float, float]]]]:
    """(held-out AUC of the retrained, champion and latent models; score PSI) by month."""
    aucs: dict[str, list[tuple[float, float]]] = {}
    for key, label in (("new_auc", "retrained model"), ("champion_auc", "champion"),
                       ("latent_auc", "latent PD (ceiling)")):  # fmt: skip
        points = [
            (float(m["month"]), float(m["model"][key]))
            for m in monthly
            if m.get("model", {}).get(key) is not None
        ]
        if points:
            aucs[label] = points
    psi = [
        (float(m["month"]), float(m["model"]["score_psi"]))
        for m in monthly
        if m.get("model", {}).get("score_psi") is not None
    ]
    return aucs, ({"score PSI vs last month": psi} if psi else {})


def _alert_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = [{"month": a["month"], "alert": a["alert"]} for a in summary["alerts"]]
    rows += [{"month": e["month"], "alert": e["event"]} for e in summary["events"]]
    return sorted(rows, key=lambda r: (r["month"], r["alert"]))


def _headline(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    keys = ("applications", "approval_rate", "loans_booked", "originations_amount", "npl_ratio",
            "peak_npl_ratio", "dpd30_rate", "dpd90_rate", "ecl", "net_income", "charged_off",
            "max_apr", "ledger_balanced", "model_auc", "latent_auc", "bad_loans")  # fmt: skip
    return [{"measure": k, "value": summary.get(k)} for k in keys]


def run_report(metrics: Mapping[str, Any], loans: pl.DataFrame, path: Path) -> Path:
    """The report for one scenario's run."""
    summary, monthly = metrics["summary"], metrics["monthly"]
    page = Page(f"lendstack simulation: {summary['scenario']}")
    page.paragraph(
        f"{summary['borrowers']:,} borrowers × {summary['months']} months from "
        f"{summary['start']}, seed {summary['seed']}. Every application was decided by the real "
        "decision engine, every loan booked, serviced and closed daily by the real ledger."
    )
    page.heading("Summary").table(_headline(summary), ["measure", "value"])
    page.heading("Originations and approvals")
    page.chart(
        line_chart(
            {
                "originations (CNY m)": [
                    (x, y / 1e6) for x, y in _series(monthly, "originations_amount")
                ]
            },
            "Originations",
            "month",
            "CNY million",
        )
    )
    page.chart(
        line_chart({"approval rate": _series(monthly, "approval_rate")}, "Approval rate", "month")
    )
    mix: dict[str, float] = {}
    for m in monthly:
        for band, n in m["apr_mix"].items():
            mix[band] = mix.get(band, 0) + n
    page.heading("APR mix").chart(bar_chart(mix, "Loans booked by APR (IRR) band", "APR", "loans"))
    page.chart(
        line_chart(
            {"max APR": _series(monthly, "max_apr"), "mean APR": _series(monthly, "mean_apr")},
            "APR of loans booked",
            "month",
        )
    )
    page.heading("Delinquency and NPL")
    page.chart(
        line_chart(
            {label: _series(monthly, key) for key, label in _PATHS[1:]},
            "DPD and NPL paths",
            "month",
            "share of balance",
        )
    )
    if vintages := _vintages(loans):
        page.heading("Vintages").chart(
            line_chart(vintages, "Vintage bad rates", "origination month", "bad rate")
        )
    page.heading("Expected credit loss").chart(
        line_chart(
            {"ECL (CNY)": _series(monthly, "ecl")}, "ECL allowance at month-end", "month", "CNY"
        )
    )
    page.heading("Profit and loss").chart(line_chart(_pnl(monthly), "Monthly P&L", "month", "CNY"))
    page.paragraph(
        f"NPL sales: {summary.get('npl_sold_loans', 0):,} loans sold for "
        f"{summary.get('npl_sale_proceeds', 0.0):,.2f} CNY (quarter-ends; losses include the loss on sale)."
    )
    page.heading("Collections").chart(
        line_chart(_collections(monthly), "Collections at each month-end", "month", "count")
    )
    aucs, psi = _model_paths(monthly)
    if aucs or psi:
        page.heading("Model retraining and drift")
    if aucs:
        page.chart(line_chart(aucs, "AUC on held-out matured loans", "month", "AUC"))
    if psi:
        page.chart(line_chart(psi, "PSI of the score distribution, month over month", "month"))
    if exposure := _exposure(monthly):
        page.heading("Partner exposure").chart(
            line_chart(exposure, "Active principal by funder", "month", "CNY million")
        )
    if limits := _limit_use(monthly):
        page.chart(
            line_chart(limits, "Use of each bank's 25% tier-1 limit (rule 2.2)", "month",
                       "% of the limit")
        )  # fmt: skip
    page.heading("Alerts and events").table(
        _alert_rows(summary) or [{"month": "", "alert": "none"}], ["month", "alert"]
    )
    return page.write(path)


def comparison_report(metrics: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Several scenarios of the same seed side by side."""
    page = Page("lendstack simulation: scenario comparison")
    names = [m["summary"]["scenario"] for m in metrics]
    page.paragraph(
        "Scenarios: " + ", ".join(names) + ". Each has its own run directory and report."
    )
    for key, label in (
        ("originations_amount", "Originations (CNY)"),
        *_PATHS,
        ("ecl", "ECL (CNY)"),
        ("net_income", "Net income (CNY)"),
    ):
        page.chart(
            line_chart(
                {m["summary"]["scenario"]: _series(m["monthly"], key) for m in metrics},
                label,
                "month",
            )
        )
    rows = [
        {
            "scenario": m["summary"]["scenario"],
            **dict(_flat_summary(m["summary"]).items()),
        }
        for m in metrics
    ]
    page.heading("Summaries").table(rows)
    return page.write(path)


def _flat_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("approval_rate", "originations_amount", "npl_ratio", "peak_npl_ratio", "dpd30_rate",
            "ecl", "net_income", "max_apr", "ledger_balanced")  # fmt: skip
    out = {k: summary.get(k) for k in keys}
    out["alerts"] = len(summary["alerts"])
    return out

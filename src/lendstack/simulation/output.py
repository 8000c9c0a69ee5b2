"""What a run leaves in its directory: metrics.json, Parquet tables and report.html.

metrics.json holds only figures the seed and scenario determine (no timestamps, decision ids
or paths), so the same seed and scenario give a byte-identical file. Money is CNY as floats
rounded to the fen: the figures are analytics; the exact books are in the run's database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, text

from lendstack.core.errors import LendstackError
from lendstack.simulation.runner import RunResult
from lendstack.storage.analytics import read_panel
from lendstack.underwriting.outcomes import auc


def _bad_loans(engine: Engine) -> dict[int, bool]:
    """loan id → ever 90+ DPD or charged off at a month-end of the run."""
    try:
        panel = read_panel(engine)
    except LendstackError:
        return {}
    per_loan = panel.group_by("loan_id").agg(
        ((pl.col("dpd") >= 90) | (pl.col("state") == "CO")).any().alias("bad")
    )
    return dict(zip(per_loan["loan_id"].to_list(), per_loan["bad"].to_list(), strict=True))


def _loans_frame(result: RunResult) -> pl.DataFrame:
    with result.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT l.id, l.product_id, l.status, l.principal_fen, l.annual_rate, l.term_months,"
                " l.disbursement_date, l.bal_principal, l.dpd, l.risk_class, l.charged_off_fen,"
                " l.closed_on, p.decision_id, p.channel, p.province, p.purpose, p.pd_origination,"
                " p.lead_funder_id FROM loans l LEFT JOIN loan_profiles p ON p.loan_id = l.id"
                " ORDER BY l.id"
            )
        ).all()
    names = ["loan_id", "product_id", "status", "principal_fen", "annual_rate", "term_months",
             "disbursement_date", "balance_fen", "dpd", "risk_class", "charged_off_fen",
             "closed_on", "decision_id", "channel", "province", "purpose", "pd_origination",
             "lead_funder_id"]  # fmt: skip
    frame = pl.DataFrame([dict(zip(names, r, strict=True)) for r in rows], infer_schema_length=None)
    if frame.is_empty():
        return frame
    frame = _dates(frame, "disbursement_date", "closed_on")
    bad = _bad_loans(result.engine)
    borrower = result.borrower_of
    latent = result.population.outcomes.latent_pd
    ids = frame["loan_id"].to_list()
    return frame.with_columns(
        pl.Series("borrower", [borrower.get(i) for i in ids]),
        pl.Series(
            "latent_pd", [float(latent[borrower[i]]) if i in borrower else None for i in ids]
        ),
        pl.Series("bad", [bool(bad.get(i, False)) for i in ids]),
    )


def _payments_frame(engine: Engine) -> pl.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, loan_id, kind, value_date, amount_fen, mode, status FROM payments"
                " ORDER BY id"
            )
        ).all()
    names = ["payment_id", "loan_id", "kind", "value_date", "amount_fen", "mode", "status"]
    frame = pl.DataFrame([dict(zip(names, r, strict=True)) for r in rows], infer_schema_length=None)
    return frame if frame.is_empty() else _dates(frame, "value_date")


def _dates(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """SQLite hands dates back as text: make them Parquet dates."""
    return frame.with_columns(
        pl.col(c).cast(pl.Utf8).str.slice(0, 10).str.to_date(strict=False) for c in columns
    )


def model_aucs(loans: pl.DataFrame) -> dict[str, float | None]:
    """The credit model's AUC on the run's booked loans next to the latent PD's (the ceiling)."""
    if loans.is_empty() or "bad" not in loans.columns:
        return {"model_auc": None, "latent_auc": None, "bad_loans": 0}
    scored = loans.filter(
        pl.col("pd_origination").is_not_null() & pl.col("latent_pd").is_not_null()
    )
    y = np.asarray(scored["bad"].to_list(), dtype=bool)

    def clean(v: float) -> float | None:
        return None if np.isnan(v) else round(v, 4)

    return {
        "model_auc": clean(auc(y, np.asarray(scored["pd_origination"].to_list()))),
        "latent_auc": clean(auc(y, np.asarray(scored["latent_pd"].to_list()))),
        "bad_loans": int(y.sum()),
    }


def summary(result: RunResult, aucs: dict[str, Any]) -> dict[str, Any]:
    months = result.months
    apps = sum(m.applications for m in months)
    approved = sum(m.approved for m in months)
    aprs = [m.max_apr for m in months if m.max_apr is not None]
    last = months[-1]
    return {
        "scenario": result.scenario.name,
        "borrowers": result.config.borrowers,
        "months": result.config.months,
        "seed": result.config.seed,
        "start": result.config.start.isoformat(),
        "applications": apps,
        "approval_rate": round(approved / apps, 6) if apps else 0.0,
        "loans_booked": sum(m.booked for m in months),
        "originations_amount": round(sum(m.originations_amount for m in months), 2),
        "npl_ratio": last.npl_ratio,
        "peak_npl_ratio": max(m.npl_ratio for m in months),
        "dpd30_rate": last.dpd30_rate,
        "dpd90_rate": last.dpd90_rate,
        "ecl": last.ecl,
        "net_income": round(sum(m.net_income for m in months), 2),
        "charged_off": round(sum(m.charged_off for m in months), 2),
        "funds_flags": sum(m.funds_flags for m in months),
        "npl_sold_loans": sum(m.npl_sold_loans for m in months),
        "npl_sale_proceeds": round(sum(m.npl_sale_price for m in months), 2),
        "alerts": [{"month": m.month, "alert": a} for m in months for a in m.alerts],
        "max_apr": max(aprs) if aprs else None,
        "ledger_balanced": all(m.ledger_balanced for m in months),
        "unbooked": dict(sorted(result.unbooked.items())),
        "events": [{"month": m.month, "event": e} for m in months for e in m.events],
        **aucs,
    }


def write_outputs(result: RunResult) -> dict[str, Any]:
    """Write every output into the run directory; returns metrics.json's content."""
    out = result.out
    loans = _loans_frame(result)
    tables = {
        "applications": pl.DataFrame(result.tables.applications, infer_schema_length=None),
        "decisions": pl.DataFrame(result.tables.decisions, infer_schema_length=None),
        "loans": loans,
        "payments": _payments_frame(result.engine),
        "monthly_snapshots": pl.DataFrame(
            [_flat(m.as_json()) for m in result.months], infer_schema_length=None
        ),
    }
    for name, frame in tables.items():
        frame.write_parquet(out / f"{name}.parquet")
    metrics = {
        "monthly": [m.as_json() for m in result.months],
        "summary": summary(result, model_aucs(loans)),
    }
    (out / "metrics.json").write_text(
        json.dumps(metrics, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )
    return metrics


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """A monthly record with its nested parts as JSON text (one Parquet row per month)."""
    return {
        k: json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v
        for k, v in record.items()
    }


def comparison(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Summaries side by side, keyed by scenario (for a multi-scenario run's compare.json)."""
    return {m["summary"]["scenario"]: m["summary"] for m in results}

"""The quarter-end NPL sale: bad loans leave the book through the real pilot code."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from lendstack.simulation import RunConfig, parse_scenario, simulate_run

BAD_MARKET = """
name = "bad-market"
[behaviour]
miss_scale = 20.0   # many borrowers stop paying, so month 6 has substandard loans to sell
cure_rate = 0.0
"""


def test_quarter_end_sale_takes_bad_loans_off_the_book(tmp_path: Path) -> None:
    out = tmp_path / "run"
    metrics = simulate_run(parse_scenario(BAD_MARKET), RunConfig(borrowers=400, months=6), out)
    summary = metrics["summary"]
    sold = summary["npl_sold_loans"]
    assert sold > 0, summary["events"]
    assert [e["month"] for e in summary["events"] if "NPL sale" in e["event"]] in ([3, 6], [6])
    assert summary["ledger_balanced"] is True
    loans = pl.read_parquet(out / "loans.parquet")
    assert loans.filter(pl.col("status") == "sold").height == sold
    proceeds = summary["npl_sale_proceeds"]
    claims = loans.filter(pl.col("status") == "sold")["principal_fen"].sum() / 100
    assert 0 < proceeds < claims  # bad debt sells at a fraction of its principal


def test_a_run_past_the_pilots_end_still_sells_at_its_last_quarter_end(tmp_path: Path) -> None:
    """The last quarter's sale is booked on the open date after the run's end, which for a run
    ending on the pilot's last day (2026-12-31) lies outside the pilot's own window."""
    config = RunConfig(borrowers=300, months=3, start=date(2026, 10, 1))
    metrics = simulate_run(parse_scenario(BAD_MARKET), config, tmp_path / "late")
    assert len(metrics["monthly"]) == 3
    assert metrics["summary"]["ledger_balanced"] is True

"""The issue's acceptance checks, each against the baseline run with the same seed.

Slow (three 1,500-borrower × 11-month runs and two 8,000 × 12 through the full engine), so
marked `slow`. Easy approvals against the baseline needs the larger book: with collections in
the loop, a 1,500-borrower book holds a handful of bad loans either way, and its later NPL
ratio can come out either side of the baseline's (docs/simulation.md).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lendstack.simulation import RunConfig, load_scenario, simulate_run

pytestmark = pytest.mark.slow

CONFIG = RunConfig(borrowers=1_500, months=11, seed=7)
LARGE = RunConfig(borrowers=8_000, months=12, seed=7)
SPIKES = ("vintage_mob3", "fpd_rate", "fpd_vs_trailing", "roll_m1_m2", "npl_ratio")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], Path]]:
    base = tmp_path_factory.mktemp("acceptance")
    out = {}
    for name in ("baseline", "tighter-caps", "gold-crash"):
        out[name] = (simulate_run(load_scenario(name), CONFIG, base / name), base / name)
    for name in ("baseline", "easy-approvals"):
        where = base / f"{name}-large"
        out[f"{name}-large"] = (simulate_run(load_scenario(name), LARGE, where), where)
    return out


def _later(metrics: dict[str, Any], key: str, from_month: int) -> float:
    values = [m[key] for m in metrics["monthly"] if m["month"] >= from_month]
    return sum(values) / len(values)


def test_easy_approvals_originate_more_and_default_more(runs: dict[str, Any]) -> None:
    base, easy = runs["baseline-large"][0], runs["easy-approvals-large"][0]
    assert easy["summary"]["originations_amount"] > base["summary"]["originations_amount"]
    assert easy["summary"]["approval_rate"] > base["summary"]["approval_rate"]
    assert _later(easy, "npl_ratio", 7) > _later(base, "npl_ratio", 7)


def test_tighter_caps_never_book_above_20_percent_after_month_6(runs: dict[str, Any]) -> None:
    metrics, where = runs["tighter-caps"]
    effective = date(2026, 3, 1)  # month 6 of a run starting 2025-10-01
    decisions = pl.read_parquet(where / "decisions.parquet").filter(
        pl.col("outcome").is_in(["APPROVE", "COUNTER_OFFER"])
    )
    dated = decisions.with_columns(pl.col("application_date").str.to_date())
    after = dated.filter(pl.col("application_date") >= effective)
    before = dated.filter(pl.col("application_date") < effective)
    assert after.height > 0
    assert after["apr_irr"].cast(pl.Float64).max() <= 0.20
    assert before["apr_irr"].cast(pl.Float64).max() > 0.20  # the cap binds: it was exceeded before
    assert all(
        m["max_apr"] is None or m["max_apr"] <= 0.20 for m in metrics["monthly"] if m["month"] >= 6
    )
    loans = pl.read_parquet(where / "loans.parquet").filter(
        pl.col("disbursement_date") >= effective
    )
    assert loans.height > 0
    assert (loans["principal_fen"] <= 100_000 * 100).all()


def test_gold_crash_raises_a_default_spike_alert(runs: dict[str, Any]) -> None:
    gold, base = runs["gold-crash"][0], runs["baseline"][0]

    def spikes(metrics: dict[str, Any]) -> set[tuple[int, str]]:
        return {(a["month"], a["alert"]) for a in metrics["summary"]["alerts"]
                if a["month"] >= 9 and a["alert"].split(":")[0] in SPIKES}  # fmt: skip

    assert spikes(gold) - spikes(base), gold["summary"]["alerts"]
    assert _later(gold, "dpd30_rate", 10) > _later(base, "dpd30_rate", 10)


def test_diverted_loans_are_caught_by_the_surveillance(runs: dict[str, Any]) -> None:
    gold = runs["gold-crash"][0]
    assert gold["summary"]["funds_flags"] > 0
    assert any(a["alert"] == "use_of_funds:flagged" for a in gold["summary"]["alerts"])


def test_every_run_keeps_the_books_balanced(runs: dict[str, Any]) -> None:
    for metrics, _ in runs.values():
        assert metrics["summary"]["ledger_balanced"] is True

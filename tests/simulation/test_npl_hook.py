"""The quarter-end NPL sale: bad loans leave the book through the real pilot code."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from cli_runner import runner
from lendstack.collections.npl_tape import age_band
from lendstack.core.dates import add_months
from lendstack.simulation import RunConfig, parse_scenario, simulate_run
from lendstack.underwriting.identity import age_on
from lendstack.underwriting.population import PopulationConfig, generate_population

# One worker builds the module's shared fixture (xdist would build it on each).
pytestmark = pytest.mark.xdist_group("npl-hook-run")

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


UNSOLD = RunConfig(borrowers=400, months=6, npl_sale=False)


@pytest.fixture(scope="module")
def unsold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bad market's run without NPL sales: the bad loans are still on the book."""
    out = tmp_path_factory.mktemp("unsold") / "run"
    simulate_run(parse_scenario(BAD_MARKET), UNSOLD, out)
    return out


def test_partner_exposure_follows_the_positions_after_a_guarantee_payout(
    unsold: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A guarantee payout moves a bank's stake to the platform (an `acquired` flow), so a
    bank's exposure is no longer its plan share of the balance; the last month-end's exposure
    is still `lendstack funding exposure`'s, to the fen."""
    with sqlite3.connect(unsold / "lendstack.db") as db:
        acquired = db.execute("SELECT COUNT(*) FROM funder_flows WHERE flow = 'acquired'")
        assert acquired.fetchone()[0] > 0
    last = json.loads((unsold / "metrics.json").read_text(encoding="utf-8"))["monthly"][-1]
    shown = runner(f"sqlite:///{unsold / 'lendstack.db'}", capsys)("funding", "exposure",
                                                                    "--format", "json")  # fmt: skip
    assert shown.exit_code == 0, shown.output
    banks = {p["id"]: Decimal(p["balance"]) for p in shown.json()["partners"]}
    assert {f: Decimal(str(v)) for f, v in last["partner_exposure"].items() if f in banks} == banks


def test_a_package_of_the_run_tapes_each_borrowers_age_band(
    unsold: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Packaged with the run's PII key, the tape's age band is each borrower's age on the
    package date, from the resident ID sealed in the loan's decision; another key is refused
    (naming `pii_key`) and packages nothing."""
    out, config = unsold, UNSOLD
    cli = runner(f"sqlite:///{out / 'lendstack.db'}", capsys)
    day = add_months(config.start, config.months) - timedelta(days=1)  # the last closed date
    args = ("npl", "package", "--date", day.isoformat(), "--name", "late", "--out",
            str(tmp_path / "tape"), "--format", "json")  # fmt: skip
    monkeypatch.setenv("LENDSTACK_PII_KEY", base64.b64encode(bytes(range(32))).decode())
    refused = cli(*args)
    assert refused.exit_code != 0
    assert "pii_key" in refused.output
    monkeypatch.delenv("LENDSTACK_PII_KEY")
    monkeypatch.setenv("LENDSTACK_PII_KEY_FILE", str(out / "lendstack-pii.key"))
    done = cli(*args)  # the name is free: the refused package kept nothing
    assert done.exit_code == 0, done.output
    assert "age_band" not in {m["field"] for m in done.json()["completeness"]["missing"]}
    tape = pl.read_parquet(tmp_path / "tape" / "late.tape.parquet")
    borrowers = pl.read_parquet(out / "loans.parquet").select("loan_id", "borrower")
    rids = generate_population(
        PopulationConfig(
            seed=config.seed, n=config.borrowers, start=config.start, months=config.months
        )
    ).columns["resident_id"]
    rows = tape.join(borrowers, on="loan_id").select("age_band", "borrower").rows()
    assert rows
    assert [band for band, _ in rows] == [age_band(age_on(rids[b], day)) for _, b in rows]

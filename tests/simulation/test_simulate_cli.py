"""`lendstack simulate` end to end on a small population: outputs, books, determinism, errors."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cli_runner import Run, runner
from lendstack.cli.main import main
from lendstack.core.errors import Conflict
from lendstack.funding import NO_CAPACITY
from lendstack.simulation import RunConfig, load_scenario, simulate_run
from lendstack.simulation import runner as runner_module

# One worker builds the module's shared fixture (xdist would build it on each).
pytestmark = pytest.mark.xdist_group("simulate-cli-run")

MONTHLY_KEYS = {"approval_rate", "originations_amount", "npl_ratio", "dpd30_rate", "ecl",
                "net_income", "alerts", "max_apr", "ledger_balanced"}  # fmt: skip


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 300-borrower, 3-month baseline run shared by the checks below."""
    out = tmp_path_factory.mktemp("sim") / "run"
    args = ["--borrowers", "300", "--months", "3", "--out", str(out), "--format", "json"]
    main(["simulate", *args])  # a failure raises SystemExit and errors the fixture
    return out


def test_outputs_are_written(small_run: Path) -> None:
    for name in ("metrics.json", "report.html", "lendstack.db", "applications.parquet",
                 "decisions.parquet", "loans.parquet", "payments.parquet",
                 "monthly_snapshots.parquet"):  # fmt: skip
        assert (small_run / name).stat().st_size > 0, name
    html = (small_run / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 5  # charts are inline
    assert "src=" not in html
    assert "<link" not in html


def test_metrics_agree_with_the_tables(small_run: Path) -> None:
    metrics = json.loads((small_run / "metrics.json").read_text(encoding="utf-8"))
    assert len(metrics["monthly"]) == 3
    for month in metrics["monthly"]:
        assert set(month) >= MONTHLY_KEYS
        assert month["ledger_balanced"] is True
        assert month["max_apr"] is None or month["max_apr"] <= 0.24
    summary = metrics["summary"]
    assert set(summary) >= MONTHLY_KEYS
    assert summary["ledger_balanced"] is True
    decisions = pl.read_parquet(small_run / "decisions.parquet")
    loans = pl.read_parquet(small_run / "loans.parquet")
    granted = decisions.filter(pl.col("outcome").is_in(["APPROVE", "COUNTER_OFFER"])).height
    assert summary["applications"] == decisions.height > 0
    assert summary["approval_rate"] == pytest.approx(granted / decisions.height, abs=1e-6)
    assert summary["loans_booked"] == loans.height == granted - sum(summary["unbooked"].values())
    assert summary["originations_amount"] == pytest.approx(loans["principal_fen"].sum() / 100)
    payments = pl.read_parquet(small_run / "payments.parquet")
    assert payments.height > 0
    assert set(payments["loan_id"].to_list()) <= set(loans["loan_id"].to_list())


def test_other_commands_work_on_the_run_database(
    small_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run: Run = runner(f"sqlite:///{small_run / 'lendstack.db'}", capsys)
    checked = run("ledger", "check")
    assert checked.exit_code == 0, checked.output
    assert "reconcile" in checked.output


def test_partner_exposure_is_the_funding_sub_ledger_to_the_fen(
    small_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last month-end's exposure per bank is `lendstack funding exposure`'s balance on the
    run's database (the funders' positions), not a share of the loans' balance."""
    last = json.loads((small_run / "metrics.json").read_text(encoding="utf-8"))["monthly"][-1]
    run: Run = runner(f"sqlite:///{small_run / 'lendstack.db'}", capsys)
    shown = run("funding", "exposure", "--format", "json")
    assert shown.exit_code == 0, shown.output
    banks = {p["id"]: Decimal(p["balance"]) for p in shown.json()["partners"]}
    assert banks
    assert {f: Decimal(str(v)) for f, v in last["partner_exposure"].items() if f in banks} == banks
    assert sum(Decimal(str(v)) for v in last["partner_exposure"].values()) == Decimal(
        str(last["balance"])
    )


def test_a_day_refused_under_the_funders_lock_is_booked_loan_by_loan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan refused under the funders' lock fails its whole day's batch; the run then books
    that day's loans one at a time, so every loan the batch would have booked still is."""
    config = RunConfig(borrowers=300, months=3)
    expected = simulate_run(load_scenario("baseline"), config, tmp_path / "batched")
    real, refused = runner_module.book_bookables, []

    def refusing_batches(uow: Any, catalog: Any, ready: Any, desk: Any) -> Any:
        if len(ready) > 1:
            refused.append(len(ready))
            raise Conflict(f"{NO_CAPACITY} (big-state-bank: under the lock)", field="funding")
        return real(uow, catalog, ready, desk)

    monkeypatch.setattr(runner_module, "book_bookables", refusing_batches)
    assert simulate_run(load_scenario("baseline"), config, tmp_path / "singly") == expected
    assert refused


def test_same_seed_same_metrics_other_seed_differs(tmp_path: Path, cli: Run) -> None:
    def metrics(name: str, seed: str) -> bytes:
        result = cli("simulate", "--borrowers", "300", "--months", "3", "--seed", seed,
                     "--out", str(tmp_path / name), "--format", "json")  # fmt: skip
        assert result.exit_code == 0, result.output
        return (tmp_path / name / "metrics.json").read_bytes()

    first = metrics("a", "11")
    assert metrics("b", "11") == first
    assert metrics("c", "12") != first


def test_scenarios_side_by_side_equal_runs_made_alone(tmp_path: Path, cli: Run) -> None:
    """`--jobs 2` runs the comparison in two processes; each run's metrics are byte for byte
    those of the same scenario run alone in this process, and the comparison is written."""
    names = ("baseline", "gold-crash")
    args = [arg for name in names for arg in ("--scenario", name)]
    result = cli("simulate", *args, "--borrowers", "300", "--months", "3", "--jobs", "2",
                 "--out", str(tmp_path / "both"), "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    config = RunConfig(borrowers=300, months=3)
    for name in names:
        simulate_run(load_scenario(name), config, tmp_path / "alone" / name)
        alone = (tmp_path / "alone" / name / "metrics.json").read_bytes()
        assert (tmp_path / "both" / name / "metrics.json").read_bytes() == alone
    compared = json.loads((tmp_path / "both" / "compare.json").read_text(encoding="utf-8"))
    assert set(compared) == set(names)
    assert (tmp_path / "both" / "compare.html").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--scenario", "no-such-scenario"], "scenario"),
        (["--start", "2025-10-15"], "start"),
        (["--start", "someday"], "start"),
        (["--borrowers", "0"], "borrowers"),
        (["--months", "0"], "months"),
        (["--scenario", "baseline", "--scenario", "baseline"], "scenario"),
        (["--scenario", "baseline", "--scenario", "gold-crash", "--jobs", "0"], "jobs"),
    ],
)
def test_bad_input_names_the_field(tmp_path: Path, cli: Run, args: list[str], field: str) -> None:
    result = cli("simulate", "--out", str(tmp_path / "x"), *args)
    assert result.exit_code != 0
    assert field in result.output
    assert not (tmp_path / "x").exists()  # refused before anything is written


def test_owed_sql_matches_the_domain(small_run: Path) -> None:
    """The one-statement 'what is owed today' equals `owed_by_component` loan by loan."""
    from datetime import timedelta

    from sqlalchemy import text

    from lendstack.core.money import ZERO, from_fen
    from lendstack.servicing.domain.payments import owed_by_component
    from lendstack.simulation.repayments import OWED_SQL
    from lendstack.storage.db import make_engine
    from lendstack.storage.mapping import to_day
    from lendstack.storage.repositories import SqlUnitOfWork

    engine = make_engine(f"sqlite:///{small_run / 'lendstack.db'}")
    with engine.connect() as conn:
        last = conn.execute(text("SELECT MAX(business_date) FROM cob_steps")).scalar()
        day = date.fromisoformat(str(last)[:10]) + timedelta(days=1)
        rows = conn.execute(text(OWED_SQL), {"d": to_day(day)}).all()
    assert rows  # loans in arrears or billed and unpaid exist at the end of the run
    with SqlUnitOfWork(engine) as uow:
        for loan_id, _, owed_fen in rows:
            owed = sum(owed_by_component(uow.loans.get(loan_id), day).values(), ZERO)
            assert from_fen(int(owed_fen)) == owed, loan_id
    engine.dispose()

"""`lendstack risk ecl` and `lendstack risk stress` over a real book, on SQLite and PostgreSQL:
the JSON, staging by DPD, posting the allowance once per date, the refusals that write nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from cli_runner import Result, Run
from lendstack.servicing import ProductCatalog
from lendstack.servicing.domain.ledger import Account
from lendstack.storage.ecl_runs import ecl_inputs, run_ecl
from lendstack.storage.reports import reconcile, trial_balance
from lendstack.storage.schema import ecl_run_loans, ecl_runs, journal_entries
from risk.ecl_book import AS_OF, BOOKED, book, close, pay_installment, three_loans

ALLOWANCE, EXPENSE = "1309", "6702"
SHIPPED = (resources.files("lendstack.risk") / "ecl_config" / "default.toml").read_text("utf-8")


def ecl(cli: Run, day: date, *extra: str) -> Result:
    return cli("risk", "ecl", "--date", day.isoformat(), "--format", "json", *extra)


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def allowance_entries(engine: Engine) -> list[dict[str, Any]]:
    """Each ECL entry: its reference and net debit per account, in posting order."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.id, e.reference, l.account, l.debit_fen - l.credit_fen"
                " FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id"
                " WHERE e.event = 'ecl_allowance' ORDER BY e.id, l.account"
            )
        ).all()
    entries: dict[int, dict[str, Any]] = {}
    for entry_id, reference, account, net in rows:
        entries.setdefault(entry_id, {"reference": reference})[account] = int(net)
    return list(entries.values())


def gl_allowance(engine: Engine) -> Decimal:
    with engine.connect() as conn:
        return trial_balance(conn).balance(Account.ALLOWANCE)


def writes(engine: Engine) -> tuple[int, int, int]:
    return count(engine, ecl_runs), count(engine, ecl_run_loans), count(engine, journal_entries)


def test_the_allowance_by_stage_posted_once_per_date(
    cli: Run, engine: Engine, catalog: ProductCatalog
) -> None:
    loans = three_loans(engine, catalog)
    first = ecl(cli, AS_OF)
    assert first.exit_code == 0, first.output
    data = first.json()
    assert {"total", "by_stage", "causes", "scenarios", "roll_forward", "run"} <= set(data)
    total = Decimal(data["total"])
    stages = data["by_stage"]
    assert sorted(stages) == ["1", "2", "3"]
    assert sum(Decimal(s["amount"]) for s in stages.values()) == total > 0
    assert all(s["amount"] == f"{Decimal(s['amount']):.2f}" for s in stages.values())
    assert [stages[k]["loans"] for k in ("1", "2", "3")] == [1, 1, 1]
    assert data["causes"]["S2_DPD"] == 1
    assert data["causes"]["S3_DPD"] == 1  # 99 DPD; also non-accrual, so S3_DEFAULT
    assert data["roll_forward"] is None
    assert data["posting"] is None
    with engine.connect() as conn:
        staged = dict(conn.execute(select(ecl_run_loans.c.loan_id, ecl_run_loans.c.stage)).all())
    assert staged == {loans.current.id: 1, loans.late.id: 2, loans.defaulted.id: 3}
    assert allowance_entries(engine) == []

    posted = ecl(cli, AS_OF, "--post")
    assert posted.exit_code == 0, posted.output
    assert posted.json()["total"] == data["total"]
    assert posted.json()["posting"]["status"] == "posted"
    fen = int(total * 100)
    reference = f"ecl:{AS_OF.isoformat()}"
    assert allowance_entries(engine) == [{"reference": reference, EXPENSE: fen, ALLOWANCE: -fen}]
    assert gl_allowance(engine) == total
    with engine.connect() as conn:
        assert trial_balance(conn).balanced
        assert reconcile(conn) == []
    assert cli("ledger", "check").exit_code == 0

    again = ecl(cli, AS_OF, "--post")
    assert again.exit_code == 0, again.output
    assert again.json()["run"] == {"id": data["run"]["id"], "reused": True, "posted": True}
    assert again.json()["posting"]["status"] == "already posted"
    assert len(allowance_entries(engine)) == 1

    later = AS_OF + timedelta(days=25)  # 65 and 124 DPD; the current loan pays on Jun 6
    pay_installment(engine, loans.current, 5)
    close(engine, later)
    second = ecl(cli, later, "--post")
    assert second.exit_code == 0, second.output
    now = second.json()
    change = Decimal(now["total"]) - total
    assert Decimal(now["posting"]["change"]) == change != 0
    *_, entry = allowance_entries(engine)
    side = 1 if change > 0 else -1  # a build debits expense; a release debits the allowance
    step = int(abs(change) * 100)
    assert entry == {"reference": f"ecl:{later}", EXPENSE: side * step, ALLOWANCE: -side * step}
    assert gl_allowance(engine) == Decimal(now["total"])
    movements = now["roll_forward"]["movements"]
    assert Decimal(movements["opening"]["total"]) == total
    assert Decimal(movements["closing"]["total"]) == Decimal(now["total"])
    assert cli("ledger", "check").exit_code == 0

    table = cli("risk", "ecl", "--date", later.isoformat())
    assert table.exit_code == 0
    assert "by stage" in table.stdout
    assert "roll-forward" in table.stdout


@pytest.fixture
def small_book(engine: Engine, catalog: ProductCatalog) -> date:
    """One loan paying on time, one stopping after the first installment; 33 DPD at the end."""
    paying, stopping = book(engine, catalog), book(engine, catalog)
    for loan in (paying, stopping):
        pay_installment(engine, loan, 1)
    pay_installment(engine, paying, 2)
    day = date(2026, 4, 7)
    close(engine, day)
    return day


def test_a_posted_date_is_not_posted_again_with_other_figures(
    cli: Run, engine: Engine, small_book: date, tmp_path: Path
) -> None:
    day = small_book
    assert ecl(cli, day, "--post").exit_code == 0
    before = writes(engine)
    lower = tmp_path / "lower-lgd.toml"
    lower.write_text(SHIPPED.replace("default = 0.85", "default = 0.5").replace(
        '"cash-loan-installment" = 0.85', '"cash-loan-installment" = 0.5'), encoding="utf-8")  # fmt: skip
    refused = ecl(cli, day, "--post", "--config", str(lower))
    assert refused.exit_code == 4
    assert "later" in refused.output
    assert writes(engine) == before
    measured = ecl(cli, day, "--config", str(lower))  # measuring without posting is fine
    assert measured.exit_code == 0, measured.output
    assert measured.json()["run"]["posted"] is False
    assert Decimal(measured.json()["total"]) < Decimal(ecl(cli, day).json()["total"])
    earlier = ecl(cli, day - timedelta(days=1))
    assert earlier.exit_code == 4
    assert "last closed date" in earlier.output


def test_dates_not_closed_are_refused_and_nothing_is_written(
    cli: Run, engine: Engine, catalog: ProductCatalog
) -> None:
    book(engine, catalog)
    nothing = ecl(cli, BOOKED, "--post")
    assert nothing.exit_code == 4
    assert "no business date has been closed" in nothing.output
    close(engine, BOOKED + timedelta(days=10))
    before = writes(engine)
    ahead = ecl(cli, BOOKED + timedelta(days=11), "--post")
    assert ahead.exit_code == 4
    assert "date: " in ahead.output
    assert "not a closed business date" in ahead.output
    assert writes(engine) == before
    assert count(engine, ecl_runs) == 0


def stress(cli: Run, scenario: str, *extra: str) -> Result:
    return cli("risk", "stress", "--scenario", scenario, "--format", "json", *extra)


def test_stress_losses_rise_with_severity_and_nothing_is_written(
    cli: Run, engine: Engine, small_book: date
) -> None:
    before = writes(engine)
    runs = {s: stress(cli, s, "--capital", "5000") for s in ("base", "adverse", "severe")}
    assert all(r.exit_code == 0 for r in runs.values()), [r.output for r in runs.values()]
    data = {s: r.json() for s, r in runs.items()}
    assert data["base"]["as_of"] == small_book.isoformat()
    assert [len(d["quarters"]) for d in data.values()] == [10, 10, 10]
    losses = [Decimal(data[s]["cumulative_losses"]) for s in ("base", "adverse", "severe")]
    assert 0 < losses[0] <= losses[1] <= losses[2]
    peaks = [Decimal(data[s]["peak_ecl"]) for s in ("base", "adverse", "severe")]
    assert peaks[0] <= peaks[1] <= peaks[2]
    assert data["base"]["capital"] == "5000.00"
    (segment,) = data["base"]["segments"]
    assert segment["count"] == 2
    table = cli("risk", "stress", "--scenario", "severe")
    assert table.exit_code == 0
    assert "quarter path" in table.stdout
    defaulted = cli("risk", "stress", "--scenario", "base", "--format", "json").json()
    assert defaulted["capital_source"].startswith("10.5 %")
    assert writes(engine) == before


SCENARIO = """
id = "custom"
name = "Custom"
{quarters}
"""


def scenario_file(tmp_path: Path, quarters: dict[int, Any]) -> str:
    blocks = "\n".join(
        f"[[quarters]]\nquarter = {q}\nunemployment = {u}\nincome_shock = 0.0\n"
        for q, u in quarters.items()
    )
    path = tmp_path / "custom.toml"
    path.write_text(SCENARIO.format(quarters=blocks), encoding="utf-8")
    return str(path)


def test_bad_inputs_exit_2_naming_the_field_and_write_nothing(
    cli: Run, engine: Engine, small_book: date, tmp_path: Path
) -> None:
    before = writes(engine)
    full: dict[int, Any] = dict.fromkeys(range(1, 10), 6.0)
    missing = stress(cli, scenario_file(tmp_path, {q: u for q, u in full.items() if q != 4}))
    assert missing.exit_code == 2
    assert "quarters[4]" in missing.output
    assert stress(cli, scenario_file(tmp_path, full)).exit_code == 0
    text_value = stress(cli, scenario_file(tmp_path, {**full, 2: '"high"'}))
    assert text_value.exit_code == 2
    assert "quarters[2].unemployment" in text_value.output
    capital = stress(cli, "base", "--capital", "lots")
    assert capital.exit_code == 2
    assert "capital" in capital.output
    assert stress(cli, "no-such-scenario").exit_code == 3
    config = tmp_path / "bad.toml"
    for old, new, field in (
        ("sicr_dpd_over = 30", 'sicr_dpd_over = "thirty"', "staging.sicr_dpd_over"),
        ("pd_ratio = 2.0", 'pd_ratio = "double"', "staging.pd_ratio"),
        ('"M2" = 0.45', '"M2" = "high"', "pd.buckets.M2"),
    ):
        config.write_text(SHIPPED.replace(old, new), encoding="utf-8")
        bad = ecl(cli, small_book, "--post", "--config", str(config))
        assert bad.exit_code == 2, bad.output
        assert field in bad.output
    matrix = tmp_path / "matrix.json"
    matrix.write_text(json.dumps({"states": ["M0", "D"], "matrix": [[0.5, 0.4], [0, 1]]}))
    bad_matrix = ecl(cli, small_book, "--post", "--matrix", str(matrix))
    assert bad_matrix.exit_code == 2
    assert "matrix" in bad_matrix.output
    assert writes(engine) == before


def test_a_transition_matrix_gives_the_pd_term_structure(
    cli: Run, engine: Engine, small_book: date, tmp_path: Path
) -> None:
    states = ["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7+", "D"]
    rows = []
    for i, _ in enumerate(states[:-1]):
        row = [0.0] * len(states)
        cure = 0.0 if i == 0 else 0.2
        roll = 0.03 if i == 0 else 0.5
        row[0] += cure
        row[i + 1] += roll  # M7+ rolls into D
        row[i] += 1.0 - cure - roll
        rows.append(row)
    rows.append([0.0] * (len(states) - 1) + [1.0])
    matrix = tmp_path / "matrix.json"
    matrix.write_text(json.dumps({"states": states, "matrix": rows, "default_state": "D"}))
    result = ecl(cli, small_book, "--matrix", str(matrix))
    assert result.exit_code == 0, result.output
    data = result.json()
    assert data["inputs"]["pd_term_structure"] == "transition matrix"
    assert sum(Decimal(s["amount"]) for s in data["by_stage"].values()) == Decimal(data["total"])
    assert data["by_stage"]["2"]["loans"] == 1  # 33 DPD
    model = ecl(cli, small_book).json()
    assert model["run"]["id"] != data["run"]["id"]  # another input, another run


def test_a_run_without_its_roll_forward_is_the_same_run(
    engine: Engine, catalog: ProductCatalog
) -> None:
    """`explain=False` (the simulator's month-ends) stores and posts the same run; only the
    roll-forward from the previous run is left out of the outcome."""
    loan = book(engine, catalog)
    first = date(2026, 1, 31)
    close(engine, first)
    run_ecl(engine, first, ecl_inputs(), post=True)
    pay_installment(engine, loan, 1)
    day = date(2026, 2, 28)
    close(engine, day)
    quiet = run_ecl(engine, day, ecl_inputs(), post=True, explain=False)
    assert quiet.roll_forward is None
    assert not quiet.reused
    full = run_ecl(engine, day, ecl_inputs(), post=True)
    assert full.reused
    assert full.run == quiet.run
    assert full.roll_forward is not None
    with engine.connect() as conn:
        assert reconcile(conn) == []

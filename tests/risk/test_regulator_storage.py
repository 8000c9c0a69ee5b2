"""`lendstack report regulator` over a book serviced by the real services and close.

The panel book (seven loans with a story each, `panel_book`) is closed through April; on
1 May three more loans are booked, two co-funded (one with the platform's own share below the
30 % floor) and one short bullet whose upfront fee puts its APR far above 24 %. May is closed
and reported. Expectations are read from the book itself (loan rows, funder positions, journal
lines, schedules through `Schedule.apr`), never from the report's own code.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, text

from cli_runner import runner
from lendstack.servicing import LoanRequest, book_loan
from lendstack.servicing.domain.schedule import generate
from lendstack.servicing.ports import LoanProfile, PlanTerms
from lendstack.servicing.services import get_loan
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from risk.panel_book import build_book, catalog_with_fast_charge_off

APRIL, MAY = date(2026, 4, 30), date(2026, 5, 31)


def _book(engine: Engine, catalog: Any, product: str, amount: str, term: int, rate: str,
          shares: dict[str, str] | None, province: str, **extra: Any) -> int:  # fmt: skip
    request = LoanRequest(product, Decimal(amount), term, Decimal(rate), date(2026, 5, 1), **extra)
    fund = None
    if shares:
        plan = PlanTerms({k: Decimal(v) for k, v in shares.items()})
        fund = lambda: plan  # noqa: E731
    profile = LoanProfile("app", province, "consumption")
    return book_loan(SqlUnitOfWork(engine), catalog, request, fund=fund, profile=profile).id


@pytest.fixture
def may(engine: Engine, tmp_path: Path) -> dict[str, Any]:
    catalog = catalog_with_fast_charge_off(tmp_path / "products")
    book = build_book(engine, catalog, APRIL)
    SqlFunding(engine).import_builtin()
    cash = "cash-loan-installment"
    ids = {
        "cofunded": _book(engine, catalog, cash, "10000.00", 6, "0.18",
                          {"platform": "0.3000", "big-state-bank": "0.7000"}, "Beijing"),
        "low_share": _book(engine, catalog, cash, "20000.00", 6, "0.12",
                           {"platform": "0.2000", "harbour-joint-stock": "0.8000"}, "Zhejiang"),
        "bullet": _book(engine, catalog, "short-term-bullet", "5000.00", 1, "0.24", None,
                        "Guangdong", upfront_fee_rate=Decimal("0.01")),
    }  # fmt: skip
    book.close(MAY)
    return {"engine": engine, "book": book, "ids": {**book.ids, **ids}}


def _run(engine: Engine, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    return runner(str(engine.url.render_as_string(hide_password=False)), capsys)(*args)


def _work(tmp_path: Path) -> Path:
    """An empty directory for reports (the database lives in tmp_path itself)."""
    work = tmp_path / "work"
    work.mkdir()
    return work


def _scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_report_figures_match_the_book(
    may: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = may["engine"]
    work = _work(tmp_path)
    out = work / "report"
    result = _run(engine, capsys, "report", "regulator", "--month", "2026-05", "--out", str(out),
                  "--no-monitoring", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = result.json()
    tables, summary = doc["tables"], doc["summary"]

    # balances: every dimension partitions the active loans' principal, which the ledger holds
    active = _scalar(engine, "SELECT SUM(bal_principal) FROM loans WHERE status = 'active'")
    ledger = _scalar(engine, "SELECT SUM(debit_fen) - SUM(credit_fen) FROM journal_lines "
                             "WHERE account = '1301'")  # fmt: skip
    assert active == ledger
    total = Decimal(active) / 100
    assert Decimal(summary["balance"]) == total
    assert summary["reconciled"] is True
    rows = tables["balances"]
    for dim in ("product", "province", "channel", "lender_type", "partner"):
        assert sum(Decimal(r["balance"]) for r in rows if r["dimension"] == dim) == total, dim

    # partner balances: the funder positions, and the platform alone for unplanned loans
    partners = {r["value"]: Decimal(r["balance"]) for r in rows if r["dimension"] == "partner"}
    bank = _scalar(engine, "SELECT principal_fen FROM funder_positions WHERE funder_id = "
                           "'big-state-bank'")  # fmt: skip
    assert partners["big-state-bank"] == Decimal(bank) / 100
    lender = {r["value"]: r for r in rows if r["dimension"] == "lender_type"}
    assert set(lender) == {"platform", "state_owned", "joint_stock"}

    # originations: the three May loans, 35,000.00 in all
    assert summary["originated_loans"] == 3
    assert Decimal(summary["originated_amount"]) == Decimal("35000.00")

    # APR: the bullet's 1 % upfront fee over one month is far above 24 %, and it alone is listed
    above = tables["apr_above_cap"]
    assert [r["loan_id"] for r in above] == [may["ids"]["bullet"]]
    bullet = get_loan(SqlUnitOfWork(engine), may["ids"]["bullet"])
    assert Decimal(above[0]["apr"]) == generate(bullet.contract.terms()).apr().apr_irr
    assert summary["apr_above_cap"] == 1
    exact = [
        float(generate(get_loan(SqlUnitOfWork(engine), i).contract.terms()).apr().apr_irr)
        for i in may["ids"].values()
        if _scalar(engine, "SELECT status FROM loans WHERE id = :i", i=i) == "active"
    ]
    assert tables["apr_summary"][0]["max"] == pytest.approx(max(exact), abs=1e-9)

    # co-lending: the 20 % platform share breaks the 30 % floor; the 30/70 loan does not
    assert tables["share_floor"][0]["co_funded_loans"] == 2
    assert [r["loan_id"] for r in tables["share_floor_breaches"]] == [may["ids"]["low_share"]]
    assert {r["funder"] for r in tables["concentration"]} == {
        "big-state-bank", "harbour-joint-stock", "westlake-city-bank",
    }  # fmt: skip

    # five categories: NPL = substandard + doubtful + loss over the active principal
    npl = _scalar(engine, "SELECT COALESCE(SUM(bal_principal), 0) FROM loans WHERE status = "
                          "'active' AND risk_class IN ('substandard', 'doubtful', 'loss')")  # fmt: skip
    assert Decimal(summary["npl_balance"]) == Decimal(npl) / 100
    assert summary["npl_ratio"] == pytest.approx(int(npl) / int(active))
    assert [r["class"] for r in tables["classification"]][:5] == [
        "normal", "special_mention", "substandard", "doubtful", "loss",
    ]  # fmt: skip

    # nothing else was recorded: no ECL run, no alerts; monitoring was left out on request
    assert tables["provisions"] == []
    assert summary["model_monitoring"] is False

    # the files: HTML with inline charts and no external resource, CSVs, one workbook
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 4
    assert 'src="http' not in page
    assert 'href="http' not in page
    assert "Left out on request (--no-monitoring)." in page
    with (out / "balances.csv").open(encoding="utf-8") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert csv_rows == [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]
    with (out / "apr_above_cap.csv").open(encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["loan_id", "apr", "cap", "rule", "product", "balance"]
    workbook = load_workbook(out / "regulator-2026-05.xlsx", read_only=True)
    assert "balances" in workbook.sheetnames
    assert workbook.sheetnames[0] == "summary"
    assert [p.name for p in work.iterdir()] == ["report"]


def test_charge_offs_and_bad_input(
    may: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Charge-offs come from the month's CO rows: the `written` loan charges off on 2026-03-22.
    Bad months exit 2 naming month; a failed run keeps the previous report; nothing is left
    half-written."""
    engine = may["engine"]
    work = _work(tmp_path)
    out = work / "report"
    march = _run(engine, capsys, "report", "regulator", "--month", "2026-03", "--out", str(out),
                 "--no-monitoring", "--format", "json").json()  # fmt: skip
    rows = march["tables"]["charge_offs"]
    assert [r["loans"] for r in rows] == [1]
    written = _scalar(engine, "SELECT principal_fen FROM loan_month_ends WHERE loan_id = :i AND "
                              "state = 'CO'", i=may["ids"]["written"])  # fmt: skip
    assert Decimal(rows[0]["principal_written_off"]) == Decimal(written) / 100
    assert march["tables"]["npl_sales"] == []
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    for month, message in BAD_MONTHS:
        result = _run(engine, capsys, "report", "regulator", "--month", month, "--out", str(out))
        assert result.exit_code == 2, month
        assert "month" in result.output
        assert message in result.output, result.output

    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    for bad in (a_file, tmp_path / "missing" / "report"):
        result = _run(engine, capsys, "report", "regulator", "--month", "2026-05", "--out",
                      str(bad))  # fmt: skip
        assert result.exit_code == 2
        assert "out:" in result.output
    result = _run(engine, capsys, "report", "regulator", "--month", "2026-05", "--out", str(out),
                  "--platform-licence", "bank-ish")  # fmt: skip
    assert result.exit_code == 2
    assert "platform-licence" in result.output

    may["book"].close(date(2026, 6, 10))
    result = _run(engine, capsys, "report", "regulator", "--month", "2026-06", "--out", str(out))
    assert result.exit_code == 2
    assert "month: 2026-06 is closed only through 2026-06-10" in result.output

    def broken(*_: object) -> dict[str, bytes]:
        raise OSError("disk full")

    monkeypatch.setattr("lendstack.cli.report.render_files", broken)
    with pytest.raises(OSError, match="disk full"):
        _run(engine, capsys, "report", "regulator", "--month", "2026-05", "--out", str(out),
             "--no-monitoring")  # fmt: skip
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in work.iterdir()] == ["report"]


BAD_MONTHS = (
    ("2026-13", "expected YYYY-MM"),
    ("May 2026", "expected YYYY-MM"),
    ("2026-06", "no closed business dates"),
    ("2025-12", "no closed business dates"),
)


def test_the_report_carries_the_portfolio_analytics(
    may: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = may["engine"]
    out = _work(tmp_path) / "report"
    result = _run(engine, capsys, "report", "regulator", "--month", "2026-05", "--out", str(out),
                  "--no-monitoring", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    tables = result.json()["tables"]
    # May's cohort: the loans whose origination month is May, counted from the panel itself
    may_loans = _scalar(engine, "SELECT COUNT(*) FROM loan_month_ends WHERE month_end = :d"
                        " AND months_on_book = 0", d=MAY)  # fmt: skip
    cohort = [r for r in tables["vintage_curves"] if r["origination_month"] == "2026-05-01"]
    assert [r["loans"] for r in cohort] == [may_loans]
    # the month's roll rates start from every loan on the books at the April month-end
    on_books = _scalar(engine, "SELECT COUNT(*) FROM loan_month_ends WHERE month_end = :d"
                       " AND state LIKE 'M%'", d=APRIL)  # fmt: skip
    rolls = tables["roll_rates"]
    assert sum(r["loans"] for r in rolls) == on_books
    for row in rolls:  # each row a distribution over the states
        assert abs(sum(v for k, v in row.items() if k not in ("from", "loans")) - 1) < 1e-9
    assert "first_payment_default" in tables
    assert "transitions_3m" in tables
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Cumulative share at 30+ DPD by cohort" in page
    none = _run(engine, capsys, "report", "regulator", "--month", "2026-05", "--out",
                str(tmp_path / "again"), "--no-monitoring",
                "--history-months", "0", "--format", "json")  # fmt: skip
    assert none.exit_code == 0, none.output
    assert "vintage_curves" not in none.json()["tables"]

"""`lendstack risk transactions …` and `lendstack risk monitor|drift|fairness` end to end.

Runs the real entry point against a migrated database (SQLite; PostgreSQL in CI).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cli_runner import Run
from lendstack.servicing import LoanRequest, LoanState, ProductCatalog, book_loan
from lendstack.storage import schema
from lendstack.storage.repositories import SqlUnitOfWork
from risk.monitoring_book import DAY, Applicant, decide, pii_settings, service_for

HEADER = "transaction_id,loan_id,timestamp,amount,merchant_category\n"


@pytest.fixture
def loan(engine: Engine, catalog: ProductCatalog) -> LoanState:
    request = LoanRequest("cash-loan-installment", Decimal("12000"), 12, None, DAY)
    return book_loan(SqlUnitOfWork(engine), catalog, request)


def rows(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def feed(tmp_path: Path, loan_id: int, *extra: str) -> Path:
    path = tmp_path / "feed.csv"
    lines = [
        f"c-1,{loan_id},2026-11-03T10:00:00+08:00,120.50,consumption",
        f"g-1,{loan_id},2026-11-06T21:30:00+08:00,6000.00,gold_trading",
        *extra,
    ]
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ingest_a_csv_flags_and_is_idempotent(
    cli: Run, engine: Engine, loan: LoanState, tmp_path: Path
) -> None:
    path = feed(tmp_path, loan.id)
    first = cli("risk", "transactions", "ingest", str(path), "--format", "json")
    assert first.exit_code == 0, first.output
    body = first.json()
    assert body["inserted"] == 2
    assert body["duplicates"] == 0
    (flag,) = body["flagged"]
    assert flag["loan_id"] == loan.id
    assert flag["category"] == "gold_trading"
    assert flag["amount"] == "6000.00"
    assert flag["days_after"] == 4
    assert len(body["alerts"]["new"]) == 1
    again = cli("risk", "transactions", "ingest", str(path), "--format", "json").json()
    assert again["inserted"] == 0
    assert again["duplicates"] == 2
    assert again["flagged"] == []
    listed = cli("risk", "transactions", "flags", "--format", "json").json()["flags"]
    assert [f["loan_id"] for f in listed] == [loan.id]
    alerts = cli("risk", "alerts", "--list", "--format", "json").json()["alerts"]
    assert [a["metric"] for a in alerts] == ["funds_misuse"]


def test_json_lines_feed(cli: Run, engine: Engine, loan: LoanState, tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    record = {
        "transaction_id": "j-1",
        "loan_id": loan.id,
        "timestamp": "2026-11-10T08:00:00Z",
        "amount": "999.99",
        "merchant_category": "fx",
    }
    path.write_text(json.dumps(record) + "\n\n", encoding="utf-8")
    result = cli("risk", "transactions", "ingest", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.json()["flagged"][0]["transaction_id"] == "j-1"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("x-1,{loan},2026-11-04T10:00:00+08:00,12.345,fx", "row 4: amount"),
        ("x-1,{loan},2026-11-04T10:00:00+08:00,12.00,tulips", "row 4: merchant_category"),
        ("x-1,{loan},not-a-time,12.00,fx", "row 4: timestamp"),
        ("x-1,abc,2026-11-04T10:00:00+08:00,12.00,fx", "row 4: loan_id"),
        ("x-1,{loan},2026-11-04T10:00:00+08:00,,fx", "row 4: amount"),
    ],
)
def test_a_bad_row_names_row_and_field_and_writes_nothing(
    cli: Run, engine: Engine, loan: LoanState, tmp_path: Path, line: str, field: str
) -> None:
    path = feed(tmp_path, loan.id, line.format(loan=loan.id))
    result = cli("risk", "transactions", "ingest", str(path))
    assert result.exit_code == 2
    assert field in result.output
    assert rows(engine, schema.funds_transactions) == 0
    assert rows(engine, schema.funds_misuse_flags) == 0


def test_unknown_loan_missing_file_and_unknown_format(
    cli: Run, engine: Engine, loan: LoanState, tmp_path: Path
) -> None:
    path = feed(tmp_path, loan.id, "z-1,424242,2026-11-04T10:00:00+08:00,1.00,fx")
    result = cli("risk", "transactions", "ingest", str(path))
    assert result.exit_code == 3
    assert "row 4: loan_id" in result.output
    assert rows(engine, schema.funds_transactions) == 0
    missing = cli("risk", "transactions", "ingest", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 3
    assert "nope.csv" in missing.output
    odd = tmp_path / "feed.txt"
    odd.write_text("x", encoding="utf-8")
    assert cli("risk", "transactions", "ingest", str(odd)).exit_code == 2
    bad_pack = tmp_path / "pack.toml"
    bad_pack.write_text('misuse_markup = "2.0"\n', encoding="utf-8")
    result = cli("risk", "transactions", "ingest", str(path), "--pack", str(bad_pack))
    assert result.exit_code == 2
    assert "pack." in result.output


def test_penalty_show_and_apply(cli: Run, engine: Engine, loan: LoanState, tmp_path: Path) -> None:
    not_flagged = cli("risk", "transactions", "penalty", str(loan.id))
    assert not_flagged.exit_code == 3
    assert "no use-of-funds flag" in not_flagged.output
    cli("risk", "transactions", "ingest", str(feed(tmp_path, loan.id)))
    shown = cli("risk", "transactions", "penalty", str(loan.id), "--format", "json").json()
    rate = loan.contract.annual_rate
    assert Decimal(shown["rate"]) == rate * Decimal("1.5")
    assert Decimal(shown["applied_rate"]) == min(rate * Decimal("1.5"), Decimal("0.24"))
    assert shown["applied"] is False


# --- model monitoring -----------------------------------------------------------------------


def test_monitor_json_and_bad_inputs(
    cli: Run, engine: Engine, catalog: ProductCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pii_settings()
    monkeypatch.setenv("LENDSTACK_PII_KEY", settings.pii_key or "")
    service = service_for(settings, engine)
    for i in range(6):
        decide(service, i, Applicant(i % 2 == 0, date(1985, 1, 1), i == 1))
    end = (DAY + timedelta(days=1)).isoformat()
    result = cli("risk", "monitor", "--start", DAY.isoformat(), "--end", end, "--format", "json")
    assert result.exit_code == 0, result.output
    tables = result.json()
    assert set(tables) == {"score_psi", "feature_psi", "performance", "fairness"}
    gender = {r["group"]: r for r in tables["fairness"] if r["attribute"] == "gender"}
    assert gender["male"]["approval_rate"] == 1.0  # 3 men, all approved
    assert gender["female"]["approved"] == 2
    assert gender["female"]["applications"] == 3
    drift = cli("risk", "drift", "--start", DAY.isoformat(), "--end", end, "--format", "json")
    assert drift.json()["score_psi"][0]["applications"] == 6
    table = cli("risk", "fairness", "--start", DAY.isoformat(), "--end", end, "--resamples", "300")
    assert table.exit_code == 0
    assert "AIR" in table.output
    backwards = cli("risk", "monitor", "--start", end, "--end", DAY.isoformat())
    assert backwards.exit_code == 2
    assert "end" in backwards.output
    bad_date = cli("risk", "monitor", "--start", "2026-13-01", "--end", end)
    assert bad_date.exit_code == 2
    assert "start" in bad_date.output
    few = cli("risk", "monitor", "--start", DAY.isoformat(), "--end", end, "--resamples", "10")
    assert few.exit_code == 2
    assert "resamples" in few.output

"""`lendstack pay file`: a file of payments posted as one batch; a bad row names its line and
column and writes nothing; re-running the file posts nothing twice."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from dbstate import dump
from sqlalchemy import text
from test_bad_input import CONFLICT, NOT_FOUND, OPEN, VALIDATION, run_cli

BOOKED = date(2026, 1, 31)
HEADER = "loan_id,amount,date,idempotency_key,prepay\n"


@pytest.fixture
def served(book, database_url: str) -> str:
    for amount in ("12000", "6000"):
        book.book("cash-loan-installment", amount, 12, "0.18", BOOKED)
    book.close_through(date(2026, 2, 10))
    return database_url


def write(tmp_path: Path, body: str) -> str:
    path = tmp_path / "payments.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return str(path)


def test_a_file_posts_once_however_often_it_is_run(served, engine, capsys, tmp_path):
    path = write(
        tmp_path, f"1,100.00,{OPEN},bank-1,\n2,50.10,{OPEN},bank-2,\n1,20,{OPEN},bank-3,\n"
    )
    code, err = run_cli(capsys, served, "pay", "file", path, "--format", "json")
    assert code == 0, err
    after = dump(engine)
    code, _ = run_cli(capsys, served, "pay", "file", path, "--format", "json")
    assert code == 0
    assert dump(engine) == after
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT loan_id, amount_fen FROM payments ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, 10000), (2, 5010), (1, 2000)]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (f"1,abc,{OPEN},k1,\n", VALIDATION, "line 2: amount"),
        (f"1,10,{OPEN},k1,\n2,-5,{OPEN},k2,\n", VALIDATION, "line 3: amount"),
        (f"x,10,{OPEN},k1,\n", VALIDATION, "line 2: loan_id"),
        ("1,10,2026-13-01,k1,\n", VALIDATION, "line 2: date"),
        (f"1,10,{OPEN},,\n", VALIDATION, "line 2: idempotency_key"),
        (f"1,10,{OPEN},k1,sooner\n", VALIDATION, "line 2: prepay"),
        (f"1,10,{OPEN},k1,\n99,10,{OPEN},k2,\n", NOT_FOUND, "loan_id"),
        (f"1,10,{OPEN},k1,\n2,10,2026-02-01,k2,\n", CONFLICT, "date"),
        (f"1,10,{OPEN},k1,\n2,11,{OPEN},k1,\n", CONFLICT, "payments[1].idempotency_key"),
    ],
)
def test_a_bad_row_names_its_line_and_writes_nothing(
    served, engine, capsys, tmp_path, body, code, field
):
    before = dump(engine)
    exit_code, err = run_cli(capsys, served, "pay", "file", write(tmp_path, body))
    assert exit_code == code, err
    assert f"{field}:" in err, err
    assert "Traceback" not in err
    assert dump(engine) == before


def test_a_file_without_the_columns_is_refused(served, engine, capsys, tmp_path):
    path = tmp_path / "payments.csv"
    path.write_text("loan,amount\n1,10\n", encoding="utf-8")
    before = dump(engine)
    exit_code, err = run_cli(capsys, served, "pay", "file", str(path))
    assert exit_code == VALIDATION
    assert "file:" in err
    assert "idempotency_key" in err
    assert dump(engine) == before

"""Settlement statements: the pure builder, the storage read (SQLite and PostgreSQL) and
`lendstack funding settle` (files, checksums, determinism, refusal of an open date)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cli_runner import Run
from lendstack.core.errors import Conflict, InvariantViolation, NotFound, ValidationError
from lendstack.funding.settlement import (
    COLUMN_SIGN,
    COLUMNS,
    CSV_HEADER,
    FlowSum,
    build_statement,
    build_statements,
    canonical,
)
from lendstack.funding.subledger import DUE_SIGN, Flow
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan, take_payment
from lendstack.servicing.cob import close_through
from lendstack.servicing.services import reverse_payment
from lendstack.storage import settlements as settlements_module
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.schema import funder_flows, funder_positions
from lendstack.storage.settlements import SqlSettlements, atomic_write, write_statements

DAY = date(2026, 4, 3)
BANK = "harbour-joint-stock"
OTHER = "big-state-bank"

# --- the pure builder -------------------------------------------------------------------


def s(loan: int, flow: Flow, fen: int, funder_id: str = BANK, count: int = 1) -> FlowSum:
    return FlowSum(funder_id, loan, flow, fen, count)


def test_every_cash_moving_flow_has_exactly_one_column() -> None:
    placed = [flow for _, flows in COLUMNS for flow in flows]
    assert len(placed) == len(set(placed))
    assert {f for f, sign in DUE_SIGN.items() if sign} <= set(placed)
    for name, flows in COLUMNS:
        signs = {DUE_SIGN.get(f, 0) for f in flows}
        assert signs == {COLUMN_SIGN.get(name, 1)}, name


def test_lines_net_and_totals() -> None:
    sums = [
        s(7, Flow.PRINCIPAL, 53474),
        s(7, Flow.INTEREST, 2021),
        s(7, Flow.SPREAD, 9000),  # the platform's: not in the file, not in the net
        s(7, Flow.PENALTY, 100),
        s(7, Flow.FEE, 50),
        s(3, Flow.DISBURSEMENT, 700001),
        s(9, Flow.BUYBACK, 250000),
        s(9, Flow.CHARGE_OFF, 12),  # a memo: no cash
        s(11, Flow.RECOVERY, 300, count=2),
        s(11, Flow.SALE, 400),
    ]
    st = build_statement(DAY, BANK, sums, closing_position=123)
    assert [ln.loan_id for ln in st.lines] == [3, 7, 9, 11]
    by_loan = {ln.loan_id: ln for ln in st.lines}
    assert by_loan[3].net == -700001
    assert by_loan[7].amount("fees") == 150
    assert by_loan[7].net == 53474 + 2021 + 150
    assert by_loan[9].amount("compensation") == 250000
    assert by_loan[9].amount("charged_off") == 12
    assert by_loan[9].net == 250000
    assert by_loan[11].flows == 3
    assert by_loan[11].net == 700
    totals = st.totals
    assert totals.loans == 4
    assert totals.net == sum(ln.net for ln in st.lines) == st.net
    assert st.net == sum(DUE_SIGN.get(x.flow, 0) * x.fen for x in sums)
    assert totals.amount("disbursed") == 700001
    body = st.body()
    assert body["totals"]["net"] == "-3936.56"  # -7,000.01 + 556.45 + 2,500.00 + 7.00
    assert body["closing_position"] == "1.23"
    assert body["loans"][0] == {
        "loan_id": 3, "flows": 1, "disbursed": "7000.01", "principal": "0.00",
        "interest": "0.00", "fees": "0.00", "recoveries": "0.00", "sale": "0.00",
        "compensation": "0.00", "charged_off": "0.00", "net": "-7000.01",
    }  # fmt: skip


def test_a_reversal_in_the_same_day_nets_the_loan_to_zero() -> None:
    paid = [s(5, Flow.PRINCIPAL, 1000), s(5, Flow.INTEREST, 90)]
    reversed_ = [s(5, Flow.PRINCIPAL, -1000), s(5, Flow.INTEREST, -90)]
    # what SQL hands over: one sum per flow, counting both rows
    summed = [s(5, f, 0, count=2) for f in (Flow.INTEREST, Flow.PRINCIPAL)]
    st = build_statement(DAY, BANK, summed)
    assert st.lines[0].net == 0
    assert st.lines[0].flows == 4
    assert set(st.lines[0].amounts) == {0}
    # and fed unsummed, the pure builder nets them itself
    assert build_statement(DAY, BANK, paid + reversed_).lines[0].amounts == st.lines[0].amounts


def test_bytes_and_checksum_do_not_depend_on_input_order() -> None:
    sums = [s(2, Flow.PRINCIPAL, 10), s(1, Flow.INTEREST, 7), s(1, Flow.PRINCIPAL, 3)]
    a = build_statement(DAY, BANK, sums, 5)
    b = build_statement(DAY, BANK, list(reversed(sums)), 5)
    assert a.json_bytes() == b.json_bytes()
    assert a.csv_bytes() == b.csv_bytes()
    assert a.checksum == hashlib.sha256(canonical(a.body())).hexdigest()
    content = json.loads(a.json_bytes())
    assert content.pop("sha256") == a.checksum
    assert hashlib.sha256(canonical(content)).hexdigest() == a.checksum
    changed = build_statement(DAY, BANK, [*sums, s(3, Flow.FEE, 1)], 5)
    assert changed.checksum != a.checksum


def test_csv_layout() -> None:
    st = build_statement(DAY, BANK, [s(1, Flow.PRINCIPAL, 10), s(2, Flow.DISBURSEMENT, 500)])
    lines = st.csv_bytes().decode().split("\n")
    assert lines[0] == ",".join(CSV_HEADER)
    assert lines[1].startswith(f"2026-04-03,{BANK},1,1,0.00,0.10,")
    assert lines[-2].split(",")[2] == "total"
    assert lines[-2].endswith(",-4.90")
    assert lines[-1] == ""  # ends with a newline, no \r


def test_nil_statements_for_banks_still_holding_loans() -> None:
    sums = [s(1, Flow.PRINCIPAL, 10, funder_id="b")]
    out = build_statements(DAY, sums, {"a": 500, "b": 0, "c": 0})
    assert [st.funder_id for st in out] == ["a", "b"]
    assert out[0].lines == ()
    assert out[0].net == 0
    assert out[0].closing_position == 500
    assert out[0].body()["totals"]["loans"] == 0


def test_a_foreign_funders_flow_is_refused() -> None:
    with pytest.raises(InvariantViolation):
        build_statement(DAY, BANK, [s(1, Flow.PRINCIPAL, 10, funder_id=OTHER)])


# --- from storage -----------------------------------------------------------------------

BOOKED = date(2026, 3, 2)
PAID_ON = BOOKED + timedelta(days=32)
SHARES = {"platform": Decimal("0.3"), BANK: Decimal("0.7")}


@dataclass
class Book:
    engine: Engine
    loans: list[int]


@pytest.fixture
def repo(engine: Engine) -> SqlFunding:
    repo = SqlFunding(engine)
    repo.import_builtin()
    return repo


def book(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding, amount: str, shares: Any = None
) -> int:
    request = LoanRequest("cash-loan-installment", Decimal(amount), 12, Decimal("0.18"), BOOKED)
    loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
    repo.record_plan(engine, loan_id, shares or SHARES)
    return loan_id


def pay(engine: Engine, loan_id: int, amount: str, on: date, key: str) -> int:
    return take_payment(SqlUnitOfWork(engine), Payment(loan_id, Decimal(amount), on, key)).id


@pytest.fixture
def day_book(engine: Engine, catalog: ProductCatalog, repo: SqlFunding) -> Book:
    """Three loans: two with the bank, one with another bank. On PAID_ON the first is paid,
    the second is paid and reversed the same day, the third is paid; then PAID_ON closes."""
    loans = [
        book(engine, catalog, repo, "10000.01"),
        book(engine, catalog, repo, "5000.00"),
        book(engine, catalog, repo, "8000.00", {"platform": Decimal("0.3"), OTHER: Decimal("0.7")}),
    ]
    close_through(SqlCloseStore(engine), PAID_ON - timedelta(days=1))
    pay(engine, loans[0], "2000.00", PAID_ON, "a")
    undone = pay(engine, loans[1], "700.00", PAID_ON, "b")
    reverse_payment(SqlUnitOfWork(engine), undone, PAID_ON)
    pay(engine, loans[2], "900.00", PAID_ON, "c")
    close_through(SqlCloseStore(engine), PAID_ON)
    return Book(engine, loans)


def due_from_flows(engine: Engine, funder_id: str, day: date) -> int:
    """Σ of the funder's due over its raw flow rows, independently of the statement code."""
    query = select(funder_flows.c.flow, funder_flows.c.amount_fen).where(
        funder_flows.c.funder_id == funder_id, funder_flows.c.business_date == day
    )
    with engine.connect() as conn:
        return sum(DUE_SIGN.get(Flow(f), 0) * fen for f, fen in conn.execute(query))


def position_now(engine: Engine, funder_id: str) -> int:
    query = select(funder_positions.c.principal_fen).where(
        funder_positions.c.funder_id == funder_id
    )
    with engine.connect() as conn:
        return sum(conn.execute(query).scalars())


def test_statement_totals_reconcile_with_the_days_flows(day_book: Book) -> None:
    statements = {st.funder_id: st for st in SqlSettlements(day_book.engine).statements(PAID_ON)}
    assert sorted(statements) == [OTHER, BANK]  # banks only: the platform settles with no one
    for funder_id, st in statements.items():
        assert sum(ln.net for ln in st.lines) == st.totals.net == st.net
        assert st.net == due_from_flows(day_book.engine, funder_id, PAID_ON) != 0
        assert st.closing_position == position_now(day_book.engine, funder_id)
    bank = statements[BANK]
    first, reversed_loan = bank.lines
    assert (first.loan_id, reversed_loan.loan_id) == tuple(day_book.loans[:2])
    assert first.amount("principal") > 0
    assert first.amount("interest") > 0
    assert reversed_loan.net == 0
    assert set(reversed_loan.amounts) == {0}
    assert reversed_loan.flows >= 4  # paid and reversed, each with principal and interest


def test_disbursement_day_and_a_nil_day(day_book: Book) -> None:
    settle = SqlSettlements(day_book.engine)
    booked = {st.funder_id: st for st in settle.statements(BOOKED)}
    assert booked[BANK].net == -(700001 + 350000)
    assert booked[BANK].totals.amount("disbursed") == 1050001
    assert booked[OTHER].net == -560000
    quiet = {st.funder_id: st for st in settle.statements(BOOKED + timedelta(days=5))}
    assert sorted(quiet) == [OTHER, BANK]
    assert quiet[BANK].lines == ()
    assert quiet[BANK].closing_position == 1050001
    assert settle.statements(BOOKED - timedelta(days=1)) == ()  # nothing held yet


def test_an_open_or_unclosed_date_is_refused(day_book: Book) -> None:
    settle = SqlSettlements(day_book.engine)
    for day in (PAID_ON + timedelta(days=1), PAID_ON + timedelta(days=30)):
        with pytest.raises(Conflict) as caught:
            settle.statements(day)
        assert caught.value.field == "date"
        with pytest.raises(Conflict):
            settle.statement(day, BANK)


def test_one_funders_statement_and_its_errors(day_book: Book) -> None:
    settle = SqlSettlements(day_book.engine)
    every = {st.funder_id: st for st in settle.statements(PAID_ON)}
    assert settle.statement(PAID_ON, BANK).json_bytes() == every[BANK].json_bytes()
    empty = settle.statement(PAID_ON, "westlake-city-bank")  # stored, never lent
    assert empty.lines == ()
    assert empty.closing_position == 0
    with pytest.raises(NotFound):
        settle.statement(PAID_ON, "nobody")
    with pytest.raises(NotFound):
        settle.statement(PAID_ON, "platform")


def test_a_closed_date_does_not_change_with_later_activity(day_book: Book) -> None:
    settle = SqlSettlements(day_book.engine)
    before = {st.funder_id: st.json_bytes() for st in settle.statements(PAID_ON)}
    later = PAID_ON + timedelta(days=1)
    pay(day_book.engine, day_book.loans[0], "500.00", later, "later")
    SqlFunding(day_book.engine).buyback(day_book.loans[1], BANK, later)
    assert {st.funder_id: st.json_bytes() for st in settle.statements(PAID_ON)} == before
    close_through(SqlCloseStore(day_book.engine), later)
    assert {st.funder_id: st.json_bytes() for st in settle.statements(PAID_ON)} == before
    bought = settle.statement(later, BANK)
    compensation = {ln.loan_id: ln.amount("compensation") for ln in bought.lines}
    assert compensation[day_book.loans[1]] == 350000
    assert bought.net == due_from_flows(day_book.engine, BANK, later)
    assert bought.closing_position == position_now(day_book.engine, BANK)


# --- files and the CLI ------------------------------------------------------------------


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_settle_writes_reproducible_files_with_checksums(
    day_book: Book, cli: Run, tmp_path: Path
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    done = cli("funding", "settle", "--date", PAID_ON.isoformat(), "--out", str(first),
               "--format", "json")  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert [r["funder_id"] for r in report["statements"]] == [OTHER, BANK]
    stem = f"{BANK}_{PAID_ON.isoformat()}"
    written = files(first)
    assert sorted(written) == sorted(
        f"{f}_{PAID_ON.isoformat()}{ext}" for f in (OTHER, BANK)
        for ext in (".csv", ".csv.sha256", ".json")
    )  # fmt: skip
    csv_digest = hashlib.sha256(written[f"{stem}.csv"]).hexdigest()
    assert written[f"{stem}.csv.sha256"] == f"{csv_digest}  {stem}.csv\n".encode()
    content = json.loads(written[f"{stem}.json"])
    checksum = content.pop("sha256")
    assert hashlib.sha256(canonical(content)).hexdigest() == checksum
    bank = next(r for r in report["statements"] if r["funder_id"] == BANK)
    assert (bank["sha256"], bank["csv_sha256"]) == (checksum, csv_digest)
    assert Decimal(content["totals"]["net"]) * 100 == due_from_flows(day_book.engine, BANK, PAID_ON)

    again = cli("funding", "settle", "--date", PAID_ON.isoformat(), "--out", str(second))
    assert again.exit_code == 0, again.output
    assert files(second) == written
    assert (
        cli("funding", "settle", "--date", PAID_ON.isoformat(), "--out", str(first)).exit_code == 0
    )
    assert files(first) == written  # rewritten in place, same bytes, no temp files left


def test_settle_defaults_to_settlements_date_dir(
    day_book: Book, cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = cli("funding", "settle", "--date", BOOKED.isoformat())
    assert done.exit_code == 0, done.output
    assert BANK in done.stdout
    target = tmp_path / "settlements" / BOOKED.isoformat()
    assert f"{BANK}_{BOOKED.isoformat()}.csv" in files(target)


def test_settle_refuses_an_unclosed_date_and_writes_nothing(
    day_book: Book, cli: Run, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    open_day = (PAID_ON + timedelta(days=1)).isoformat()
    done = cli("funding", "settle", "--date", open_day, "--out", str(out))
    assert done.exit_code == 4
    assert "not closed" in done.output
    assert "date" in done.output
    assert not out.exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    unwritable = cli("funding", "settle", "--date", BOOKED.isoformat(), "--out", str(blocker))
    assert unwritable.exit_code == 2
    assert "--out" in unwritable.output
    bad = cli("funding", "settle", "--date", "2026-02-30", "--out", str(out))
    assert bad.exit_code == 2
    assert "date" in bad.output
    assert not out.exists()


def test_a_partner_id_that_cannot_name_a_file_is_refused_before_any_write(
    tmp_path: Path,
) -> None:
    # the partner parser only admits slugs; the writer checks again because an id becomes a path
    good = build_statement(DAY, "招商-bank", [s(1, Flow.PRINCIPAL, 1, funder_id="招商-bank")])
    for bad in ("../evil", "a/b", ".hidden", "x_y", ""):
        evil = build_statement(DAY, bad, [s(1, Flow.PRINCIPAL, 1, funder_id=bad)])
        with pytest.raises(ValidationError) as caught:
            write_statements([good, evil], tmp_path / "out")
        assert caught.value.field == "funder_id"
        assert not (tmp_path / "out").exists()
    write_statements([good], tmp_path / "out")
    assert f"招商-bank_{DAY.isoformat()}.csv" in files(tmp_path / "out")


def test_a_failed_write_leaves_neither_a_partial_file_nor_a_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "statement.csv"
    target.write_bytes(b"old")

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(settlements_module.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new content")
    assert files(tmp_path) == {"statement.csv": b"old"}

"""The close's cheaper statements (0019_close_speed) change nothing but their cost.

- The funding step's exposure rows equal those of the single UPDATE it replaced (kept here as
  the reference), on every close of a co-funded book with payments, a payoff and a partner
  added after the first close (a row never closed). Their balances are summed per funder under
  FILTERs (few funders) or by GROUP BY (many): both ways agree on every one of those days.
- The month-end's reversed-payoff check reads the payoff rows through their partial index,
  and the index migrates down and up.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan, take_payment
from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.schedule import PrepaymentMode
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import (
    FILTERED_FUNDERS,
    SqlFunding,
    close_exposures,
    held_by_funder,
    held_of,
)
from lendstack.storage.repositories import SqlUnitOfWork
from migration_checks import assert_index_migrates_down_and_up

START = date(2026, 3, 2)
BANK = "big-state-bank"

_REFERENCE = (
    "UPDATE funder_exposures SET closed_on = :day,"
    " balance_fen = COALESCE((SELECT SUM(p.principal_fen) FROM funder_positions p"
    " JOIN loans l ON l.id = p.loan_id WHERE p.funder_id = funder_exposures.funder_id"
    " AND p.principal_fen > 0 AND l.status IN ('approved', 'active')), 0),"
    " allocated_fen = COALESCE(allocated_fen, 0) + COALESCE((SELECT SUM(x.amount_fen)"
    " FROM funder_flows x WHERE x.flow = 'disbursement'"
    " AND x.funder_id = funder_exposures.funder_id AND x.business_date <= :day"
    " AND (funder_exposures.closed_on IS NULL OR x.business_date > funder_exposures.closed_on)"
    "), 0)"
)
"""The statement `close_exposures` wrote the rows with before 0019_close_speed."""

_ROWS = "SELECT funder_id, closed_on, balance_fen, allocated_fen FROM funder_exposures ORDER BY 1"


def _reference(conn: Connection, day: date) -> None:
    conn.execute(
        text(
            "INSERT INTO funder_exposures (funder_id) SELECT id FROM funders"
            " WHERE id NOT IN (SELECT funder_id FROM funder_exposures)"
        )
    )
    conn.execute(text(_REFERENCE), {"day": day})


def _both(engine: Engine, day: date) -> tuple[list[Any], list[Any]]:
    """The rows each way, from the same stored rows (each in a transaction rolled back)."""
    found = []
    for write in (_reference, close_exposures):
        with engine.connect() as conn, conn.begin() as tx:
            write(conn, day)
            found.append([tuple(r) for r in conn.execute(text(_ROWS))])
            tx.rollback()
    return found[0], found[1]


def _held_both_ways(engine: Engine) -> None:
    """`held_of` by FILTERs and by GROUP BY (more funders than the FILTERs take: unknown ones,
    which hold nothing) equals `held_by_funder`, and gives 0 to a funder holding nothing."""
    with engine.connect() as conn:
        ids = sorted(conn.execute(text("SELECT id FROM funders")).scalars())
        many = ids + [f"nobody-{k}" for k in range(FILTERED_FUNDERS)]
        filtered, grouped, held = held_of(conn, ids), held_of(conn, many), held_by_funder(conn)
    assert len(ids) <= FILTERED_FUNDERS < len(many)
    assert filtered == {f: held.get(f, 0) for f in ids}
    assert grouped == {**filtered, **dict.fromkeys(many[len(ids) :], 0)}


def _book(engine: Engine, catalog: ProductCatalog, amount: str, on: date, plan: Any) -> int:
    request = LoanRequest("cash-loan-installment", Decimal(amount), 12, Decimal("0.18"), on)
    loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
    SqlFunding(engine).record_plan(engine, loan_id, plan)
    return loan_id


def test_the_exposure_rows_equal_the_statement_they_replace(
    engine: Engine, catalog: ProductCatalog
) -> None:
    repo = SqlFunding(engine)
    repo.import_builtin()
    shared = {"platform": Decimal("0.3"), BANK: Decimal("0.7")}
    three = {
        "platform": Decimal("0.4"),
        BANK: Decimal("0.3"),
        "harbour-joint-stock": Decimal("0.3"),
    }
    first = _book(engine, catalog, "12000", START, shared)
    second = _book(engine, catalog, "9000", START, three)
    store = SqlCloseStore(engine)
    day = START
    for offset in range(45):
        day = START + timedelta(days=offset)
        if offset == 9:
            _book(engine, catalog, "5000", day, three)
        if offset == 12:
            payment = Payment(
                first, Decimal("3000"), day, f"pre-{offset}", PrepaymentMode.SHORTEN_TERM
            )
            take_payment(SqlUnitOfWork(engine), payment)
        if offset == 30:  # paid off: its positions leave the balances
            payment = Payment(first, Decimal("20000"), day, "payoff", PrepaymentMode.SHORTEN_TERM)
            take_payment(SqlUnitOfWork(engine), payment)
        reference, rows = _both(engine, day)
        assert rows == reference
        _held_both_ways(engine)
        close_through(store, day)
    with engine.begin() as conn:  # a partner with a row never closed counts every flow
        conn.execute(
            text("UPDATE funder_exposures SET closed_on = NULL WHERE funder_id = :f"), {"f": BANK}
        )
        # positions still held in a loan off the books count for nobody
        conn.execute(text("UPDATE loans SET status = 'sold' WHERE id = :id"), {"id": second})
    reference, rows = _both(engine, day + timedelta(days=1))
    assert rows == reference
    assert any(r[2] for r in rows)
    assert any(r[3] for r in rows)


RESTATE_START = "SELECT r.loan_id, r.month_end, r.origination_month, r.months_on_book"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_reversed_payoff_check_reads_the_payoff_index(
    engine: Engine, database_url: str
) -> None:
    from lendstack.storage.month_end import restate_reversed_payoffs

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", record)
    with engine.begin() as conn:
        restate_reversed_payoffs(conn, date(2026, 4, 1), date(2026, 4, 30))
    event.remove(engine, "before_cursor_execute", record)
    statement, params = next((s, p) for s, p in seen if s.startswith(RESTATE_START))
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        plan = " ".join(str(r[3]) for r in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params))
    assert "INDEX ix_loan_month_ends_paid_off" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_close_speed_index_migrates_down_and_up(engine: Engine) -> None:
    assert_index_migrates_down_and_up(engine, "ix_loan_month_ends_paid_off", previous="0018")

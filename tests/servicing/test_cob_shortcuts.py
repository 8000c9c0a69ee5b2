"""The close's shortcuts change nothing but its cost.

- The accrual leaves alone a loan whose period has no interest and nothing accrued (its target
  is 0 in every rounding mode), yet still counts it; a loan with no period interest but
  something accrued is still brought back to its target.
- Non-accrual and charge-off walk the delinquent loans from the lowest threshold among them;
  every loan still moves exactly at its own threshold (a property over random thresholds).
- The steps reach the loans they act on through the indexes of migration 0018; on SQLite
  (no statistics) that depends on how each statement is written, so the plans are checked.
(The penalty step's entry, now read off the balances, is tied to them by `reconcile` in the
scenario tests.)
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text

from lendstack.servicing.cob import close_day
from lendstack.storage.cob import charge_off, stop_accrual
from lendstack.storage.db import migrate

START = date(2026, 3, 10)
DAY = START + timedelta(days=1)


def _accrual_rows(book: Any, day: date) -> int:
    rows = book.rows(
        f"SELECT rows FROM cob_steps WHERE step = 'accrual' AND business_date = '{day}'"
    )
    return int(rows[0][0])


def _accrual_entry(book: Any, day: date) -> Decimal:
    fen = book.rows(
        "SELECT SUM(l.debit_fen) FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id"
        f" WHERE e.reference = 'cob:{day.isoformat()}:accrual'"
    )[0][0]
    return Decimal(int(fen or 0)) / 100


def test_an_interest_free_loan_is_counted_but_accrues_nothing(book):
    free = book.book("huabei-installment", "3000", 6, None, START, fee_rate="0.006")
    paying = book.book("cash-loan-installment", "12000", 12, "0.18", START)
    book.close_through(START)
    close_day(book.store, DAY)
    assert _accrual_rows(book, DAY) == 2
    state = {
        r[0]: r[1:]
        for r in book.rows("SELECT id, period_interest, period_accrued, bal_interest FROM loans")
    }
    assert state[free.id] == (0, 0, 0)
    interest, accrued, balance = state[paying.id]
    # 180.00 of interest in a month of 28-31 days: one day accrues about 6.00
    assert interest > 0
    assert 550 <= accrued <= 650
    assert balance == accrued
    assert _accrual_entry(book, DAY) == Decimal(accrued) / 100
    book.assert_ties()


def test_a_period_without_interest_but_with_accrued_interest_is_still_accrued(book):
    """Skipping a loan with no period interest is only right while it has accrued nothing."""
    free = book.book("huabei-installment", "3000", 6, None, START, fee_rate="0.006")
    paying = book.book("cash-loan-installment", "12000", 12, "0.18", START)
    book.close_through(START)
    # A state the shortcut must not skip: 0.05 accrued, written (so marked) since the close.
    with book.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE loans SET period_accrued = 5, bal_interest = 5, accrual_dirty = TRUE"
                " WHERE id = :id"
            ),
            {"id": free.id},
        )
    close_day(book.store, DAY)
    rows = book.rows(f"SELECT period_accrued, bal_interest FROM loans WHERE id = {free.id}")
    assert rows == [(0, 0)]  # brought back to its target, 0
    earned = book.rows(f"SELECT bal_interest FROM loans WHERE id = {paying.id}")[0][0]
    assert _accrual_entry(book, DAY) == (Decimal(earned) - 5) / 100
    assert _accrual_rows(book, DAY) == 2


PLANS = {
    # the accrual: every accruing loan in id order, and the loans written since the last close
    "UPDATE loans SET bal_interest = bal_interest + (CASE WHEN ? >=": "ix_loans_status_id",
    "UPDATE loans SET bal_interest = bal_interest + (CASE WHEN status": "ix_loans_accrual_dirty",
    "INSERT INTO portfolio_snapshots": "ix_loans_status_snapshot",
    "SELECT id FROM loans WHERE bal_credit > 0": "ix_loans_holding_credit",
    "SELECT min(loans.disbursement_date)": "ix_loans_disbursement_date",
    "SELECT SUM(CASE WHEN non_accrual THEN 0 ELSE COALESCE(": "ix_loans_status_period_due",
    "SELECT DISTINCT write_off_days": "ix_loans_status_write_off",
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_close_reads_loans_through_its_indexes(book, database_url):
    """On SQLite each statement's plan names the index meant for it, not a walk of the book."""
    book.book("cash-loan-installment", "12000", 12, "0.18", START)
    book.close_through(START)
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(book.engine, "before_cursor_execute", record)
    close_day(book.store, DAY)
    book.store.first_activity()  # asked by a book's first close and by `cob run --through`
    event.remove(book.engine, "before_cursor_execute", record)
    with book.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        for start, index in PLANS.items():
            found = [
                (s, p)
                for s, p in seen
                if " ".join(s.split()).replace("UPDATE OR FAIL ", "UPDATE ").startswith(start)
            ]
            assert found, start
            statement, params = found[0]
            plan = " ".join(
                str(r[3]) for r in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            )
            assert f"INDEX {index}" in plan, (start, plan)
            if index == "ix_loans_status_snapshot":  # walked in group order: no sort
                assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_cob_indexes_migrate_down_and_up(engine):
    def indexes() -> set[str]:
        with engine.connect() as conn:
            return {
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'loans'"
                    )
                )
            }

    added = {
        "ix_loans_status_id",
        "ix_loans_status_write_off",
        "ix_loans_disbursement_date",
    }
    assert added <= indexes()
    from alembic import command

    from lendstack.storage.db import _alembic_config

    command.downgrade(_alembic_config(engine), "0017")
    assert not added & indexes()
    assert "ix_loans_holding_credit" in indexes()
    migrate(engine)
    assert added <= indexes()


LOANS = 5


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    loans=st.lists(
        # dpd, non-accrual DPD, charge-off DPD, already non-accrual
        st.tuples(st.integers(0, 200), st.integers(0, 200), st.integers(0, 200), st.booleans()),
        min_size=LOANS,
        max_size=LOANS,
    )
)
def test_loans_enter_non_accrual_and_charge_off_exactly_at_their_own_thresholds(book, loans):
    """The walks start at the lowest threshold; every loan still meets its own (dpd > 0)."""
    ids = [r[0] for r in book.rows("SELECT id FROM loans ORDER BY id")]
    while len(ids) < LOANS:
        ids.append(book.book("cash-loan-installment", "12000", 12, "0.18", START).id)
    with book.engine.connect() as conn, conn.begin() as tx:
        for loan_id, (dpd, na, co, parked) in zip(ids, loans, strict=True):
            conn.execute(
                text(
                    "UPDATE loans SET dpd = :dpd, non_accrual_dpd = :na, charge_off_dpd = :co,"
                    " non_accrual = :parked WHERE id = :id"
                ),
                {"dpd": dpd, "na": na, "co": co, "parked": parked, "id": loan_id},
            )
        stop_accrual(conn, DAY)
        charge_off(conn, DAY)
        got = {
            r[0]: (bool(r[1]), r[2])
            for r in conn.execute(text("SELECT id, non_accrual, status FROM loans"))
        }
        tx.rollback()
    for loan_id, (dpd, na, co, parked) in zip(ids, loans, strict=True):
        enters, leaves = dpd > 0 and dpd >= na, dpd == 0
        status = "charged_off" if dpd > 0 and dpd >= co else "active"
        assert got[loan_id] == ((parked or enters) and not leaves, status), (dpd, na, co, parked)

"""`RunningReconcile` (the simulator's month-end check) is `reconcile`, difference for
difference, while the books grow: on books that tie, and on books broken after a check (a
carried check must still catch what lands after it, and keep reporting it)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text

from lendstack.funding import builtin_partners
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan, take_payment
from lendstack.servicing.cob import close_through
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import SqlFunding
from lendstack.storage.reports import Difference, reconcile
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.running_reconcile import RunningReconcile

BOOKED = date(2026, 3, 2)
BANK = "harbour-joint-stock"
SHARES = {"platform": Decimal("0.3"), BANK: Decimal("0.7")}


@pytest.fixture
def repo(engine: Engine) -> SqlFunding:
    repo = SqlFunding(engine)
    repo.import_builtin()
    assert any(f.id == BANK for f in builtin_partners())
    return repo


def book(engine: Engine, catalog: ProductCatalog, repo: SqlFunding, amount: str, day: date) -> int:
    request = LoanRequest("cash-loan-installment", Decimal(amount), 12, Decimal("0.18"), day)
    loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
    repo.record_plan(engine, loan_id, SHARES)
    return loan_id


def both(engine: Engine, running: RunningReconcile) -> list[Difference]:
    """The running check's differences, asserted equal to a full reconcile's."""
    with engine.connect() as conn:
        full, carried = reconcile(conn), running.check(conn)
    key = lambda d: (d.check, d.expected, d.actual)  # noqa: E731
    assert sorted(carried, key=key) == sorted(full, key=key)
    return carried


def grow(engine: Engine, catalog: ProductCatalog, repo: SqlFunding) -> RunningReconcile:
    """Two loans through two months of closes and payments, checked after each step."""
    running, store = RunningReconcile(), SqlCloseStore(engine)
    assert both(engine, running) == []
    first = book(engine, catalog, repo, "10000.01", BOOKED)
    assert both(engine, running) == []
    close_through(store, BOOKED + timedelta(days=31))
    second = book(engine, catalog, repo, "5000.00", BOOKED + timedelta(days=32))
    paid_on = BOOKED + timedelta(days=32)
    take_payment(SqlUnitOfWork(engine), Payment(first, Decimal("950.00"), paid_on, "a"))
    assert both(engine, running) == []  # the open date's flows are not in the GL yet
    close_through(store, paid_on + timedelta(days=30))
    take_payment(SqlUnitOfWork(engine), Payment(second, Decimal("600.00"), paid_on + timedelta(days=31), "b"))  # fmt: skip
    assert both(engine, running) == []
    close_through(store, paid_on + timedelta(days=31))
    assert both(engine, running) == []
    return running


def test_the_running_check_is_reconcile_as_the_books_grow(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    grow(engine, catalog, repo)


def test_an_unbalanced_entry_after_a_check_is_caught_and_kept(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    running = grow(engine, catalog, repo)
    with engine.begin() as conn:
        entry = conn.execute(
            text(
                "INSERT INTO journal_entries (event, business_date, reference, created_at)"
                " VALUES ('manual', :d, 'broken', :d) RETURNING id"
            ),
            {"d": date(2026, 5, 3)},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO journal_lines (entry_id, account, debit_fen, credit_fen)"
                " VALUES (:e, '1001', 100, 0), (:e, '6011', 0, 99)"
            ),
            {"e": entry},
        )
    found = {d.check for d in both(engine, running)}
    assert {"trial balance", f"entry {entry}"} <= found
    close_through(SqlCloseStore(engine), date(2026, 5, 10))  # more lines, the entry stays
    assert {"trial balance", f"entry {entry}"} <= {d.check for d in both(engine, running)}


def test_a_tampered_position_and_a_flow_without_its_gl_are_caught(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    running = grow(engine, catalog, repo)
    with engine.begin() as conn:
        loan_id = conn.execute(text("SELECT MIN(loan_id) FROM funder_positions")).scalar_one()
        conn.execute(
            text(
                "UPDATE funder_positions SET principal_fen = principal_fen + 1"
                " WHERE loan_id = :l AND funder_id = :f"
            ),
            {"l": loan_id, "f": BANK},
        )
    found = {d.check for d in both(engine, running)}
    assert f"loan {loan_id} funder {BANK}: position vs its flows" in found
    with engine.begin() as conn:  # a bank flow of a closed date the GL never saw
        conn.execute(
            text(
                "INSERT INTO funder_flows (business_date, loan_id, funder_id, flow, amount_fen,"
                " source) VALUES (:d, :l, :f, 'interest', 7, 'forged:1')"
            ),
            {"d": BOOKED + timedelta(days=40), "l": loan_id, "f": BANK},
        )
    found = {d.check for d in both(engine, running)}
    assert any(c.endswith(f"of {BANK} (flows vs GL)") for c in found)
    close_through(SqlCloseStore(engine), date(2026, 5, 10))
    found = {d.check for d in both(engine, running)}
    assert f"loan {loan_id} funder {BANK}: position vs its flows" in found
    assert any(c.endswith(f"of {BANK} (flows vs GL)") for c in found)


def test_a_flow_of_the_open_date_counts_once_its_date_is_closed(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    running = grow(engine, catalog, repo)
    with engine.connect() as conn:
        day = conn.execute(text("SELECT MAX(business_date) FROM cob_steps")).scalar_one()
    open_date = date.fromisoformat(str(day)) + timedelta(days=1)
    with engine.begin() as conn:  # forged on the open date: not the GL's business until closed
        loan_id = conn.execute(text("SELECT MIN(loan_id) FROM funder_positions")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO funder_flows (business_date, loan_id, funder_id, flow, amount_fen,"
                " source) VALUES (:d, :l, :f, 'interest', 5, 'forged:2')"
            ),
            {"d": open_date, "l": loan_id, "f": BANK},
        )
    assert not any("flows vs GL" in d.check for d in both(engine, running))
    close_through(SqlCloseStore(engine), open_date)  # the close posts the day's flows: it ties
    assert both(engine, running) == []


def test_a_position_zeroed_while_its_flows_are_not_is_caught(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    """The running check reads only the positions not zero, and looks up the zero ones
    whose flows do not sum to zero: a position wiped to zero is still caught, a zero
    position of a loan with no open flows is never a difference."""
    running = grow(engine, catalog, repo)
    with engine.begin() as conn:
        loan_id = conn.execute(text("SELECT MAX(loan_id) FROM funder_positions")).scalar_one()
        conn.execute(
            text("UPDATE funder_positions SET principal_fen = 0 WHERE loan_id = :l"),
            {"l": loan_id},
        )
    found = {d.check for d in both(engine, running)}
    assert {f"loan {loan_id} funder {f}: position vs its flows" for f in SHARES} <= found
    with engine.begin() as conn:  # the flows brought to zero too: the positions tie again
        for funder in SHARES:
            owed = running.positions[(loan_id, funder)]
            conn.execute(
                text(
                    "INSERT INTO funder_flows (business_date, loan_id, funder_id, flow,"
                    " amount_fen, source) VALUES (:d, :l, :f, 'principal', :n, :s)"
                ),
                {"d": date(2026, 5, 2), "l": loan_id, "f": funder, "n": owed, "s": f"z:{funder}"},
            )
    found = {d.check for d in both(engine, running)}
    assert not any(c.startswith(f"loan {loan_id} funder") for c in found)

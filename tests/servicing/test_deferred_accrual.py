"""A close that defers writing accruals (`SqlCloseStore(defer_accrual=True)`) is exactly the
daily close: two books given the same loans, payments, prepayments, a payoff and a
reversal, one closed daily and one deferring, agree after every close on every loan as read,
every journal line and every portfolio snapshot, and on each month-end on every row of the
loan table. Mid-month their stored rows differ (the deferring book did defer).

The accrual rule the loan reads add (`accrued_through`, in Python) is the close's own
(`ACCRUAL_TARGET`, in SQL): a property over periods, days and rounding modes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from lendstack.core.money import Rounding, from_fen
from lendstack.servicing.cob import CobStep, close_day
from lendstack.servicing.domain.loan import AccrualPeriod, accrued_share
from lendstack.servicing.domain.schedule import PrepaymentMode
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.cob import ACCRUAL_TARGET, STEP_SQL, CarriedAccrual
from lendstack.storage.month_end import is_month_end
from migration_checks import assert_index_migrates_down_and_up

START = date(2026, 1, 20)
DAYS = 130  # through four month-ends, and the loan never paid past 90 days (non-accrual)

_JOURNAL = (
    "SELECT e.reference, e.business_date, l.account, l.loan_id, l.funder_id, l.debit_fen,"
    " l.credit_fen FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id"
    " ORDER BY e.reference, l.account, l.loan_id, l.debit_fen, l.credit_fen"
)
_SNAPSHOTS = (
    "SELECT business_date, product_id, bucket, risk_class, loans, principal_fen, interest_fen,"
    " fee_fen, penalty_fen FROM portfolio_snapshots"
    " ORDER BY business_date, product_id, bucket, risk_class"
)
_SNAPSHOTS_BEFORE = _SNAPSHOTS.replace(" ORDER BY", " WHERE business_date < :day ORDER BY")
_SNAPSHOTS_OF = _SNAPSHOTS.replace(" ORDER BY", " WHERE business_date = :day ORDER BY")
_STEPS = "SELECT business_date, step, rows FROM cob_steps ORDER BY business_date, step"
_STORED = "SELECT id, bal_interest, period_accrued FROM loans ORDER BY id"


def _carried_sums(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, Any]]:
    """(day, sums) of each time a close brought carried accrual sums up to date."""
    calls: list[tuple[int, Any]] = []
    real = CarriedAccrual.sums_now

    def spied(self: CarriedAccrual, conn: Any) -> Any:
        sums = real(self, conn)
        calls.append((self.day, sums))
        return sums

    monkeypatch.setattr(CarriedAccrual, "sums_now", spied)
    return calls


def _loan_rows(book: Any) -> list[tuple[object, ...]]:
    """Every loan row, every column but the time it was written."""
    with book.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM loans ORDER BY id")
        names = list(rows.keys())
        return [tuple(v for n, v in zip(names, r, strict=True) if n != "created_at") for r in rows]


def _owed(book: Any, loan_id: int) -> Decimal:
    """What the loan's billed installments and penalty ask for today."""
    loan = book.loan(loan_id)
    return sum((i.unpaid for i in loan.installments if i.billed), loan.balances.penalty)


class Twins:
    """Two books driven alike: one closed daily, one deferring its accruals and, on SQLite,
    reading its snapshots aside (written at the next close)."""

    def __init__(self, daily: Any, deferring: Any) -> None:
        self.aside = deferring.engine.dialect.name == "sqlite"
        deferring.store = SqlCloseStore(deferring.engine, defer_accrual=True, read_aside=self.aside)
        self.books = (daily, deferring)
        self.ids: dict[str, int] = {}
        self.paid: dict[str, int] = {}

    def book(self, name: str, *args: Any, **kw: str) -> None:
        ids = {b.book(*args, **kw).id for b in self.books}
        assert len(ids) == 1
        self.ids[name] = ids.pop()

    def pay(
        self, name: str, amount: Decimal, on: date, prepay: PrepaymentMode | None = None
    ) -> None:
        ids = {b.pay(self.ids[name], amount, on, f"{name}:{on}", prepay).id for b in self.books}
        assert len(ids) == 1
        self.paid[name] = ids.pop()

    def pay_owed(self, name: str, on: date) -> None:
        owed = {_owed(b, self.ids[name]) for b in self.books}
        assert len(owed) == 1
        self.pay(name, owed.pop(), on)

    def reverse(self, name: str, on: date) -> None:
        for b in self.books:
            b.reverse(self.paid[name], on)

    def close(self, day: date) -> None:
        for b in self.books:
            close_day(b.store, day)


def _plan(twins: Twins) -> dict[int, Callable[[date], None]]:
    """What happens on given days before the close, by day number from START."""
    return {
        0: lambda on: _book_all(twins, on),
        10: lambda on: twins.pay("shorter", Decimal("2000"), on, PrepaymentMode.SHORTEN_TERM),
        12: lambda on: twins.pay("payoff", _payoff(twins, on), on, PrepaymentMode.SHORTEN_TERM),
        25: lambda on: twins.book("late-booked", "cash-loan-installment", "8000", 6, "0.18", on),
        40: lambda on: twins.pay("partial", Decimal("150"), on),  # credit, then owed
    }


def _behave(twins: Twins, on: date, reversal: dict[str, date]) -> None:
    """Borrowers' habits, before each day's close: one pays each bill the day after it comes,
    one five days late, and one pays its first bill, which is reversed three days later."""
    daily = twins.books[0]
    if _owed(daily, twins.ids["regular"]):
        twins.pay_owed("regular", on)
    slow = daily.loan(twins.ids["slow"])
    if any(
        i.billed and i.unpaid and i.due_date <= on - timedelta(days=5) for i in slow.installments
    ):
        twins.pay_owed("slow", on)
    late = twins.ids.get("late-booked")
    if late is not None and "late-booked" not in reversal and _owed(daily, late):
        twins.pay_owed("late-booked", on)
        reversal["late-booked"] = on + timedelta(days=3)
    if reversal.get("late-booked") == on:
        twins.reverse("late-booked", on)


def _book_all(twins: Twins, on: date) -> None:
    twins.book("regular", "cash-loan-installment", "12000", 12, "0.18", on)
    twins.book("shorter", "consumer-loan-equal-principal", "9000", 6, "0.155", on)
    twins.book("slow", "huabei-installment", "3000", 6, None, on, fee_rate="0.006")
    twins.book("never", "cash-loan-installment", "20000", 12, "0.24", on)
    twins.book("payoff", "short-term-bullet", "5000", 1, "0.18", on)
    twins.book("partial", "business-loan-interest-first", "30000", 6, "0.12", on)


def _payoff(twins: Twins, on: date) -> Decimal:
    from lendstack.servicing.services import quote_payoff

    quotes = {quote_payoff(b.uow(), twins.ids["payoff"], on).total for b in twins.books}
    assert len(quotes) == 1
    return quotes.pop()


def test_a_deferring_close_keeps_the_books_of_a_daily_close(
    book, second_engine, catalog, monkeypatch
):
    daily, deferring = book, type(book)(second_engine, catalog)  # the same driver, alike
    twins = Twins(daily, deferring)
    carried = _carried_sums(monkeypatch)
    closing: list[bool] = [False]
    commits_pinned: list[bool] = []
    if twins.aside:  # the reads' moment is let go before a close commits (the log restarts)
        reader, close = deferring.store._aside.reader, deferring.store.close

        def watched(*args: Any) -> Any:
            closing[0] = True
            try:
                return close(*args)
            finally:
                closing[0] = False

        deferring.store.close = watched
        event.listen(
            deferring.engine,
            "commit",
            lambda _: closing[0] and commits_pinned.append(reader.pinned),
        )
    plan, reversal = _plan(twins), {}
    deferred_rows = 0
    for n in range(DAYS):
        day = START + timedelta(days=n)
        if n in plan:
            plan[n](day)
        if n:
            _behave(twins, day, reversal)
        twins.close(day)
        assert {i: daily.loan(i) for i in twins.ids.values()} == {
            i: deferring.loan(i) for i in twins.ids.values()
        }, day
        assert daily.rows(_JOURNAL) == deferring.rows(_JOURNAL), day
        if twins.aside:  # the day's snapshot is not written yet, the day before's is
            assert deferring.rows(_SNAPSHOTS_OF, {"day": day}) == [], day
            assert daily.rows(_SNAPSHOTS_BEFORE, {"day": day}) == deferring.rows(
                _SNAPSHOTS_BEFORE, {"day": day}
            ), day
        if is_month_end(day):
            deferring.store.flush()  # as a run's store is finished at each month-end
            assert daily.rows(_SNAPSHOTS) == deferring.rows(_SNAPSHOTS), day
            assert _loan_rows(daily) == _loan_rows(deferring), day
            deferring.assert_ties()
        else:
            deferred_rows += sum(
                a != b for a, b in zip(daily.rows(_STORED), deferring.rows(_STORED), strict=True)
            )
    deferring.store.finish()
    assert daily.rows(_STEPS) == deferring.rows(_STEPS)
    if twins.aside:  # carried into every close but the first and each after a month-end's
        # flush, and on month-ends checked against the book's sums
        days = [START + timedelta(days=n) for n in range(1, DAYS)]
        expected = [d for d in days if not is_month_end(d - timedelta(days=1))]
        epoch = date(1970, 1, 1).toordinal()
        assert [day for day, _ in carried] == [d.toordinal() - epoch for d in expected]
        assert any(True in sums for _, sums in carried)  # non-accrual loans carried too
        assert commits_pinned
        assert not any(commits_pinned)
    assert deferred_rows > 0  # the deferring book left rows unwritten between month-ends
    assert "late-booked" in reversal  # the habits ran: a bill came, was paid and reversed
    daily.assert_ties()


@given(
    interest=st.integers(0, 10**9),
    start=st.integers(20_000, 20_400),
    length=st.integers(1, 62),
    elapsed=st.integers(-3, 70),
    rounding=st.sampled_from(list(Rounding)),
)
def test_a_loan_read_accrues_by_the_rule_of_the_close(interest, start, length, elapsed, rounding):
    """`accrued_share` (Python, for loans read) and `ACCRUAL_TARGET` (SQL, the close) agree."""
    due, day = start + length, start + elapsed
    with sqlite3.connect(":memory:") as conn:
        conn.execute(
            "CREATE TABLE loans (period_interest, period_start, period_due, rounding TEXT)"
        )
        conn.execute(
            "INSERT INTO loans VALUES (?, ?, ?, ?)", (interest, start, due, rounding.value)
        )
        (sql,) = conn.execute(f"SELECT {ACCRUAL_TARGET} FROM loans", {"d": day}).fetchone()
    if day <= start:
        return  # the close accrues only after a period's start (`ACCRUING`)
    period = AccrualPeriod(1, date.fromordinal(start), date.fromordinal(due), from_fen(interest))
    days = (period.due - period.start).days
    assert from_fen(sql) == accrued_share(period.interest, elapsed, days, rounding)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_mark_of_written_rows_migrates_down_and_up(engine):
    assert_index_migrates_down_and_up(engine, "ix_loans_accrual_dirty", "0022")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_month_end_checks_the_carried_accrual_against_the_book(book):
    """Carried accrual relies on every changed row being marked. A month-end sums the book
    anyway and checks the carried sums against it: a row changed behind the store's back
    (its period's interest) since the last close is caught and the cause named. (One changed
    earlier in the month shows where a deferred close's does: the month-end reconcile.)"""
    book.store = SqlCloseStore(book.engine, defer_accrual=True, read_aside=True)
    loan = book.book("cash-loan-installment", "12000", 12, "0.18", date(2026, 3, 20))
    book.close_through(date(2026, 3, 30))
    with book.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE loans SET period_interest = period_interest + 5000 WHERE id = ?", (loan.id,)
        )
    with pytest.raises(RuntimeError, match="without marking it accrual_dirty"):
        book.close_through(date(2026, 3, 31))
    book.store.finish()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_failed_close_keeps_the_snapshot_read_aside_for_the_next(book, monkeypatch):
    """The close after a day writes that day's snapshot; if it fails and rolls back, the
    snapshot is kept and written by the close that follows, once."""
    book.store = SqlCloseStore(book.engine, defer_accrual=True, read_aside=True)
    book.book("cash-loan-installment", "12000", 12, "0.18", date(2026, 3, 20))
    book.close_through(date(2026, 3, 22))
    billing = STEP_SQL[CobStep.BILLING]

    def broken(*args: Any, **kw: Any) -> int:
        raise RuntimeError("billing failed")

    monkeypatch.setitem(STEP_SQL, CobStep.BILLING, broken)
    with pytest.raises(RuntimeError, match="billing failed"):
        book.close_through(date(2026, 3, 23))
    assert book.rows(_SNAPSHOTS_OF, {"day": date(2026, 3, 22)}) == []  # rolled back with it
    monkeypatch.setitem(STEP_SQL, CobStep.BILLING, billing)
    book.close_through(date(2026, 3, 24))
    book.store.finish()
    days = book.rows("SELECT business_date, COUNT(*) FROM portfolio_snapshots GROUP BY 1")
    assert [d for d, n in days] == ["2026-03-20", "2026-03-21", "2026-03-22", "2026-03-23",
                                    "2026-03-24"]  # fmt: skip
    assert all(n == days[0][1] for _, n in days)
    steps = book.rows("SELECT COUNT(*) FROM cob_steps WHERE step = 'snapshot'")
    assert steps == [(5,)]

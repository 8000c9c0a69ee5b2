"""Booking's exposure read: the last close's `funder_exposures` rows plus the flows since.

Right after a close it equals the report's exact scan; between closes it never understates a
balance (only increases are added, payments are not subtracted) and its allocations stay exact.
Booking re-checks the quotas under a per-funder row lock, so concurrent bookings on PostgreSQL
cannot both take the last of a quota.
"""

from __future__ import annotations

import tempfile
import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from lendstack.core.errors import Conflict, ValidationError
from lendstack.core.money import from_fen
from lendstack.funding import Exposure, split
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan, take_payment
from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.schedule import PrepaymentMode
from lendstack.servicing.services import reverse_payment
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.schema import funder_exposures, funder_flows, funder_positions, loans

from .conftest import funder, platform

DAY = date(2026, 3, 2)
BANK = "big-state-bank"
PLANS = (
    {"platform": Decimal("0.3"), BANK: Decimal("0.7")},
    {"platform": Decimal("0.3333"), "harbour-joint-stock": Decimal("0.6667")},
    {"platform": Decimal("0.4"), BANK: Decimal("0.3"), "harbour-joint-stock": Decimal("0.3")},
)


def book(engine: Engine, catalog: ProductCatalog, amount: str, on: date, plan: int) -> int:
    request = LoanRequest("cash-loan-installment", Decimal(amount), 12, Decimal("0.18"), on)
    loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
    SqlFunding(engine).record_plan(engine, loan_id, PLANS[plan])
    return loan_id


def prepay(engine: Engine, loan_id: int, amount: str, on: date, key: str) -> int:
    payment = Payment(loan_id, Decimal(amount), on, key, PrepaymentMode.SHORTEN_TERM)
    return take_payment(SqlUnitOfWork(engine), payment).id


def close(engine: Engine, day: date, carry: bool = False) -> None:
    close_through(SqlCloseStore(engine, carry_exposures=carry), day)


def positions(engine: Engine) -> dict[str, Decimal]:
    """Σ of each funder's positions in open loans, straight from the table (not the code)."""
    query = (
        select(funder_positions.c.funder_id, func.sum(funder_positions.c.principal_fen))
        .join(loans, loans.c.id == funder_positions.c.loan_id)
        .where(loans.c.status.in_(("approved", "active")))
        .group_by(funder_positions.c.funder_id)
    )
    with engine.connect() as conn:
        return {f: from_fen(int(fen)) for f, fen in conn.execute(query)}


def disbursed(engine: Engine, on: date | None = None) -> dict[str, Decimal]:
    """Σ of each funder's disbursement parts (on `on` only, if given), from the raw flows."""
    query = select(funder_flows.c.funder_id, func.sum(funder_flows.c.amount_fen)).where(
        funder_flows.c.flow == "disbursement"
    )
    if on is not None:
        query = query.where(funder_flows.c.business_date == on)
    with engine.connect() as conn:
        rows = conn.execute(query.group_by(funder_flows.c.funder_id))
        return {f: from_fen(int(fen)) for f, fen in rows}


def exact(engine: Engine, as_of: date) -> dict[str, Exposure]:
    """The report's exposures: its exact scan of the planned book."""
    return {p.funder.id: p.exposure for p in SqlFunding(engine).exposures(as_of).partners}


def zero() -> Decimal:
    return Decimal("0.00")


def test_right_after_a_close_the_read_equals_the_book(
    engine: Engine, catalog: ProductCatalog
) -> None:
    SqlFunding(engine).import_builtin()
    first = book(engine, catalog, "12000.00", DAY, 0)
    book(engine, catalog, "5000.03", DAY, 1)
    book(engine, catalog, "7777.77", DAY, 2)
    prepay(engine, first, "2041.41", DAY, "p1")
    close(engine, DAY)

    opened = DAY + timedelta(days=1)
    read = SqlFunding(engine).exposure_map(opened)
    held, granted = positions(engine), disbursed(engine)
    for funder_id, exposure in read.items():
        assert exposure.balance == held.get(funder_id, zero())
        assert exposure.total_allocated == granted.get(funder_id, zero())
        assert exposure.today == zero()
    assert read == exact(engine, opened)
    assert read[BANK].balance < read[BANK].total_allocated  # the prepayment is in the balance
    with engine.connect() as conn:
        stamped = set(conn.execute(select(funder_exposures.c.closed_on)).scalars())
    assert stamped == {DAY}


def test_between_closes_payments_are_not_subtracted_but_increases_are_added(
    engine: Engine, catalog: ProductCatalog
) -> None:
    repo = SqlFunding(engine)
    repo.import_builtin()
    first = book(engine, catalog, "12000.00", DAY, 0)
    prepay(engine, first, "3000.00", DAY, "before-close")
    close(engine, DAY)

    opened = DAY + timedelta(days=1)
    at_close = repo.exposure_map(opened)
    second = book(engine, catalog, "10000.00", opened, 0)
    prepay(engine, second, "5000.00", opened, "after-close")
    read = repo.exposure_map(opened)
    part = split(Decimal("10000.00"), PLANS[0])[BANK]
    assert read[BANK].balance == at_close[BANK].balance + part  # the payment is not subtracted
    assert read[BANK].balance > positions(engine)[BANK]
    assert read[BANK].today == part == disbursed(engine, opened)[BANK]
    assert read[BANK].total_allocated == disbursed(engine)[BANK]

    before = positions(engine)
    paid = repo.buyback(first, BANK, opened)  # the platform's position grows by the bank's
    assert positions(engine)["platform"] - before["platform"] == paid > 0
    bought = repo.exposure_map(opened)
    assert bought["platform"].balance == read["platform"].balance + paid
    assert bought[BANK] == read[BANK]  # a decrease waits for the close

    close(engine, opened)
    after = opened + timedelta(days=1)
    assert repo.exposure_map(after) == exact(engine, after)
    assert repo.exposure_map(after)[BANK].balance == positions(engine)[BANK]


def test_a_book_never_closed_counts_its_flows(engine: Engine, catalog: ProductCatalog) -> None:
    SqlFunding(engine).import_builtin()
    assert all(e == Exposure() for e in SqlFunding(engine).exposure_map(DAY).values())
    book(engine, catalog, "6000.00", DAY, 0)
    later = DAY + timedelta(days=3)
    book(engine, catalog, "4000.00", later, 0)
    shares = PLANS[0]
    on_day, on_later = split(Decimal("6000.00"), shares), split(Decimal("4000.00"), shares)
    read = SqlFunding(engine).exposure_map(DAY)
    assert read[BANK] == Exposure(on_day[BANK], on_day[BANK], on_day[BANK])  # later: not yet
    read = SqlFunding(engine).exposure_map(later)
    total = on_day[BANK] + on_later[BANK]
    assert read[BANK] == Exposure(total, on_later[BANK], total)
    assert read == exact(engine, later)


def test_a_closed_date_is_read_exactly(engine: Engine, catalog: ProductCatalog) -> None:
    SqlFunding(engine).import_builtin()
    loan_id = book(engine, catalog, "6000.00", DAY, 0)
    close(engine, DAY)
    prepay(engine, loan_id, "2000.00", DAY + timedelta(days=1), "p")
    assert SqlFunding(engine).exposure_map(DAY) == exact(engine, DAY)
    assert SqlFunding(engine).exposure_map(DAY)[BANK].balance == positions(engine)[BANK]


def test_a_partner_added_after_the_close_starts_from_nothing(
    engine: Engine, catalog: ProductCatalog
) -> None:
    repo = SqlFunding(engine)
    repo.import_builtin()
    book(engine, catalog, "6000.00", DAY, 0)
    close(engine, DAY)
    repo.add(funder("late-bank"))
    assert repo.exposure_map(DAY + timedelta(days=1))["late-bank"] == Exposure()


def test_the_migration_fills_the_rows_of_a_closed_book(
    engine: Engine, catalog: ProductCatalog
) -> None:
    from alembic import command

    from lendstack.storage.db import _alembic_config

    SqlFunding(engine).import_builtin()
    first = book(engine, catalog, "12000.00", DAY, 0)
    close(engine, DAY)
    opened = DAY + timedelta(days=1)
    book(engine, catalog, "5000.00", opened, 0)
    prepay(engine, first, "3000.00", opened, "p")
    command.downgrade(_alembic_config(engine), "0016")
    migrate(engine)

    with engine.connect() as conn:
        stamped = dict(
            conn.execute(select(funder_exposures.c.funder_id, funder_exposures.c.closed_on)).all()
        )
    assert set(stamped.values()) == {DAY}
    assert len(stamped) == 4
    read, truth = SqlFunding(engine).exposure_map(opened), exact(engine, opened)
    for funder_id, exposure in read.items():
        assert exposure.balance >= truth[funder_id].balance
        assert exposure.total_allocated == truth[funder_id].total_allocated
        assert exposure.today == truth[funder_id].today
    close(engine, opened)
    after = opened + timedelta(days=1)
    assert SqlFunding(engine).exposure_map(after) == exact(engine, after)


def test_booking_refuses_a_plan_over_a_quota_and_writes_nothing(
    engine: Engine, catalog: ProductCatalog
) -> None:
    repo = SqlFunding(engine)
    repo.add(platform())
    repo.add(funder("tight-bank", daily=Decimal("10000.00")))
    shares = {"platform": Decimal("0.3"), "tight-bank": Decimal("0.7")}
    request = LoanRequest("cash-loan-installment", Decimal("10000.00"), 12, Decimal("0.18"), DAY)
    first = book_loan(SqlUnitOfWork(engine), catalog, request).id
    second = book_loan(SqlUnitOfWork(engine), catalog, request).id
    repo.record_plan(engine, first, shares)  # 7,000 of 10,000 today
    with pytest.raises(Conflict) as caught:
        repo.record_plan(engine, second, shares)  # another 7,000: over the daily quota
    assert caught.value.field == "funding"
    assert "tight-bank" in str(caught.value)
    assert repo.plan(second) == {}
    assert disbursed(engine)["tight-bank"] == Decimal("7000.00")


def test_a_batch_sees_its_own_earlier_plans(engine: Engine, catalog: ProductCatalog) -> None:
    repo = SqlFunding(engine)
    repo.add(platform())
    repo.add(funder("tight-bank", daily=Decimal("15000.00")))
    shares = {"platform": Decimal("0.3"), "tight-bank": Decimal("0.7")}
    request = LoanRequest("cash-loan-installment", Decimal("10000.00"), 12, Decimal("0.18"), DAY)
    first, second, third = (book_loan(SqlUnitOfWork(engine), catalog, request).id for _ in "abc")
    with engine.begin() as conn:  # 7,000 each: the second fits, the third would not
        repo.record_plans(conn, [(first, shares, {}), (second, shares, {})])
    with pytest.raises(Conflict) as caught, engine.begin() as conn:
        repo.record_plans(conn, [(third, shares, {})])
    assert caught.value.field == "funding"
    assert disbursed(engine)["tight-bank"] == Decimal("14000.00")

    wider = {"platform": Decimal("1")}
    with pytest.raises(Conflict) as twice, engine.begin() as conn:
        repo.record_plans(conn, [(third, wider, {}), (third, wider, {})])
    assert twice.value.field == "loan_id"
    assert repo.plan(third) == {}


def test_concurrent_bookings_cannot_both_take_the_last_of_a_quota(
    engine: Engine, catalog: ProductCatalog
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers anyway")
    repo = SqlFunding(engine)
    repo.add(platform())
    repo.add(funder("tight-bank", daily=Decimal("10000.00")))
    shares = {"platform": Decimal("0.3"), "tight-bank": Decimal("0.7")}
    request = LoanRequest("cash-loan-installment", Decimal("10000.00"), 12, Decimal("0.18"), DAY)
    first = book_loan(SqlUnitOfWork(engine), catalog, request).id
    second = book_loan(SqlUnitOfWork(engine), catalog, request).id
    outcome: list[BaseException | None] = []

    def book_second() -> None:
        try:
            repo.record_plan(engine, second, shares)
            outcome.append(None)
        except Conflict as exc:
            outcome.append(exc)

    with engine.begin() as conn:
        repo.record_plan(conn, first, shares)  # holds the funders' rows until it commits
        racer = threading.Thread(target=book_second)
        racer.start()
        racer.join(timeout=1.0)
        assert racer.is_alive(), "the second booking did not wait for the first"
    racer.join(timeout=10.0)
    assert not racer.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], Conflict)
    assert repo.plan(second) == {}
    assert disbursed(engine)["tight-bank"] == Decimal("7000.00")


# --- the invariant, over random days of bookings, prepayments, reversals and closes --------


@dataclass
class _Book:
    engine: Engine
    day: date
    loans: list[int]
    payments: list[int]
    carry: bool = False
    """Close as the simulator does, each funder's balance carried by the flows since."""


def _step(book_: _Book, catalog: ProductCatalog, op: tuple[str, int, int]) -> None:
    kind, amount, pick = op
    if kind == "book":
        book_.loans.append(book(book_.engine, catalog, f"{amount}.00", book_.day, pick % 3))
    elif kind == "pay" and book_.loans:
        loan_id = book_.loans[pick % len(book_.loans)]
        key = f"k{len(book_.payments)}-{book_.day}"
        with suppress(Conflict, ValidationError):  # paid off already, or more than it owes
            book_.payments.append(
                prepay(book_.engine, loan_id, f"{amount // 4}.00", book_.day, key)
            )
    elif kind == "reverse" and book_.payments:
        undone = book_.payments.pop(pick % len(book_.payments))
        with suppress(Conflict, ValidationError):  # a prepayment of an earlier day
            reverse_payment(SqlUnitOfWork(book_.engine), undone, book_.day)
    elif kind == "close":
        close(book_.engine, book_.day, book_.carry)
        book_.day += timedelta(days=1)


OPS = st.lists(
    st.tuples(
        st.sampled_from(("book", "book", "pay", "pay", "reverse", "close")),
        st.integers(1000, 20000),
        st.integers(0, 50),
    ),
    min_size=1,
    max_size=12,
)


@pytest.mark.slow
@pytest.mark.parametrize("carry", [False, True], ids=["summed", "carried"])
@settings(max_examples=15)
@given(ops=OPS)
def test_the_read_never_understates_and_is_exact_after_each_close(
    catalog: ProductCatalog, carry: bool, ops: list[tuple[str, int, int]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'book.db'}")
        migrate(engine)
        SqlFunding(engine).import_builtin()
        state = _Book(engine, DAY, [], [], carry)
        for op in ops:
            _step(state, catalog, op)
            read = SqlFunding(engine).exposure_map(state.day)
            truth = exact(engine, state.day)
            for funder_id, exposure in read.items():
                assert exposure.balance >= truth[funder_id].balance
                assert exposure.today == truth[funder_id].today
                assert exposure.total_allocated == truth[funder_id].total_allocated
            if op[0] == "close":
                assert read == truth
        engine.dispose()


def test_a_batch_breaking_a_quota_with_its_own_plans_writes_none(
    engine: Engine, catalog: ProductCatalog
) -> None:
    """Within one batch the third 7,000 part takes the bank past its 15,000 a day because of
    the two before it: the batch is refused whole."""
    repo = SqlFunding(engine)
    repo.add(platform())
    repo.add(funder("tight-bank", daily=Decimal("15000.00")))
    shares = {"platform": Decimal("0.3"), "tight-bank": Decimal("0.7")}
    request = LoanRequest("cash-loan-installment", Decimal("10000.00"), 12, Decimal("0.18"), DAY)
    loans = [book_loan(SqlUnitOfWork(engine), catalog, request).id for _ in "abc"]
    with pytest.raises(Conflict) as caught, engine.begin() as conn:
        repo.record_plans(conn, [(loan, shares, {}) for loan in loans])
    assert "tight-bank" in str(caught.value)
    assert all(repo.plan(loan) == {} for loan in loans)
    with engine.begin() as conn:  # the first two alone fit
        repo.record_plans(conn, [(loan, shares, {}) for loan in loans[:2]])
    assert disbursed(engine)["tight-bank"] == Decimal("14000.00")

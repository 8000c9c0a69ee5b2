"""`record_promises` (the simulator's month-end batch) is `record_promise` for each promise in
order, in one transaction: the same rows, the same refusals with the same messages, and a
promise sees those before it in the batch."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text

from lendstack.core.errors import Conflict, NotFound, ValidationError
from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.domain.schedule import PrepaymentMode
from lendstack.servicing.services import LoanRequest, Payment, book_loan, quote_payoff, take_payment
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.collections import Promise, record_promise, record_promises
from lendstack.storage.repositories import SqlUnitOfWork

BOOKED = date(2026, 1, 31)
CLOSED = date(2026, 3, 20)
ON = CLOSED + timedelta(days=1)
DUE = ON + timedelta(days=4)


@pytest.fixture
def book(engine: Engine, catalog: ProductCatalog) -> dict[str, int]:
    """Two loans in arrears, one paid off; closed through CLOSED."""
    ids = {}
    for name, amount in (("big", "12000"), ("small", "3000"), ("paid", "2000")):
        request = LoanRequest("cash-loan-installment", Decimal(amount), 12, Decimal("0.18"), BOOKED)
        ids[name] = book_loan(SqlUnitOfWork(engine), catalog, request).id
    on = BOOKED + timedelta(days=10)
    close_through(SqlCloseStore(engine), on - timedelta(days=1))
    quote = quote_payoff(SqlUnitOfWork(engine), ids["paid"], on)
    payoff = Payment(ids["paid"], quote.total, on, "payoff", PrepaymentMode.SHORTEN_TERM)
    take_payment(SqlUnitOfWork(engine), payoff)
    close_through(SqlCloseStore(engine), CLOSED)
    return ids


def stored(engine: Engine) -> list[tuple[int, int, int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, loan_id, amount_fen, status FROM promises_to_pay ORDER BY id")
        ).all()
    return [(int(i), int(loan), int(fen), str(s)) for i, loan, fen, s in rows]


def refusal(engine: Engine, loan_id: int, amount: str, due: date) -> tuple[type, str]:
    """What `record_promise` alone raises for the promise."""
    with pytest.raises((Conflict, ValidationError)) as caught:
        record_promise(engine, loan_id, Decimal(amount), due, ON)
    return type(caught.value), str(caught.value)


def test_a_batch_is_each_promise_in_turn(engine: Engine, book: dict[str, int]) -> None:
    big, small, paid = book["big"], book["small"], book["paid"]
    wanted = [
        (big, Decimal("10.00"), DUE),
        (paid, Decimal("10.00"), DUE),  # closed loan
        (small, Decimal("99999.00"), DUE),  # more than it owes
        (small, Decimal("10.00"), CLOSED),  # a closed date
        (small, Decimal("10.00"), ON),  # due the day it is made
        (big, Decimal("20.00"), DUE),  # the first one is open now
    ]
    results = record_promises(engine, wanted, ON)
    rows = stored(engine)
    assert [(loan, fen) for _, loan, fen, _ in rows] == [(big, 1000), (small, 1000)]
    made = [r for r in results if isinstance(r, Promise)]
    assert [(p.id, p.loan_id, p.amount, p.promised_on, p.due_date) for p in made] == [
        (rows[0][0], big, Decimal("10.00"), ON, DUE),
        (rows[1][0], small, Decimal("10.00"), ON, ON),
    ]
    refused = [(type(r), str(r)) for r in results if not isinstance(r, Promise)]
    assert refused == [
        refusal(engine, paid, "10.00", DUE),
        refusal(engine, small, "99999.00", DUE),
        refusal(engine, small, "10.00", CLOSED),
        refusal(engine, big, "20.00", DUE),  # names the promise made in the batch
    ]
    assert f"open promise {rows[0][0]}" in refused[-1][1]
    assert stored(engine) == rows


def test_an_unknown_loan_writes_nothing(engine: Engine, book: dict[str, int]) -> None:
    with pytest.raises(NotFound):
        record_promises(
            engine, [(book["big"], Decimal("10.00"), DUE), (424242, Decimal("1"), DUE)], ON
        )
    assert stored(engine) == []
    assert record_promises(engine, [], ON) == []

"""A small book built through the real services, for the ECL and stress tests over storage.

Three 12-month cash loans booked on 2026-01-05 (first due 2026-02-05): one pays every
installment the day after it falls due, one pays the first two and stops, one never pays.
On 2026-05-15 they are current, 40 days past due (stage 2) and 99 days past due and in
non-accrual (stage 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from lendstack.servicing import (
    LoanRequest,
    LoanState,
    Payment,
    ProductCatalog,
    book_loan,
    take_payment,
)
from lendstack.servicing.cob import close_through
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.repositories import SqlUnitOfWork

BOOKED = date(2026, 1, 5)
AS_OF = date(2026, 5, 15)
PRODUCT = "cash-loan-installment"


@dataclass(frozen=True)
class Book:
    current: LoanState
    late: LoanState
    defaulted: LoanState


def book(
    engine: Engine, catalog: ProductCatalog, amount: str = "12000.00", start: date = BOOKED
) -> LoanState:
    request = LoanRequest(PRODUCT, Decimal(amount), 12, Decimal("0.18"), start)
    return book_loan(SqlUnitOfWork(engine), catalog, request)


def close(engine: Engine, through: date) -> None:
    close_through(SqlCloseStore(engine), through)


def pay_installment(engine: Engine, loan: LoanState, number: int) -> None:
    """Pay installment `number` in full the day after its due date (inside the grace days)."""
    item = loan.installments[number - 1]
    day = item.due_date + timedelta(days=1)
    close(engine, day - timedelta(days=1))
    amount = item.principal + item.interest + item.fee
    take_payment(SqlUnitOfWork(engine), Payment(loan.id, amount, day, f"{loan.id}-{number}"))


def three_loans(engine: Engine, catalog: ProductCatalog, through: date = AS_OF) -> Book:
    """The three loans, closed through `through` (paying what falls due by then)."""
    current, late, defaulted = (book(engine, catalog) for _ in range(3))
    for number, item in enumerate(current.installments, start=1):
        if item.due_date + timedelta(days=1) > through:
            break
        if number <= 2:
            pay_installment(engine, late, number)
        pay_installment(engine, current, number)
    close(engine, through)
    return Book(current, late, defaulted)

"""A small book serviced through the real services and the real close, for the panel tests.

Seven loans, each with a story the month-end rows must tell. The cash loans are 6-month
equal-installment loans of 10,000.00 at 18 % (grace 3 days), booked 2026-01-15, so installment
k falls due on the 15th of month k+1 and DPD counts from the 19th.

| loan | story |
|---|---|
| good | pays everything owed the day after each due date |
| payoff | a 1-month bullet, paid off on 2026-02-16 |
| never | never pays: M1 13 DPD in February, M2 44 in March, M3 74 in April; FPD from 2026-03-17 |
| late | pays installments 1-2 on 2026-03-20 (33 DPD: FPD although current at the March end) |
| written | a product charging off at 35 DPD, never pays: CO on 2026-03-22 |
| february | booked 2026-02-10 (the February cohort), never pays: installment 1 due 2026-03-10 |
| reversed | a 1-month bullet paid off on 2026-02-16; the payoff is reversed on 2026-04-05 |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from lendstack.core.money import ZERO
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan, take_payment
from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.payments import owed_by_component
from lendstack.servicing.services import get_loan, reverse_payment
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.repositories import SqlUnitOfWork

START = date(2026, 1, 15)
FEBRUARY = date(2026, 2, 10)
REVERSAL = date(2026, 4, 5)
FAST = "fast-charge-off"

FAST_PRODUCT = """
id = "fast-charge-off"
name = "Cash loan charged off at 35 DPD (tests)"
description = "The cash loan with an early charge-off."
method = "equal-installment"
terms_allowed = [6]
rate_min = 0.072
rate_max = 0.24
amount_min = 500
amount_max = 200000
day_count = "ACT/365F"
rounding = "half-up"
grace_days = 3
penalty_multiplier = 1.5
non_accrual_dpd = 20
charge_off_dpd = 35
"""


def catalog_with_fast_charge_off(directory: Path) -> ProductCatalog:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fast.toml").write_text(FAST_PRODUCT, encoding="utf-8")
    return ProductCatalog(directory)


@dataclass
class Book:
    engine: Engine
    catalog: ProductCatalog
    ids: dict[str, int]
    reversed_payment: int = 0

    def close(self, through: date) -> None:
        close_through(SqlCloseStore(self.engine), through)

    def pay_owed(self, name: str, on: date) -> int:
        """Close through the day before, then pay everything billed and owed on `on`."""
        self.close(on - timedelta(days=1))
        loan_id = self.ids[name]
        owed = sum(
            owed_by_component(get_loan(SqlUnitOfWork(self.engine), loan_id), on).values(), ZERO
        )
        assert owed > ZERO, (name, on)
        payment = Payment(loan_id, owed, on, f"{name}:{on}")
        return take_payment(SqlUnitOfWork(self.engine), payment).id


def _book(engine: Engine, catalog: ProductCatalog, product: str, term: int, on: date) -> int:
    rate = Decimal("0.18")
    request = LoanRequest(product, Decimal("10000.00"), term, rate, on)
    return book_loan(SqlUnitOfWork(engine), catalog, request).id


def build_book(engine: Engine, catalog: ProductCatalog, through: date) -> Book:
    """Book the seven loans and service them, closing every date up to `through`."""
    cash, bullet = "cash-loan-installment", "short-term-bullet"
    ids = {
        name: _book(engine, catalog, product, term, START)
        for name, product, term in (
            ("good", cash, 6), ("payoff", bullet, 1), ("never", cash, 6), ("late", cash, 6),
            ("written", FAST, 6), ("reversed", bullet, 1),
        )
    }  # fmt: skip
    book = Book(engine, catalog, ids)
    if through >= FEBRUARY:
        book.close(FEBRUARY - timedelta(days=1))
        ids["february"] = _book(engine, catalog, cash, 6, FEBRUARY)
    events = [
        (date(2026, 2, 16), "good"), (date(2026, 2, 16), "payoff"),
        (date(2026, 2, 16), "reversed"), (date(2026, 3, 16), "good"),
        (date(2026, 3, 20), "late"), (REVERSAL, "reverse"), (date(2026, 4, 16), "good"),
    ]  # fmt: skip
    for on, name in events:
        if on > through:
            break
        if name == "reverse":
            book.close(on - timedelta(days=1))
            reverse_payment(SqlUnitOfWork(engine), book.reversed_payment, on)
            continue
        paid = book.pay_owed(name, on)
        if name == "reversed":
            book.reversed_payment = paid
    book.close(through)
    return book

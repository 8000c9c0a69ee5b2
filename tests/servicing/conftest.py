"""A small driver over the real services and the real close, for scenario tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text

from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.loan import LoanState
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.domain.schedule import PrepaymentMode
from lendstack.servicing.ports import StoredPayment
from lendstack.servicing.services import (
    LoanRequest,
    Payment,
    book_loan,
    get_loan,
    reverse_payment,
    take_payment,
)
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.reports import reconcile, trial_balance
from lendstack.storage.repositories import SqlUnitOfWork


class Book:
    def __init__(self, engine: Engine, catalog: ProductCatalog) -> None:
        self.engine = engine
        self.catalog = catalog
        self.store = SqlCloseStore(engine)
        self._keys = 0

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    def book(
        self, product: str, amount: str, term: int, rate: str | None, on: date, **kw: str
    ) -> LoanState:
        extra = {k: Decimal(v) for k, v in kw.items()}
        request = LoanRequest(
            product, Decimal(amount), term, Decimal(rate) if rate else None, on, **extra
        )
        return book_loan(self.uow(), self.catalog, request)

    def close_through(self, day: date) -> None:
        close_through(self.store, day)

    def pay(
        self,
        loan_id: int,
        amount: Decimal | str,
        on: date,
        key: str | None = None,
        prepay: PrepaymentMode | None = None,
    ) -> StoredPayment:
        self._keys += 1
        payment = Payment(loan_id, Decimal(amount), on, key or f"k{self._keys}", prepay)
        return take_payment(self.uow(), payment)

    def reverse(self, payment_id: int, on: date) -> tuple[StoredPayment, ...]:
        return reverse_payment(self.uow(), payment_id, on)

    def loan(self, loan_id: int) -> LoanState:
        return get_loan(self.uow(), loan_id)

    def assert_ties(self) -> None:
        with self.engine.connect() as conn:
            assert reconcile(conn) == []

    def balance(self, account: object) -> Decimal:
        with self.engine.connect() as conn:
            return trial_balance(conn).balance(account)  # type: ignore[arg-type]

    def rows(self, sql: str, params: dict[str, object] | None = None) -> list[tuple[object, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params or {})]


@pytest.fixture
def book(engine: Engine, catalog: ProductCatalog) -> Book:
    return Book(engine, catalog)

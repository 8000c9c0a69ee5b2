"""`book_loans` books a batch exactly as `book_loan` one after another would, and a refused
booking (bad terms, a plan its funder refuses, a reference reused for other terms) writes
nothing and leaves the rest of the batch booked."""

from __future__ import annotations

import contextlib
from datetime import date
from decimal import Decimal

import pytest
from dbstate import dump, fingerprint
from sqlalchemy import Engine, text

from lendstack.core.errors import Conflict, ValidationError
from lendstack.servicing import LoanRequest, PlanTerms, ProductCatalog, book_loan
from lendstack.servicing.ports import LoanProfile
from lendstack.servicing.services import Booking, book_loans
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork

DAY = date(2026, 3, 2)
BANK = "harbour-joint-stock"
PLAN = PlanTerms({"platform": Decimal("0.3"), BANK: Decimal("0.7")})


def request(amount: str, term: int = 6, product: str = "cash-loan-installment") -> LoanRequest:
    return LoanRequest(product, Decimal(amount), term, Decimal("0.18"), DAY)


def refuse() -> PlanTerms:
    raise Conflict("no funding capacity within partner limits", field="funding")


def profile(n: int) -> LoanProfile:
    return LoanProfile("app", "Zhejiang", "consumption", f"d-{n}", 0.02)


BATCH = [
    Booking(request("5000.00"), "r-1", lambda: PLAN, profile(1)),
    Booking(request("3000.00", 12), "r-2", None, profile(2)),
    Booking(request("-1"), "r-3"),  # bad terms
    Booking(request("7000.00"), "r-4", refuse, profile(4)),  # the funder refuses
    Booking(request("5000.00"), "r-1", lambda: PLAN, profile(1)),  # repeated in the batch
    Booking(request("2400.00", 6, "consumer-loan-equal-principal"), None, lambda: PLAN),
]


def one_by_one(engine: Engine, catalog: ProductCatalog) -> None:
    for b in BATCH:
        with contextlib.suppress(Conflict, ValidationError):
            book_loan(SqlUnitOfWork(engine), catalog, b.request, b.reference, b.fund, b.profile)


def funder_rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        plans = conn.execute(
            text("SELECT loan_id, funder_id, share FROM funding_plans ORDER BY 1, 2")
        )
        flows = conn.execute(
            text("SELECT loan_id, funder_id, flow, amount_fen FROM funder_flows ORDER BY 1, 2")
        )
        profiles = conn.execute(text("SELECT * FROM loan_profiles ORDER BY loan_id"))
        return [*map(tuple, plans), *map(tuple, flows), *map(tuple, profiles)]


def test_a_batch_books_what_one_by_one_books(
    engine: Engine, second_engine: Engine, catalog: ProductCatalog
) -> None:
    for e in (engine, second_engine):
        SqlFunding(e).import_builtin()
    one_by_one(engine, catalog)
    results = book_loans(SqlUnitOfWork(second_engine), catalog, BATCH)
    assert fingerprint(second_engine) == fingerprint(engine)
    assert funder_rows(second_engine) == funder_rows(engine)
    kinds = [type(r).__name__ for r in results]
    assert kinds == [
        "LoanState",
        "LoanState",
        "ValidationError",
        "Conflict",
        "LoanState",
        "LoanState",
    ]
    assert results[4] == results[0]
    assert results[2].field == "amount"  # type: ignore[union-attr]


def test_booking_the_batch_again_books_nothing_new(engine: Engine, catalog: ProductCatalog) -> None:
    SqlFunding(engine).import_builtin()
    first = book_loans(SqlUnitOfWork(engine), catalog, BATCH[:2])
    before = dump(engine)
    again = book_loans(SqlUnitOfWork(engine), catalog, BATCH[:2])
    assert again == first
    assert dump(engine) == before
    reused = Booking(request("5000.01"), "r-1")
    (refused,) = book_loans(SqlUnitOfWork(engine), catalog, [reused])
    assert isinstance(refused, Conflict)
    assert refused.field == "reference"
    assert dump(engine) == before


def test_a_failure_after_the_refusals_writes_nothing(
    engine: Engine, catalog: ProductCatalog
) -> None:
    SqlFunding(engine).import_builtin()
    before = dump(engine)

    def broken() -> PlanTerms:
        raise RuntimeError("the partner system is down")

    with pytest.raises(RuntimeError):
        book_loans(
            SqlUnitOfWork(engine), catalog, [BATCH[0], Booking(request("1000.00"), fund=broken)]
        )
    assert dump(engine) == before

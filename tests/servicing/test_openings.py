"""A booking's opening (`services.opening`: contract, new loan, disbursement amounts) may be
computed ahead, in another process, and handed to `book_loans`: it pickles to the very same
values, and a batch booked with openings computed ahead writes the same database as one
that computes them itself."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import date
from decimal import Decimal

from dbstate import fingerprint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from test_booking_batches import BATCH, funder_rows

from lendstack.core.errors import Conflict, NotFound, ValidationError
from lendstack.servicing import LoanStatus, Opening, ProductCatalog, opening
from lendstack.servicing.domain.delinquency import RiskClass
from lendstack.servicing.services import Booking, LoanRequest, book_loans
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork

CATALOG = ProductCatalog()


@st.composite
def requests(draw: st.DrawFn) -> LoanRequest:
    product = draw(st.sampled_from(CATALOG.all()))
    amount = draw(st.integers(int(product.amount_min * 100), int(product.amount_max * 100)))
    rate = draw(st.integers(int(product.rate_min * 10_000), int(product.rate_max * 10_000)))
    fee = draw(st.integers(int(product.fee_rate_min * 10_000), int(product.fee_rate_max * 10_000)))
    return LoanRequest(
        product.id,
        Decimal(amount) / 100,
        draw(st.sampled_from(product.terms_allowed)),
        Decimal(rate) / 10_000,
        draw(st.dates(date(2024, 1, 1), date(2027, 12, 31))),
        fee_rate=Decimal(fee) / 10_000,
    )


def _opened(request: LoanRequest) -> Opening | None:
    try:
        return opening(CATALOG, request)
    except (ValidationError, Conflict, NotFound):
        return None


def _same(a: Opening, b: Opening) -> bool:
    """Equal, and written with the same digits (Decimal equality ignores trailing zeros)."""
    return a == b and repr(a) == repr(b)


@settings(max_examples=150, deadline=None)
@given(requests())
def test_an_opening_pickles_to_the_same_values(request: LoanRequest) -> None:
    made = _opened(request)
    if made is None:
        return
    assert _same(pickle.loads(pickle.dumps(made)), made)


@settings(max_examples=50, deadline=None)
@given(requests(), st.integers(1, 10**6), st.integers(0, 200), st.booleans())
def test_any_loan_state_pickles_to_the_same_values(
    request: LoanRequest, loan_id: int, dpd: int, closed: bool
) -> None:
    """Not only a new loan: the packing covers every field of a loan state."""
    made = _opened(request)
    if made is None:
        return
    loan = replace(
        made.loan,
        id=loan_id,
        status=LoanStatus.PAID_OFF if closed else LoanStatus.ACTIVE,
        installments=tuple(replace(i, billed=True, paid_fee=i.fee) for i in made.loan.installments),
        period=None,
        dpd=dpd,
        risk_class=RiskClass.SPECIAL_MENTION,
        non_accrual=True,
        charged_off=Decimal("12.30"),
        closed_on=request.start if closed else None,
    )
    moved = replace(made, loan=loan)
    assert _same(pickle.loads(pickle.dumps(moved)), moved)


def _ahead(booking: Booking) -> Booking:
    """The booking with its opening computed ahead and sent through a pipe (pickled)."""
    made = _opened(booking.request)
    return replace(booking, opening=None if made is None else pickle.loads(pickle.dumps(made)))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(requests(), min_size=1, max_size=6))
def test_a_batch_with_openings_computed_ahead_books_the_same(
    engine: Engine, second_engine: Engine, catalog: ProductCatalog, drawn: list[LoanRequest]
) -> None:
    for e in (engine, second_engine):
        with e.begin() as conn:  # each example starts from empty books
            for table in ("journal_lines", "journal_entries", "installments", "loans"):
                conn.exec_driver_sql(f"DELETE FROM {table}")
    bookings = [Booking(r, f"r-{n}") for n, r in enumerate(drawn)]
    plain = book_loans(SqlUnitOfWork(engine), catalog, bookings)
    ahead = book_loans(SqlUnitOfWork(second_engine), catalog, [_ahead(b) for b in bookings])
    assert [repr(r) for r in ahead] == [repr(r) for r in plain]
    assert fingerprint(second_engine) == fingerprint(engine)


def test_the_batch_of_refusals_books_the_same_with_openings_ahead(
    engine: Engine, second_engine: Engine, catalog: ProductCatalog
) -> None:
    """Bad terms (no opening ahead: booking computes it and refuses), a refused plan, a
    reference repeated in the batch, a loan without a reference."""
    for e in (engine, second_engine):
        SqlFunding(e).import_builtin()
    plain = book_loans(SqlUnitOfWork(engine), catalog, BATCH)
    ahead = book_loans(SqlUnitOfWork(second_engine), catalog, [_ahead(b) for b in BATCH])
    assert [repr(r) for r in ahead] == [repr(r) for r in plain]
    assert fingerprint(second_engine) == fingerprint(engine)
    assert funder_rows(second_engine) == funder_rows(engine)

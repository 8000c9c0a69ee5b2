"""`take_payments` posts a batch exactly as `take_payment` one after another would.

The same loans (some co-funded) are booked and closed on two databases; a random batch of
payments (short, exact, overpaid, prepayments in both modes, a loan paid more than once,
repeated idempotency keys) is posted one by one on the first and as one batch on the second.
Then the books must be identical: loans, installments of every schedule version, payments,
journal, funder positions and flows. If any payment of the sequence is refused, the batch
must refuse with the same error, name the payment, and write nothing. A statement failing
half-way through the batch's writes (a row of a multi-row write the database refuses) leaves
nothing written either: the batch's transaction is rolled back whole.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dbstate import dump, fingerprint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from lendstack.core.errors import Conflict, LendstackError, NotFound, ValidationError
from lendstack.core.money import ZERO
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan
from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.payments import owed_by_component
from lendstack.servicing.domain.schedule import PrepaymentMode
from lendstack.servicing.services import get_loan, take_payment, take_payments
from lendstack.storage import mapping, repositories, subledger
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.funding import SqlFunding
from lendstack.storage.reports import reconcile
from lendstack.storage.repositories import SqlUnitOfWork

BOOKED = date(2026, 3, 2)
CLOSED = BOOKED + timedelta(days=40)  # the first installment is billed and a little overdue
OPEN = CLOSED + timedelta(days=1)
LAST_BILLED = BOOKED + timedelta(days=100)  # the 3-month loan's last installment is billed
BANK = "harbour-joint-stock"
LOANS = (  # product, amount, term, rate, co-funded
    ("cash-loan-installment", "10000.01", 12, "0.18", True),
    ("guaranteed-installment", "6000.00", 6, "0.036", True),
    ("consumer-loan-equal-principal", "3000.00", 6, "0.06", False),
    ("huabei-installment", "2400.00", 3, "0", False),
)
FUNDER_SQL = {
    "positions": "SELECT loan_id, funder_id, principal_fen, share_units FROM funder_positions"
    " ORDER BY loan_id, funder_id",
    "flows": "SELECT business_date, loan_id, funder_id, flow, amount_fen, source FROM funder_flows"
    " ORDER BY loan_id, source, funder_id, flow",
    "parts": "SELECT p.idempotency_key, pp.number, pp.principal_fen, pp.interest_fen, pp.fee_fen"
    " FROM payment_parts pp JOIN payments p ON p.id = pp.payment_id ORDER BY 1, 2",
    "accrual marks": "SELECT id, accrual_dirty FROM loans ORDER BY id",
}


def books(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        funders = {k: [tuple(r) for r in conn.execute(text(q))] for k, q in FUNDER_SQL.items()}
    return {**fingerprint(engine), **funders}


def prepare(engine: Engine, catalog: ProductCatalog, deferred: bool = False) -> list[int]:
    funding = SqlFunding(engine)
    funding.import_builtin()
    ids = []
    for product, amount, term, rate, cofunded in LOANS:
        request = LoanRequest(product, Decimal(amount), term, Decimal(rate), BOOKED)
        loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
        if cofunded:
            funding.record_plan(engine, loan_id, {"platform": Decimal("0.3"), BANK: Decimal("0.7")})
        ids.append(loan_id)
    close_through(SqlCloseStore(engine, defer_accrual=deferred), CLOSED)
    return ids


@contextmanager
def two_books(
    catalog: ProductCatalog, deferred: bool = False
) -> Iterator[tuple[Engine, Engine, list[int]]]:
    with tempfile.TemporaryDirectory() as tmp:
        engines = [make_engine(f"sqlite:///{Path(tmp) / f'{n}.db'}") for n in "ab"]
        for engine in engines:
            migrate(engine)
        ids = prepare(engines[0], catalog, deferred)
        assert prepare(engines[1], catalog, deferred) == ids
        try:
            yield engines[0], engines[1], ids
        finally:
            for engine in engines:
                engine.dispose()


MODES = (None, None, None, PrepaymentMode.SHORTEN_TERM, PrepaymentMode.LOWER_INSTALLMENT)
payment_specs = st.lists(
    st.tuples(
        st.integers(0, len(LOANS) - 1),  # which loan
        st.integers(1, 1_200_000),  # fen
        st.sampled_from(MODES),
        st.booleans(),  # reuse the previous payment's key
    ),
    min_size=1,
    max_size=10,
)


def payments_for(ids: list[int], specs: list[tuple[int, int, Any, bool]]) -> list[Payment]:
    made: list[Payment] = []
    for n, (loan, fen, mode, reuse) in enumerate(specs):
        if reuse and made:
            made.append(made[-1])  # the same request again: must have no second effect
            continue
        amount = Decimal(fen) / 100
        made.append(Payment(ids[loan], amount, OPEN, f"batch-{n}", mode))
    return made


def sequential(engine: Engine, batch: list[Payment]) -> LendstackError | None:
    for payment in batch:
        try:
            take_payment(SqlUnitOfWork(engine), payment)
        except (ValidationError, Conflict, NotFound) as exc:
            return exc
    return None


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs=payment_specs)
def test_a_batch_books_exactly_what_one_by_one_books(
    catalog: ProductCatalog, specs: list[tuple[int, int, Any, bool]]
) -> None:
    with two_books(catalog) as (one_by_one, batched, ids):
        batch = payments_for(ids, specs)
        refused = sequential(one_by_one, batch)
        if refused is not None:
            before = dump(batched)
            with pytest.raises(type(refused)) as caught:
                take_payments(SqlUnitOfWork(batched), batch)
            assert (caught.value.field or "").startswith("payments[")
            assert dump(batched) == before
            return
        stored = take_payments(SqlUnitOfWork(batched), batch)
        assert [s.idempotency_key for s in stored] == [p.idempotency_key for p in batch]
        assert books(batched) == books(one_by_one)
        with batched.connect() as conn:
            assert reconcile(conn) == []


@contextmanager
def bills_saved() -> Iterator[list[int]]:
    """The sizes of the batches `SqlLoans.save_bills` writes while the block runs: whether a
    batch went the bills' way."""
    calls: list[int] = []
    real = repositories.SqlLoans.save_bills

    def counted(self: repositories.SqlLoans, paid: Any) -> None:
        calls.append(len(paid))
        real(self, paid)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(repositories.SqlLoans, "save_bills", counted)
        yield calls


def whole_bills(engine: Engine, ids: list[int], on: date, key: str) -> list[Payment]:
    """A payment of each loan's whole bill on `on` (the penalty and every billed unpaid
    installment), as the simulator's borrowers pay; none for a loan that owes nothing."""
    batch = []
    for loan_id in ids:
        loan = get_loan(SqlUnitOfWork(engine), loan_id)
        owed = sum(owed_by_component(loan, on).values(), ZERO)
        if owed and loan.status is LoanStatus.ACTIVE:
            batch.append(Payment(loan_id, owed, on, f"{key}-{loan_id}"))
    return batch


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chosen=st.lists(st.integers(0, len(LOANS) - 1), min_size=1, max_size=len(LOANS), unique=True),
    odd=st.booleans(),
    deferred=st.booleans(),
)
def test_a_batch_of_whole_bills_books_exactly_what_one_by_one_books(
    catalog: ProductCatalog, chosen: list[int], odd: bool, deferred: bool
) -> None:
    """A batch whose every payment is its loan's whole bill is read and written as bills
    (`SqlLoans.bills`, `save_bills`), not loan states: the books must be those of the
    payments one by one, with the close's accrual deferred or not, on a loan's first bill
    and on its last (which pays it off). A batch with one other amount goes the general way."""
    with two_books(catalog, deferred) as (one_by_one, batched, ids), bills_saved() as calls:
        loans = [ids[k] for k in chosen]
        for round, (on, later) in enumerate(
            ((OPEN, LAST_BILLED), (LAST_BILLED + timedelta(1), None))
        ):
            batch = whole_bills(one_by_one, loans, on, f"bill-{round}")
            if odd and batch:
                first = batch[0]
                batch[0] = Payment(
                    first.loan_id, first.amount + Decimal("0.01"), on, first.idempotency_key
                )
            assert sequential(one_by_one, batch) is None
            calls.clear()
            take_payments(SqlUnitOfWork(batched), batch)
            assert calls == ([] if odd or not batch else [len(batch)])
            assert books(batched) == books(one_by_one)
            if later is not None:
                for engine in (one_by_one, batched):
                    close_through(SqlCloseStore(engine, defer_accrual=deferred), later)
        if not deferred:  # a deferring book ties to the journal at month-ends only
            with batched.connect() as conn:
                assert reconcile(conn) == []
        statuses = {get_loan(SqlUnitOfWork(batched), i).status for i in loans}
        assert odd or ids[3] not in loans or LoanStatus.PAID_OFF in statuses


def test_whole_bills_book_as_one_by_one_on_each_backend(
    engine: Engine, second_engine: Engine, catalog: ProductCatalog
) -> None:
    """The bills' reads and writes (`SqlLoans.bills`, `save_bills`) on the test backend
    (PostgreSQL in CI): every loan's whole bill, then again after its last is billed."""
    ids = prepare(engine, catalog, deferred=True)
    assert prepare(second_engine, catalog, deferred=True) == ids
    for round, (on, later) in enumerate(((OPEN, LAST_BILLED), (LAST_BILLED + timedelta(1), None))):
        batch = whole_bills(engine, ids, on, f"bill-{round}")
        assert len(batch) == len(ids)
        assert sequential(engine, batch) is None
        with bills_saved() as calls:
            stored = take_payments(SqlUnitOfWork(second_engine), batch)
        assert calls == [len(batch)]  # read and written as bills, not loan states
        assert [s.kind for s in stored] == ["payment"] * len(batch)
        assert books(second_engine) == books(engine)
        if later is not None:
            for each in (engine, second_engine):
                close_through(SqlCloseStore(each, defer_accrual=True), later)
    assert get_loan(SqlUnitOfWork(second_engine), ids[3]).status is LoanStatus.PAID_OFF


def test_a_repeated_batch_has_no_second_effect(
    engine: Engine, second_engine: Engine, catalog: ProductCatalog
) -> None:
    ids = prepare(engine, catalog)
    batch = [
        Payment(ids[0], Decimal("900.00"), OPEN, "r-1"),
        Payment(ids[2], Decimal("1"), OPEN, "r-2"),
    ]
    first = take_payments(SqlUnitOfWork(engine), batch)
    after = dump(engine)
    again = take_payments(SqlUnitOfWork(engine), batch)
    assert again == first
    assert dump(engine) == after
    assert all(p.id > 0 for p in first)


def test_a_changed_body_under_a_used_key_refuses_the_whole_batch(
    engine: Engine, catalog: ProductCatalog
) -> None:
    ids = prepare(engine, catalog)
    take_payments(SqlUnitOfWork(engine), [Payment(ids[0], Decimal("100"), OPEN, "used")])
    before = dump(engine)
    batch = [
        Payment(ids[1], Decimal("50"), OPEN, "fresh"),
        Payment(ids[0], Decimal("101"), OPEN, "used"),
    ]
    with pytest.raises(Conflict) as caught:
        take_payments(SqlUnitOfWork(engine), batch)
    assert caught.value.field == "payments[1].idempotency_key"
    assert dump(engine) == before


def test_a_closed_date_or_an_unknown_loan_refuses_the_batch(
    engine: Engine, catalog: ProductCatalog
) -> None:
    ids = prepare(engine, catalog)
    before = dump(engine)
    with pytest.raises(Conflict):
        take_payments(SqlUnitOfWork(engine), [Payment(ids[0], Decimal("1"), CLOSED, "old")])
    with pytest.raises(NotFound) as caught:
        take_payments(
            SqlUnitOfWork(engine),
            [Payment(ids[0], Decimal("1"), OPEN, "ok"), Payment(10_000, Decimal("1"), OPEN, "x")],
        )
    assert caught.value.field == "loan_id"
    assert dump(engine) == before


def _nulled_on_call(real: Callable[..., Any], call: int, column: str | int) -> Callable[..., Any]:
    """`real`, but its `call`-th result (a row, or the first of a list of rows) has `column`
    (a key, or a tuple row's index) set to NULL: a NOT NULL breach the database refuses on
    that row alone."""
    calls = [0]

    def wrapped(*args: Any) -> Any:
        out = real(*args)
        calls[0] += 1
        if calls[0] == call:
            row = out[0] if isinstance(out, list) else out
            if isinstance(row, tuple):
                assert isinstance(column, int)
                row = (*row[:column], None, *row[column + 1 :])
                return [row, *out[1:]] if isinstance(out, list) else row
            row[column] = None
        return out

    return wrapped


FAILURES = {  # where: (module, function, failing call, NOT NULL column)
    # the journal lines' insert, on a line of the second entry: the entries are written
    "journal line": (
        repositories,
        "_line_row",
        5,
        repositories.LINE_COLUMNS.index("account"),
    ),
    # the loans' update, on the third loan: the journal and two loans are written
    "loan update": (mapping, "state_values", 3, mapping.STATE_COLUMNS.index("status")),
    # the funder flows' insert, the batch's last write, on the second co-funded payment
    "funder flow": (
        subledger,
        "_flow_values",
        2,
        subledger._FLOW_COLUMNS.index("amount_fen"),
    ),
}


@pytest.mark.parametrize("where", sorted(FAILURES))
def test_a_write_failing_half_way_through_a_batch_leaves_nothing_written(
    engine: Engine, catalog: ProductCatalog, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    ids = prepare(engine, catalog)
    batch = [
        Payment(loan_id, Decimal(amount), OPEN, f"half-{n}")
        for n, (loan_id, amount) in enumerate(zip(ids, ("900", "500", "100", "50"), strict=True))
    ]
    before = dump(engine)
    module, name, call, column = FAILURES[where]
    with monkeypatch.context() as patched:
        patched.setattr(module, name, _nulled_on_call(getattr(module, name), call, column))
        with pytest.raises(IntegrityError, match=r"(?i)null"):
            take_payments(SqlUnitOfWork(engine), batch)
    assert dump(engine) == before
    stored = take_payments(SqlUnitOfWork(engine), batch)  # and the batch then posts whole
    assert [s.idempotency_key for s in stored] == [p.idempotency_key for p in batch]
    with engine.connect() as conn:
        assert reconcile(conn) == []

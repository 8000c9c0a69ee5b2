"""The ECL `LoanBook` read from storage, on SQLite and PostgreSQL: balances, DPD, exposure
paths against an independent Decimal calculation, PDs from decisions, the dates refused."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from example_app import application
from lendstack.core.errors import Conflict
from lendstack.core.money import to_fen
from lendstack.risk.ecl_settings import default_config
from lendstack.servicing import LoanState, Payment, ProductCatalog, take_payment
from lendstack.settings import Settings
from lendstack.storage import risk_book
from lendstack.storage.mapping import to_day
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.risk_book import (
    BookInputs,
    DecisionPds,
    default_capital,
    load_book,
    month_ends,
    stress_portfolio,
)
from lendstack.underwriting.origination import originate
from lendstack.wiring import underwriting_service
from risk.ecl_book import AS_OF, BOOKED, book, close, three_loans


def balances(engine: Engine, loan_id: int) -> tuple[int, int, int, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT bal_principal, bal_interest, bal_fee, bal_penalty FROM loans WHERE id = :i"
            ),
            {"i": loan_id},
        ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def expected_path(loan: LoanState, as_of: date, columns: int) -> list[int]:
    """Columns 1.. of the exposure path, from the schedule with Decimal arithmetic: principal
    of installments due after each month-end, plus the running period's accrued interest."""
    out = []
    for end in month_ends(as_of, columns - 1):
        owed = sum((i.principal for i in loan.installments if i.due_date > end), Decimal(0))
        for i in loan.installments:
            start = BOOKED if i.number == 1 else loan.installments[i.number - 2].due_date
            if start < end < i.due_date:
                share = Decimal((end - start).days) / Decimal((i.due_date - start).days)
                owed += (i.interest * share).quantize(Decimal("0.01"), ROUND_HALF_UP)
        out.append(to_fen(owed))
    return out


def test_month_ends_follow_the_calendar_from_a_month_end() -> None:
    assert month_ends(date(2026, 1, 31), 3) == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    assert month_ends(date(2026, 5, 15), 2) == [date(2026, 6, 15), date(2026, 7, 15)]


def test_the_book_at_the_last_close(engine: Engine, catalog: ProductCatalog) -> None:
    loans = three_loans(engine, catalog)
    with engine.connect() as conn:
        inputs = load_book(conn, AS_OF, default_config())
    b = inputs.book
    ids = [loans.current.id, loans.late.id, loans.defaulted.id]
    assert b.loan_id.tolist() == ids
    assert b.dpd.tolist() == [0, 40, 99]
    assert b.defaulted.tolist() == [False, False, True]  # non-accrual from 90 DPD
    assert inputs.bucket.tolist() == ["M0", "M2", "M4"]
    # gross carrying amount: every receivable, but principal alone once interest is suspended
    assert b.ead_fen[0, 0] == sum(balances(engine, loans.current.id))
    assert b.ead_fen[1, 0] == sum(balances(engine, loans.late.id))
    assert b.ead_fen[2, 0] == balances(engine, loans.defaulted.id)[0] == 1_200_000
    # paths to the month-ends Jun 15 ... Dec 15; the last installment falls due on Jan 5 2027
    assert b.ead_fen.shape == (3, 8)
    assert b.ead_fen[0, 1:].tolist() == expected_path(loans.current, AS_OF, 8)
    assert b.ead_fen[1, 1:].tolist() == expected_path(loans.late, AS_OF, 8)
    # no decisions: the product's PD; now raised to the bucket floors (M2 0.45, M4 0.90)
    assert inputs.from_decisions == 0
    assert b.pd_origination.tolist() == [0.03, 0.03, 0.03]
    assert b.pd_12m is not None
    assert b.pd_12m.tolist() == [0.03, 0.45, 0.90]
    assert b.eir == pytest.approx([(1 + 0.18 / 12) ** 12 - 1] * 3)
    assert b.lgd.tolist() == [0.85] * 3
    # the stress portfolio: performing loans only, one segment per product
    portfolio = stress_portfolio(inputs, default_config())
    (segment,) = portfolio.segments
    assert segment.count == 2
    assert to_fen(segment.ead) == int(b.ead_fen[0, 0] + b.ead_fen[1, 0])
    weights = b.ead_fen[:2, 0].astype(float)
    assert segment.pd == pytest.approx(float(np.average([0.03, 0.45], weights=weights)))
    assert default_capital(portfolio) > 0


def test_only_the_last_closed_date_can_be_read(engine: Engine, catalog: ProductCatalog) -> None:
    book(engine, catalog)
    with engine.connect() as conn, pytest.raises(Conflict, match="no business date") as none:
        load_book(conn, BOOKED, default_config())
    assert none.value.field == "date"
    close(engine, BOOKED + timedelta(days=3))
    for day in (BOOKED + timedelta(days=4), BOOKED + timedelta(days=2)):
        with engine.connect() as conn, pytest.raises(Conflict) as refused:
            load_book(conn, day, default_config())
        assert refused.value.field == "date"


def test_money_moved_on_the_open_date_is_taken_back_out(
    engine: Engine, catalog: ProductCatalog
) -> None:
    loan = book(engine, catalog)
    day = loan.installments[0].due_date + timedelta(days=5)
    close(engine, day)
    with engine.connect() as conn:
        before = load_book(conn, day, default_config()).book
    open_date = day + timedelta(days=1)
    paid = Payment(loan.id, Decimal("2500.00"), open_date, "open-date")
    take_payment(SqlUnitOfWork(engine), paid)
    later = book(engine, catalog, start=open_date)  # booked on the open date: not in the book
    assert sum(balances(engine, loan.id)) < before.ead_fen[0, 0]
    with engine.connect() as conn:
        after = load_book(conn, day, default_config()).book
    assert after.loan_id.tolist() == [loan.id] != [later.id]
    assert after.ead_fen[0, 0] == before.ead_fen[0, 0]
    assert after.dpd.tolist() == before.dpd.tolist()


def test_the_pd_at_origination_comes_from_the_decision(
    engine: Engine, catalog: ProductCatalog
) -> None:
    settings = Settings(pii_key=base64.b64encode(os.urandom(32)).decode())
    recorded = underwriting_service(settings, engine).decide(application())
    scored = originate(SqlUnitOfWork(engine), catalog, recorded.record)
    start = scored.contract.disbursement_date
    manual = book(engine, catalog, start=start)
    close(engine, start + timedelta(days=2))
    with engine.connect() as conn:
        inputs = load_book(conn, start + timedelta(days=2), default_config())
    assert inputs.book.loan_id.tolist() == [scored.id, manual.id]
    assert inputs.from_decisions == 1
    pd = recorded.record["decision"]["score"]["pd"]
    assert inputs.book.pd_origination.tolist() == [pytest.approx(pd), 0.03]


def same_book(kept: BookInputs, fresh: BookInputs) -> None:
    for name in ("loan_id", "ead_fen", "pd_origination", "pd_now", "dpd", "defaulted"):
        assert np.array_equal(getattr(kept.book, name), getattr(fresh.book, name)), name
    assert kept.from_decisions == fresh.from_decisions
    assert np.array_equal(kept.pd_12m, fresh.pd_12m)


def test_kept_origination_pds_read_each_decision_once_and_give_the_same_book(
    engine: Engine, catalog: ProductCatalog
) -> None:
    # The simulator measures the same growing book each month-end: PDs it has read are kept.
    settings = Settings(pii_key=base64.b64encode(os.urandom(32)).decode())
    service = underwriting_service(settings, engine)
    first = originate(SqlUnitOfWork(engine), catalog, service.decide(application()).record)
    start = first.contract.disbursement_date
    manual = book(engine, catalog, start=start)
    day = start + timedelta(days=2)
    close(engine, day)
    known = DecisionPds()
    with engine.connect() as conn:
        same_book(
            load_book(conn, day, default_config(), pds=known),
            load_book(conn, day, default_config()),
        )
    assert set(known.by_loan) == {first.id, manual.id}
    assert known.by_loan[manual.id] is None  # booked without a decision: the product's PD
    close(engine, start + timedelta(days=9))
    after = (start + timedelta(days=10)).isoformat()  # past the duplicate-application window
    recorded = service.decide(application(application_date=after))
    later = originate(SqlUnitOfWork(engine), catalog, recorded.record)
    day = later.contract.disbursement_date + timedelta(days=2)
    close(engine, day)
    # a kept PD is used as kept: the decision log is not read again for that loan
    known.by_loan[first.id] = 0.5
    with engine.connect() as conn:
        kept = load_book(conn, day, default_config(), pds=known)
    assert kept.book.pd_origination[kept.book.loan_id.tolist().index(first.id)] == 0.5
    del known.by_loan[first.id]  # read again, from its id up: the loans after it are skipped
    with engine.connect() as conn:
        kept = load_book(conn, day, default_config(), pds=known)
        same_book(kept, load_book(conn, day, default_config()))
    assert known.by_loan[later.id] == pytest.approx(recorded.record["decision"]["score"]["pd"])
    assert kept.from_decisions == 2


def test_the_driver_cursor_reads_the_columns_sqlalchemy_reads(
    engine: Engine, catalog: ProductCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite `fetch_columns` reads plain SQL through the driver's cursor: every column of
    the loans and installments queries is the array the SQLAlchemy path gives, in partitions
    or not, and parameters it does not cover go through SQLAlchemy."""
    three_loans(engine, catalog)
    monkeypatch.setattr(risk_book, "_PARTITION", 2)  # several partitions, the last one short
    day = AS_OF
    params = {"day": day, "d": to_day(day)}
    i8, f8 = np.int64, np.float64
    queries = (
        (risk_book._LOANS, (i8, np.str_, f8, f8, i8, i8, i8, i8, i8, np.intp, bool)),
        (risk_book._INSTALLMENTS, (i8, "datetime64[D]", i8, i8, i8, i8)),
    )
    with engine.connect() as conn:
        for sql, dtypes in queries:
            result = conn.execute(sql, params)
            expected = risk_book._columns([result.all()], dtypes)
            got = risk_book.fetch_columns(conn, sql, params, dtypes)
            assert got[0].size > 0
            for want, have in zip(expected, got, strict=True):
                assert have.dtype == want.dtype
                assert np.array_equal(have, want)
    assert risk_book._driver_params(params) == {"day": day.isoformat(), "d": to_day(day)}
    assert risk_book._driver_params({"at": datetime(2026, 1, 1)}) is None


_PD_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=-3, max_value=3),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["0.25", "1e-3", "2", "-0.0", "nan", "0x1"]),
    st.lists(st.integers(), max_size=2),
)


def _pd_record(value: object, shape: int) -> object:
    """A decision record with `value` as decision.score.pd, or a malformed variant of it."""
    return [
        {"decision": {"score": {"pd": value}}, "other": [1, 2]},
        {"decision": {"score": {"model": "x"}}},
        {"decision": {"score": value}},
        {"decision": value},
        [value],
        {"decision": {"score": {"pd": value, "auc": 0.7}}, "x": "é\u2028"},
    ][shape]


@settings(max_examples=300, deadline=None)
@given(value=_PD_VALUES, shape=st.integers(min_value=0, max_value=5), broken=st.booleans())
def test_the_pd_sqlite_reads_from_a_record_is_the_pd_python_parses(
    value: object, shape: int, broken: bool
) -> None:
    """On SQLite the month-end reads decision.score.pd out of the record in SQL and parses
    only that value: for every record, valid or not, it is `model_pd` of the whole record."""
    record = json.dumps(_pd_record(value, shape))
    if broken:  # not JSON to SQLite (NaN is Python's extension), or not JSON at all
        record = record.replace("}", "NaN}", 1) if shape % 2 else record[:-1]
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE d (record_json TEXT)")
        conn.execute("INSERT INTO d VALUES (?)", (record,))
        whole, pd_json = conn.execute(f"SELECT {risk_book._PD_TEXT} FROM d").fetchone()
    assert risk_book.pd_of(whole, pd_json) == risk_book.model_pd(record)

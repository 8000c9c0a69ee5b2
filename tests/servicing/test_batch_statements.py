"""`execute_many` (and `execute_rows`, of value tuples) writes exactly what SQLAlchemy's own
executemany writes.

Its SQLite path binds rows itself (a C-level getter, then bind processors and fixed values in
place), so every shape of parameter list is compared with `conn.execute` on the same rows.
"""

from __future__ import annotations

from copy import copy
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    update,
)

from lendstack.storage import batches
from lendstack.storage.batches import execute_many, execute_rows, insert_rows, inserted_ids

_META = MetaData()
_ITEMS = Table(
    "items",
    _META,
    Column("id", Integer, primary_key=True),
    Column("name", String(20)),
    Column("day", Date),
    Column("flag", Boolean),
    Column("amount", Integer),
)
_ROWS = [
    {"id": 1, "name": "a", "day": date(2025, 1, 31), "flag": True, "amount": 5},
    {"id": 2, "name": "b", "day": date(2025, 2, 1), "flag": False, "amount": -7},
]


def _written(statement: Any, rows: list[dict[str, Any]], *, ours: bool) -> list[Any]:
    engine = create_engine("sqlite://")
    _META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(_ITEMS), _ROWS)
        if ours:
            execute_many(conn, statement, rows)
        else:
            conn.execute(statement, rows)
        return list(conn.execute(select(_ITEMS).order_by(_ITEMS.c.id)))


def _same(statement: Any, rows: list[dict[str, Any]]) -> None:
    assert _written(statement, rows, ours=True) == _written(statement, rows, ours=False)


def test_an_insert_with_converted_values() -> None:
    rows = [{**r, "id": r["id"] + 10, "day": date(2026, 3, r["id"])} for r in _ROWS]
    _same(insert(_ITEMS), rows)


def test_an_update_with_a_value_fixed_in_the_statement() -> None:
    statement = (
        update(_ITEMS)
        .where(_ITEMS.c.id == bindparam("key"))
        .values(amount=bindparam("paid"), flag=True)
    )
    _same(statement, [{"paid": 40, "key": 2}, {"paid": 41, "key": 1}])


def test_an_update_of_one_named_value() -> None:
    statement = update(_ITEMS).where(_ITEMS.c.name == "a").values(amount=bindparam("paid"))
    _same(statement, [{"paid": 3}])


def test_rows_sharing_a_value_and_rows_changing_it() -> None:
    """A value converted once is reused for the very same object only: a batch's shared date
    converts once, and a different date (or the same one again later) still converts."""
    shared, other = date(2026, 4, 30), date(2026, 5, 1)
    days = [shared, shared, other, shared, None, date(2026, 4, 30), other]
    rows = [
        {"id": 20 + n, "name": f"r{n}", "day": day, "flag": n % 2 == 0, "amount": n}
        for n, day in enumerate(days)
    ]
    _same(insert(_ITEMS), rows)
    _same(insert(_ITEMS), list(reversed(rows)))  # the statement's plan is reused: its memo too


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(0, 5).map(lambda d: date(2026, 4, 27) + timedelta(days=d)),
            st.integers(0, 5).map(lambda d: datetime(2026, 4, 27, 13) + timedelta(days=d)),
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from([2, 10_000]),
)
def test_equal_dates_that_are_other_objects_convert_alike(
    days: list[date | None], kept: int
) -> None:
    """Dates are converted once per day (`_Plan._date`), however many objects bring it, and
    a datetime in a date column is converted on its own, as SQLAlchemy does; the plan's days
    are forgotten past `_DAYS_KEPT` (2 here, to forget them often) and converted again."""
    rows = [
        # a copy of each date: equal to the others of its day, never the same object
        {"id": 40 + n, "name": f"d{n}", "flag": True, "amount": n,
         "day": None if day is None else copy(day)}
        for n, day in enumerate(days)
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "_DAYS_KEPT", kept)
        patch.setattr(batches, "_PLANS", {})  # a fresh plan, with no days converted yet
        _same(insert(_ITEMS), rows)
        _same(insert(_ITEMS), list(reversed(rows)))


def _rows_written(statement: Any, names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """`execute_rows` of value tuples writes what `conn.execute` writes of the same rows as
    dicts (on SQLite its own binding, on any other database the dicts themselves)."""
    engine = create_engine("sqlite://")
    _META.create_all(engine)
    written = []
    for ours in (True, False):
        with engine.begin() as conn:
            conn.execute(_ITEMS.delete())
            conn.execute(insert(_ITEMS), _ROWS)
            if ours:
                execute_rows(conn, statement, names, rows)
            else:
                conn.execute(statement, [dict(zip(names, r, strict=True)) for r in rows])
            written.append(list(conn.execute(select(_ITEMS).order_by(_ITEMS.c.id))))
    assert written[0] == written[1]


def test_value_tuples_in_the_tables_order_and_in_another() -> None:
    names = ("id", "name", "day", "flag", "amount")
    rows = [(30 + n, f"t{n}", date(2026, 6, n + 1), n % 2 == 1, -n) for n in range(4)]
    _rows_written(insert(_ITEMS), names, rows)
    # the statement's parameters in another order than the tuples' (an update's key last)
    statement = (
        update(_ITEMS)
        .where(_ITEMS.c.id == bindparam("key"))
        .values(amount=bindparam("paid"), day=bindparam("when"), flag=True)
    )
    when = date(2026, 7, 1)
    _rows_written(statement, ("key", "paid", "when"), [(1, 9, when), (2, 8, when)])
    _rows_written(statement, ("paid", "when", "key"), [(7, None, 2)])


def test_one_value_per_row_and_no_rows() -> None:
    statement = update(_ITEMS).where(_ITEMS.c.name == "b").values(amount=bindparam("paid"))
    _rows_written(statement, ("paid",), [(12,)])
    engine = create_engine("sqlite://")
    _META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(_ITEMS), _ROWS)
        execute_rows(conn, statement, ("paid",), [])  # no rows: no statement at all
        assert [r.amount for r in conn.execute(select(_ITEMS).order_by(_ITEMS.c.id))] == [5, -7]


def test_inserted_ids_of_value_tuples_are_the_rows_ids_in_order() -> None:
    engine = create_engine("sqlite://")
    _META.create_all(engine)
    names = ("name", "day", "amount")
    with engine.begin() as conn:
        ids = inserted_ids(conn, _ITEMS, [("x", date(2026, 1, 2), 1), ("y", None, 2)], names)
        found = conn.execute(select(_ITEMS.c.id, _ITEMS.c.name).order_by(_ITEMS.c.id)).all()
    assert [tuple(r) for r in found] == list(zip(ids, ("x", "y"), strict=True))


_FLOWS = Table(
    "flows",
    _META,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    Column("name", String(20), nullable=False),
    Column("amount", Integer, nullable=False),
)


@pytest.mark.parametrize("count", [1, 2, 63, 64, 65, 127, 128, 129, 200, 1000])
def test_insert_rows_writes_what_execute_rows_writes_in_the_same_order(count: int) -> None:
    """Many rows to a statement (`insert_rows`), rows in order: the same ids as one by one."""
    rows = [
        (date(2025, 1, 1 + n % 28), f"n{n}", n * (-1) ** n) for n in range(count)
    ]  # dates converted by their bind processor, some rows sharing one

    def written(write: Any) -> list[Any]:
        engine = create_engine("sqlite://")
        _META.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(_FLOWS), [{"day": date(2024, 1, 1), "name": "x", "amount": 0}])
            write(conn, insert(_FLOWS), ("day", "name", "amount"), rows)
            return list(conn.execute(select(_FLOWS).order_by(_FLOWS.c.id)))

    assert written(insert_rows) == written(execute_rows)


@pytest.mark.parametrize("count", [1, 63, 64, 65, 129, 1000])
def test_inserted_ids_many_to_a_statement_are_those_of_one_by_one(count: int) -> None:
    """`inserted_ids(..., multi_row=True)`: the same rows, ids and order as without."""
    rows = [(date(2025, 1, 1 + n % 28), f"n{n}", n) for n in range(count)]

    def written(multi_row: bool) -> tuple[list[int], list[Any]]:
        engine = create_engine("sqlite://")
        _META.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(_FLOWS), [{"day": date(2024, 1, 1), "name": "x", "amount": 0}])
            names = ("day", "name", "amount")
            ids = inserted_ids(conn, _FLOWS, rows, names, multi_row=multi_row)
            return ids, list(conn.execute(select(_FLOWS).order_by(_FLOWS.c.id)))

    ids, table = written(True)
    assert (ids, table) == written(False)
    assert [tuple(r)[1:] for r in table[1:]] == rows
    assert [r.id for r in table[1:]] == ids


def test_insert_rows_uses_two_statement_texts_whatever_the_count() -> None:
    """The multi-row statement and the one-row one: each other text would be one more
    statement for the driver to prepare and keep in its cache."""
    engine = create_engine("sqlite://")
    _META.create_all(engine)
    seen: set[str] = set()

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.add(statement)

    with engine.begin() as conn:
        for count in (1, 5, 63, 64, 65, 100, 130, 131):
            rows = [(date(2025, 1, 1), f"n{n}", n) for n in range(count)]
            insert_rows(conn, insert(_FLOWS), ("day", "name", "amount"), rows)
    assert len(seen) == 2


_DAY_OR_TIME = st.one_of(
    st.none(),
    st.integers(0, 5).map(lambda d: date(2026, 4, 27) + timedelta(days=d)),
    st.integers(0, 5).map(lambda d: datetime(2026, 4, 27, 13) + timedelta(days=d)),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(_DAY_OR_TIME, st.one_of(st.none(), st.booleans()), st.integers(-9, 9)),
        min_size=1,
        max_size=40,
    ),
    st.booleans(),
    st.sampled_from([2, 10_000]),
)
def test_rows_bound_column_by_column_are_those_bound_row_by_row(
    values: list[tuple[date | None, bool | None, int]], shared: bool, kept: int
) -> None:
    """`_Plan.rows_params` (converted columns walked once) gives each row exactly the
    parameters `row_params` gives it: dates and booleans converted by their bind processors,
    shared objects (one date for a whole batch) and copies alike, across batches."""
    first = values[0][0]
    rows = [
        (n, first if shared else copy(day), flag, amount)
        for n, (day, flag, amount) in enumerate(values)
    ]
    names = ("id", "day", "flag", "amount")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "_DAYS_KEPT", kept)
        plans = []
        for _ in range(2):
            patch.setattr(batches, "_PLANS", {})  # a fresh plan each, with nothing converted
            with create_engine("sqlite://").connect() as conn:
                plans.append(batches._plan_of(conn, insert(_ITEMS), names))
        by_columns, by_rows = plans
        assert by_columns is not None
        assert by_rows is not None
        for batch in (rows, list(reversed(rows)), rows):  # memos carried between batches
            assert by_columns.rows_params(batch) == [by_rows.row_params(r) for r in batch]

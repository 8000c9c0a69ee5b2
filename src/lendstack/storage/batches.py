"""Many rows per statement: id lists cut to size, and batched inserts that return their ids.

Batch paths (a day's payments, a day's bookings) read and write whole sets in a few
statements instead of a few statements per row; these are the two shapes they share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Connection, Dialect, Insert, Table, insert
from sqlalchemy.sql.dml import UpdateBase

from lendstack.core.errors import InvariantViolation

T = TypeVar("T")

CHUNK = 900
"""Values per IN (...) list or multi-row statement: well under every driver's parameter limit."""


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def inserted_ids(
    conn: Connection,
    table: Table,
    rows: Sequence[Any],
    names: tuple[str, ...] | None = None,
    *,
    multi_row: bool = False,
) -> list[int]:
    """Insert rows with multi-row statements and return the new ids in the rows' order.

    Rows are dicts, or with `names`, value tuples in that order (as `execute_rows`); with
    `multi_row` too, SQLite takes them many to a statement (`insert_rows`: a multi-row
    VALUES inserts its rows in order, so they take the same consecutive ids)."""
    if not rows:
        return []
    if conn.dialect.name != "sqlite":
        returning = _SORTED.get(table)
        if returning is None:
            returning = _SORTED[table] = insert(table).returning(
                table.c.id, sort_by_parameter_order=True
            )
        values: list[Mapping[str, Any]] = (
            list(rows) if names is None else [dict(zip(names, r, strict=True)) for r in rows]
        )
        return [int(i) for i in conn.execute(returning, values).scalars()]
    # SQLite gives a row inserted without an id the next rowid (one past the table's largest),
    # and the transaction holds the write lock throughout: rows inserted one after another
    # take consecutive ids in the rows' order, the last one being the connection's
    # last_insert_rowid. So the rows go through the driver's executemany (`execute_many`, far
    # cheaper than SQLAlchemy's id-returning multi-row insert), and the id range is checked
    # to hold exactly as many rows as were inserted.
    plain = _PLAIN.get(table)
    if plain is None:
        plain = _PLAIN[table] = insert(table)
    if names is None:
        execute_many(conn, plain, rows)
    elif multi_row:
        insert_rows(conn, plain, names, rows)
    else:
        execute_rows(conn, plain, names, rows)
    last, held = conn.exec_driver_sql(_last_ids_sql(conn.dialect, table), (len(rows),)).one()
    if held != len(rows):
        raise InvariantViolation(f"{table.name}: {len(rows)} rows inserted, ids up to {last}")
    return list(range(last - len(rows) + 1, last + 1))


def _last_ids_sql(dialect: Dialect, table: Table) -> str:
    """The last id inserted, and how many rows hold the ? ids up to it (one statement)."""
    if table not in _LAST_IDS:
        name = dialect.identifier_preparer.format_table(table)
        _LAST_IDS[table] = (
            f"SELECT last_insert_rowid(), (SELECT count(*) FROM {name}"
            " WHERE id > last_insert_rowid() - ? AND id <= last_insert_rowid())"
        )
    return _LAST_IDS[table]


_SORTED: dict[Table, Insert] = {}
_PLAIN: dict[Table, Insert] = {}
_LAST_IDS: dict[Table, str] = {}
"""Each table's inserts and id check, built once: batch paths run them every batch."""


def execute_many(
    conn: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]
) -> None:
    """`conn.execute(statement, rows)`: the same statement, the same values written.

    On SQLite the rows go to the driver's executemany as tuples that SQLAlchemy's own bind
    processors converted (dates, booleans), skipping its per-row parameter machinery: most
    of the time of a day's batch of writes there. Other databases take `conn.execute`
    (SQLAlchemy already folds the rows into multi-row statements on PostgreSQL).
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(statement, list(rows))
        return
    names = tuple(rows[0])
    plan = _PLANS.get((statement, names))
    if plan is None:
        plan = _PLANS[(statement, names)] = _plan(conn.dialect, statement, names)
    if plan is _BY_SQLALCHEMY:
        conn.execute(statement, list(rows))
        return
    conn.exec_driver_sql(plan.sql, [plan.params(row) for row in rows])


def execute_rows(
    conn: Connection,
    statement: UpdateBase,
    names: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
) -> None:
    """`execute_many` of rows given as value tuples in the order of `names`.

    The hot batch paths (a day's funder flows, journal lines, installment parts) write a
    dozen rows per payment: a tuple per row spares building a dict that the SQLite path
    only takes apart again. Other databases get the dicts `conn.execute` needs.
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])
        return
    plan = _plan_of(conn, statement, names)
    if plan is None:
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])
        return
    if plan.as_given:  # the tuples already are the driver's parameters
        conn.exec_driver_sql(plan.sql, list(rows))
        return
    conn.exec_driver_sql(plan.sql, plan.rows_params(rows))


def insert_rows(
    conn: Connection, statement: Insert, names: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> None:
    """`execute_rows` of an insert, with many rows to each statement on SQLite.

    A row executed on its own costs SQLite a statement's start and finish besides the row's
    own writes, and its values go through the driver one statement at a time: about a
    quarter of a day's funder flows insert. Here the rows go `MULTI_ROWS` to a multi-row
    VALUES statement (all of them in one executemany), and the rest through the one-row
    statement (one executemany). Two statement texts per table, whatever the batch's size:
    each other size would be a statement to prepare, and one more in the driver's statement
    cache (128), evicting others a run needs (every remainder size its own text cost a whole
    run more prepares than the multi-row statements saved). The rows are written in their
    order, so they take the same ids as one by one.
    """
    if not rows:
        return
    plan = _plan_of(conn, statement, names) if conn.dialect.name == "sqlite" else None
    group = None if plan is None else _values_group(plan.sql)
    if plan is None or group is None:
        execute_rows(conn, statement, names, rows)
        return
    params = plan.rows_params(rows)
    size = max(1, min(MULTI_ROWS, CHUNK // len(params[0])))
    whole = len(params) - len(params) % size
    if whole:
        conn.exec_driver_sql(
            _multi_row_sql(plan.sql, group, size),
            [_flat(params[start : start + size]) for start in range(0, whole, size)],
        )
    if whole < len(params):
        conn.exec_driver_sql(plan.sql, params[whole:])


MULTI_ROWS = 64
"""Rows per multi-row insert: past a few dozen the statement's fixed cost is spread thin."""


def _plan_of(conn: Connection, statement: UpdateBase, names: tuple[str, ...]) -> _Plan | None:
    """The statement's SQLite plan, made once; None where SQLAlchemy must execute it."""
    plan = _PLANS.get((statement, names))
    if plan is None:
        plan = _PLANS[(statement, names)] = _plan(conn.dialect, statement, names)
    return None if plan is _BY_SQLALCHEMY else plan


def _values_group(sql: str) -> str | None:
    """The `(?, ?, ...)` of a one-row INSERT ... VALUES, or None for any other shape."""
    head, found, group = sql.rpartition(" VALUES ")
    if not found or not head.startswith("INSERT ") or set(group) - set("(?, )"):
        return None
    return group


def _multi_row_sql(sql: str, group: str, size: int) -> str:
    key = (sql, size)
    text = _MULTI_ROW_SQL.get(key)
    if text is None:
        text = _MULTI_ROW_SQL[key] = ", ".join([sql, *[group] * (size - 1)])
    return text


def _flat(params: Sequence[Sequence[Any]]) -> tuple[Any, ...]:
    return tuple(chain.from_iterable(params))


_MULTI_ROW_SQL: dict[tuple[str, int], str] = {}


class _Plan:
    """A statement compiled for rows with the same keys, and how a row becomes its positional
    parameters: one C-level `itemgetter` for the row's values, then the few values a bind
    processor converts (dates, booleans) and the values fixed in the statement, in place."""

    def __init__(self, sql: str, slots: Sequence[_Slot], keys: Sequence[str] = ()) -> None:
        self.sql = sql
        names = [name for name, _, _ in slots if name is not None]
        self._get = itemgetter(*names) if names else (lambda _row: ())
        self._single = len(names) == 1  # `itemgetter` of one name returns the bare value
        order = [list(keys).index(name) for name in names]
        self._pick: Callable[[Sequence[Any]], Any] | None = (
            None if order == list(range(len(keys))) else itemgetter(*order)
        )
        """For `row_params`: a row tuple (in the order of `keys`) to the named slots' values
        in statement order; None when they are already in that order (the usual case)."""
        named = [slot for slot in slots if slot[0] is not None]
        self._converts = tuple((i, c) for i, (_, c, _) in enumerate(named) if c is not None)
        self._fixed = tuple((i, value) for i, (name, _, value) in enumerate(slots) if name is None)
        self.as_given = self._pick is None and not self._converts and not self._fixed
        """Whether a row tuple is its own parameters (in order, nothing to convert or add)."""
        self._last: list[tuple[Any, Any]] = [(_UNSEEN, None)] * len(self._converts)
        """Per converted slot, the last value converted and what it became: a batch's rows
        share their date and creation time (the same objects), and a bind processor is a
        pure function of its value, so each is converted once per batch, not once per row."""
        self._dates: tuple[dict[date, Any], ...] = tuple({} for _ in self._converts)
        """Per converted slot, what each date became. Equal dates are the same day (a `date`
        exactly, not a datetime), so they convert alike: a loan's installments each bring
        their own start and due dates, equal ones across a day's loans but never the same
        objects, and each day is converted once, not twice per installment."""

    def params(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        values = self._get(row)
        if self._single:
            values = (values,)
        return self._bound(values)

    def row_params(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """`params` of a row given as a tuple in the order of the plan's keys."""
        pick = self._pick
        if pick is None:
            return self._bound(tuple(row))
        values = pick(row)
        return self._bound((values,) if self._single else values)

    def rows_params(self, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """`row_params` of each row, in order. Bound column by column where only some columns
        convert (a batch's usual shape): the rows are taken apart into columns and put back
        together by `zip` (C loops), and only the converted columns are walked in Python,
        instead of two calls, a list and a tuple per row."""
        if self.as_given:  # the tuples already are the driver's parameters
            return list(rows)
        if self._pick is not None or self._fixed:
            return [self.row_params(row) for row in rows]
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for n, (i, convert) in enumerate(self._converts):
            columns[i] = self._converted(n, columns[i], convert)
        return list(zip(*columns, strict=True))

    def _converted(self, n: int, column: Sequence[Any], convert: Callable[[Any], Any]) -> list[Any]:
        """Slot `n`'s values converted, as `_bound` converts each (the same memo of the
        last value, the same dates converted once)."""
        out: list[Any] = []
        last_value, last_converted = self._last[n]
        for value in column:
            if value is last_value:  # the very same object: identity, so never a lookalike
                out.append(last_converted)
            elif type(value) is date:
                last_value, last_converted = value, self._date(n, value, convert)
                out.append(last_converted)
            else:
                converted = convert(value)
                if type(value) in _IMMUTABLE:  # a mutable value may change under its identity
                    last_value, last_converted = value, converted
                out.append(converted)
        self._last[n] = (last_value, last_converted)  # one tuple, swapped whole
        return out

    def _bound(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """The named slots' values converted, with the fixed values put in their places."""
        if not self._converts and not self._fixed:
            return values
        out = list(values)
        last = self._last
        for n, (i, convert) in enumerate(self._converts):
            value, seen = out[i], last[n]
            if seen[0] is value:  # the very same object: identity, so never a lookalike
                out[i] = seen[1]
            elif type(value) is date:
                out[i] = converted = self._date(n, value, convert)
                last[n] = (value, converted)
            else:
                out[i] = converted = convert(value)
                if type(value) in _IMMUTABLE:  # a mutable value may change under its identity
                    last[n] = (value, converted)  # one tuple, swapped whole: thread-safe
        for i, value in self._fixed:  # in ascending order, so each lands at its own place
            out.insert(i, value)
        return tuple(out)

    def _date(self, n: int, day: date, convert: Callable[[Any], Any]) -> Any:
        """`convert(day)` for slot `n`, once per day: the days a run writes are a few
        thousand, and past `_DAYS_KEPT` the slot's days start afresh."""
        days = self._dates[n]
        converted = days.get(day, _UNSEEN)
        if converted is _UNSEEN:
            if len(days) >= _DAYS_KEPT:
                days.clear()
            converted = days[day] = convert(day)
        return converted


_UNSEEN = object()
_DAYS_KEPT = 10_000
"""Dates a plan's slot keeps converted (27 years of days)."""
_IMMUTABLE = frozenset({date, datetime, bool, int, str, Decimal, type(None)})
_Slot = tuple[str | None, Callable[[Any], Any] | None, Any]
"""Where one positional parameter comes from: the row's value under a name (converted by
the column type's bind processor, if it has one), or, for a name of None, a value fixed in
the statement."""

_BY_SQLALCHEMY = _Plan("", [])
_PLANS: dict[tuple[UpdateBase, tuple[str, ...]], _Plan] = {}


def _plan(dialect: Dialect, statement: UpdateBase, names: tuple[str, ...]) -> _Plan:
    """The statement compiled for rows with these keys, and its positional parameters."""
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.positiontup is None:
        return _BY_SQLALCHEMY  # Python-side column defaults: SQLAlchemy computes them per row
    slots: list[_Slot] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        fixed = name not in names
        if fixed and bind.required:
            return _BY_SQLALCHEMY  # a value missing from the rows: SQLAlchemy reports it
        value = bind.effective_value if fixed else None
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if fixed:
            slots.append((None, None, value if convert is None else convert(value)))
        else:
            slots.append((name, convert, None))
    return _Plan(compiled.string, slots, names)

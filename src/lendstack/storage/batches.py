"""Many rows per statement: id lists cut to size, and multi-row inserts that return their ids.

Batch paths (a day's payments, a day's bookings) read and write whole sets in a few
statements instead of a few statements per row; these are the two shapes they share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
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


def inserted_ids(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows with multi-row statements and return the new ids in the rows' order."""
    if not rows:
        return []
    if conn.dialect.name != "sqlite":
        returning = _SORTED.get(table)
        if returning is None:
            returning = _SORTED[table] = insert(table).returning(
                table.c.id, sort_by_parameter_order=True
            )
        return [int(i) for i in conn.execute(returning, list(rows)).scalars()]
    # SQLite returns a multi-row insert's ids in no promised order, so SQLAlchemy keeps the
    # order by inserting row by row (a statement per row). But SQLite gives the rows of an
    # insert the next rowids in turn, in the rows' order, and the transaction holds the
    # write lock throughout: the ids, sorted, are the rows' ids in order, one apart.
    unsorted = _UNSORTED.get(table)
    if unsorted is None:
        unsorted = _UNSORTED[table] = insert(table).returning(table.c.id)
    ids = sorted(int(i) for i in conn.execute(unsorted, list(rows)).scalars())
    if len(ids) != len(rows) or ids[-1] - ids[0] != len(rows) - 1:
        raise InvariantViolation(f"{table.name}: {len(rows)} rows inserted, ids {ids[:3]}...")
    return ids


_SORTED: dict[Table, Insert] = {}
_UNSORTED: dict[Table, Insert] = {}
"""Each table's id-returning insert, built once: batch paths run it every batch."""


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
    sql, slots = plan
    params = [
        tuple(
            default if name is None else row[name] if convert is None else convert(row[name])
            for name, convert, default in slots
        )
        for row in rows
    ]
    conn.exec_driver_sql(sql, params)


_Slot = tuple[str | None, Callable[[Any], Any] | None, Any]
"""Where one positional parameter comes from: the row's value under a name (converted by
the column type's bind processor, if it has one), or, for a name of None, a value fixed in
the statement."""

_BY_SQLALCHEMY: tuple[str, list[_Slot]] = ("", [])
_PLANS: dict[tuple[UpdateBase, tuple[str, ...]], tuple[str, list[_Slot]]] = {}


def _plan(
    dialect: Dialect, statement: UpdateBase, names: tuple[str, ...]
) -> tuple[str, list[_Slot]]:
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
    return compiled.string, slots

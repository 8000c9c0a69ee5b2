"""Many rows per statement: id lists cut to size, and multi-row inserts that return their ids.

Batch paths (a day's payments, a day's bookings) read and write whole sets in a few
statements instead of a few statements per row; these are the two shapes they share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, insert

T = TypeVar("T")

CHUNK = 900
"""Values per IN (...) list or multi-row statement: well under every driver's parameter limit."""


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def inserted_ids(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows (SQLAlchemy batches them into multi-row statements) and return the new
    ids in the rows' order."""
    if not rows:
        return []
    returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return [int(i) for i in conn.execute(returning, list(rows)).scalars()]

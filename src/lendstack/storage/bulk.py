"""Bulk loading of a generated loan book: COPY on PostgreSQL, batched inserts on SQLite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, insert, select, text

from lendstack.core.errors import Conflict
from lendstack.servicing.domain.products import Product
from lendstack.servicing.synthetic import (
    BookSpec,
    OpeningTotals,
    SyntheticLoan,
    chunk_jobs,
    generate_chunk,
)
from lendstack.storage import mapping
from lendstack.storage.cob import snapshot
from lendstack.storage.repositories import CLOSED_STEP, SqlLedger
from lendstack.storage.schema import cob_steps, installments, loans

BATCH = 20_000


def loan_row(item: SyntheticLoan, created: datetime) -> dict[str, Any]:
    state = item.state
    return {
        "id": state.id,
        "reference": None,
        "currency": "CNY",
        "created_at": created,
        **mapping.contract_columns(state.contract),
        **mapping.state_columns(state),
    }


def installment_rows(item: SyntheticLoan) -> list[dict[str, Any]]:
    state = item.state
    return [mapping.installment_columns(state.id, 1, i) for i in state.installments]


def _copy(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL COPY: an order of magnitude faster than INSERT for millions of rows."""
    columns = list(rows[0])
    raw = conn.connection.driver_connection
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as cp,
    ):  # type: ignore[union-attr]
        for row in rows:
            cp.write_row([row[c] for c in columns])


def _write(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, rows)
    else:
        conn.execute(insert(table), rows)


def generate_into(
    engine: Engine,
    products: dict[str, Product],
    spec: BookSpec,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> OpeningTotals:
    """Generate a synthetic book in parallel processes and load it."""
    jobs = chunk_jobs(products, spec)
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        book = (loan for chunk in pool.map(generate_chunk, jobs) for loan in chunk)
        reference = f"opening:generate:{spec.seed}:{spec.count}"
        return write_book(engine, book, spec.as_of, reference, progress)


def write_book(
    engine: Engine,
    book: Iterable[SyntheticLoan],
    as_of: date,
    reference: str,
    progress: Callable[[int], None] | None = None,
) -> OpeningTotals:
    """Load a generated book, its opening entry and a closed `as_of`, in one transaction."""
    totals = OpeningTotals()
    created = datetime.now(UTC)
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(loans)).scalar():
            raise Conflict(
                "the database already holds loans; generate into an empty one", field="database"
            )
        batch_loans: list[dict[str, Any]] = []
        batch_items: list[dict[str, Any]] = []
        for item in book:
            totals.add(item)
            batch_loans.append(loan_row(item, created))
            batch_items += installment_rows(item)
            if len(batch_loans) >= BATCH:
                _flush(conn, batch_loans, batch_items, progress)
        _flush(conn, batch_loans, batch_items, progress)
        _finish(conn, totals, as_of, reference)
    return totals


def _flush(
    conn: Connection,
    batch_loans: list[dict[str, Any]],
    batch_items: list[dict[str, Any]],
    progress: Callable[[int], None] | None,
) -> None:
    _write(conn, loans, batch_loans)
    _write(conn, installments, batch_items)
    if progress:
        progress(len(batch_loans))
    batch_loans.clear()
    batch_items.clear()


def _finish(conn: Connection, totals: OpeningTotals, as_of: date, reference: str) -> None:
    entry = totals.entry(as_of, reference)
    if entry is not None:
        SqlLedger(conn).post(entry)
    snapshot(conn, as_of)
    conn.execute(
        insert(cob_steps).values(
            business_date=as_of, step=CLOSED_STEP, rows=0, completed_at=datetime.now(UTC)
        )
    )
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('loans', 'id'), (SELECT MAX(id) FROM loans))"
            )
        )

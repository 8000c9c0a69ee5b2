"""Bulk loading of a generated loan book: COPY on PostgreSQL, batched inserts on SQLite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
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
from lendstack.storage.calendar import CLOSED_STEP
from lendstack.storage.cob import snapshot
from lendstack.storage.repositories import SqlLedger
from lendstack.storage.schema import cob_steps, installments, loans


@dataclass(frozen=True, slots=True)
class RowChunk:
    """Ready-to-load rows for a slice of a book, built in the worker that generated it."""

    loans: list[tuple[Any, ...]]
    installments: list[tuple[Any, ...]]
    totals: OpeningTotals


LOAN_COLUMNS = tuple(c.name for c in loans.columns)
INSTALLMENT_COLUMNS = tuple(c.name for c in installments.columns)


def rows_for(book: Iterable[SyntheticLoan], created: datetime) -> RowChunk:
    loan_rows, item_rows, totals = [], [], OpeningTotals()
    for item in book:
        state = item.state
        totals.add(item)
        row = {
            "id": state.id,
            "reference": None,
            "currency": "CNY",
            "created_at": created,
            **mapping.contract_columns(state.contract),
            **mapping.state_columns(state),
        }
        loan_rows.append(tuple(row[c] for c in LOAN_COLUMNS))
        for i in state.installments:
            cols = mapping.installment_columns(state.id, 1, i)
            item_rows.append(tuple(cols[c] for c in INSTALLMENT_COLUMNS))
    return RowChunk(loan_rows, item_rows, totals)


def _chunk_rows(job: tuple[dict[str, Product], BookSpec, int, datetime]) -> RowChunk:
    products, spec, index, created = job
    return rows_for(generate_chunk((products, spec, index)), created)


def _copy(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """PostgreSQL COPY: an order of magnitude faster than INSERT for millions of rows."""
    raw = conn.connection.driver_connection
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cur, cur.copy(sql) as cp:  # type: ignore[union-attr]
        for row in rows:
            cp.write_row(row)


def _insert(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """SQLite: one prepared INSERT run over the batch by the driver, no per-row Python work."""
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    conn.connection.driver_connection.executemany(sql, rows)  # type: ignore[union-attr]


def _write(conn: Connection, chunk: RowChunk) -> None:
    load = _copy if conn.dialect.name == "postgresql" else _insert
    load(conn, loans, LOAN_COLUMNS, chunk.loans)
    load(conn, installments, INSTALLMENT_COLUMNS, chunk.installments)


def generate_into(
    engine: Engine,
    products: dict[str, Product],
    spec: BookSpec,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> OpeningTotals:
    """Generate a synthetic book in parallel processes and load it."""
    created = datetime.now(UTC)
    jobs = [(*job, created) for job in chunk_jobs(products, spec)]
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        chunks = pool.map(_chunk_rows, jobs)
        reference = f"opening:generate:{spec.seed}:{spec.count}"
        return write_book(engine, chunks, spec.as_of, reference, progress)


def write_book(
    engine: Engine,
    chunks: Iterable[RowChunk],
    as_of: date,
    reference: str,
    progress: Callable[[int], None] | None = None,
) -> OpeningTotals:
    """Load a generated book, its opening entry and a closed `as_of`, in one transaction."""
    totals = OpeningTotals()
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(loans)).scalar():
            raise Conflict(
                "the database already holds loans; generate into an empty one", field="database"
            )
        for chunk in chunks:
            _write(conn, chunk)
            totals.merge(chunk.totals)
            if progress:
                progress(len(chunk.loans))
        _finish(conn, totals, as_of, reference)
    return totals


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

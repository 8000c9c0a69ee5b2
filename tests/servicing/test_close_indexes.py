"""The covering indexes a simulation adds for its deferring close (`storage.close_indexes`):
the accrual's sums and the snapshot read them alone, not the loan rows, and they are gone
after the block, even when it fails."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from lendstack.servicing.cob import close_day
from lendstack.storage.close_indexes import COVERING, covering_indexes
from lendstack.storage.cob import SqlCloseStore

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ON = date(2026, 1, 5)


def _indexes(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars()
        )


def _statements_of_a_close(engine: Engine, day: date) -> list[tuple[str, Any]]:
    """Every statement a deferring close of `day` ran, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        close_day(SqlCloseStore(engine, defer_accrual=True), day)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def _plan(engine: Engine, statement: str, params: Any) -> str:
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        return " ".join(str(r[3]) for r in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params))


def test_the_accrual_and_the_snapshot_read_only_their_covering_index(
    engine: Engine, book: Any
) -> None:
    for amount in ("3000.00", "5000.00", "8000.00"):
        book.book("cash-loan-installment", amount, 12, "0.18", ON)
    close_day(SqlCloseStore(engine), ON)
    with covering_indexes(engine):
        seen = _statements_of_a_close(engine, ON + timedelta(days=1))
        plans = {
            key: _plan(engine, statement, params)
            for statement, params in seen
            for key in ("SELECT non_accrual, SUM(", "INSERT INTO portfolio_snapshots")
            if statement.startswith(key)
        }
    assert "COVERING INDEX ix_run_close_accrual" in plans["SELECT non_accrual, SUM("]
    assert "COVERING INDEX ix_run_close_snapshot" in plans["INSERT INTO portfolio_snapshots"]


def test_the_indexes_are_dropped_after_the_block_even_on_error(engine: Engine) -> None:
    before, inside = _indexes(engine), set[str]()

    def failing_run() -> None:
        with covering_indexes(engine):
            inside.update(_indexes(engine))
            raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError):
        failing_run()
    assert inside == before | set(COVERING)
    assert _indexes(engine) == before

"""Migration 0022's indexes: every reader of funder flows still reads through an index, and
the migration goes down and up.

0022 writes fewer index entries per flow and per journal line (a day-first index of flows in
place of a date one and a funder-first one; no index of flows by loan or of lines by
account). These tests run each reader and check the plan of every statement it sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event

from lendstack.storage import funding, settlements, subledger
from migration_checks import assert_indexes_migrate_down_and_up

ADDED = {"ix_funder_flows_business_date_funder_id"}
DROPPED = {
    "ix_funder_flows_business_date",
    "ix_funder_flows_funder_id_business_date",
    "ix_funder_flows_loan_id",
    "ix_journal_lines_account",
}
DAY = date(2026, 3, 2)


def _flow_plans(engine: Engine, read: Callable[[Connection], Any]) -> list[str]:
    """The plan lines, for the flows table, of every statement `read` sent."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as conn:
            read(conn)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    lines = []
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        for statement, params in seen:
            if "funder_flows" not in statement:
                continue
            for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params):
                words = str(row[3]).split()
                if words[0] in ("SCAN", "SEARCH") and words[1] in ("x", "funder_flows"):
                    lines.append(str(row[3]))
    assert lines, "the reader sent no statement on funder_flows"
    return lines


READERS: dict[str, Callable[[Connection], Any]] = {
    "booking's re-check, flows since the close": lambda conn: funding._flows_since(
        conn, {"bank": funding._AtClose(date(2026, 3, 1), 0, 0)}, DAY
    ),
    "the close's funding entry": lambda conn: subledger._day_entry(conn, DAY),
    "settlement statements, every bank": lambda conn: settlements._day_flows(conn, DAY),
    "settlement statement, one bank": lambda conn: settlements._day_flows(conn, DAY, "bank"),
    "closing positions": lambda conn: settlements._closing_positions(conn, DAY),
}
RECONCILIATION = subledger._flows_to_positions
"""The whole-book check of positions against flows: the one reader of flows by loan, which
0022 leaves to an index SQLite builds for the query."""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("reader", list(READERS))
def test_each_reader_of_flows_reads_a_declared_index(engine: Engine, reader: str) -> None:
    for line in _flow_plans(engine, READERS[reader]):
        assert line.startswith("SEARCH"), line
        assert "INDEX" in line, line
        assert "AUTOMATIC" not in line, line


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_reconciliation_reads_flows_through_an_automatic_index(engine: Engine) -> None:
    """Not a scan of every flow per position: SQLite indexes the flows for the query."""
    for line in _flow_plans(engine, RECONCILIATION):
        assert line.startswith("SEARCH"), line
        assert "AUTOMATIC" in line, line


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_day_reads_take_the_day_first_index(engine: Engine) -> None:
    """Reads of one date, or of the dates since a close, seek on the date."""
    for reader in ("the close's funding entry", "booking's re-check, flows since the close"):
        for line in _flow_plans(engine, READERS[reader]):
            assert "ix_funder_flows_business_date_funder_id (business_date" in line, line


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_write_indexes_migrate_down_and_up(engine: Engine) -> None:
    assert_indexes_migrate_down_and_up(engine, "0021", added=ADDED, dropped=DROPPED)


def test_the_readers_run_on_both_backends(engine: Engine) -> None:
    """The readers whose indexes changed run on an empty book, whichever the backend."""
    with engine.connect() as conn:
        for read in (*READERS.values(), RECONCILIATION):
            read(conn)

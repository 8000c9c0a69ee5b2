"""Funder flows' partial indexes (0021): the queries that read flows by kind still read an
index of that kind's rows only, and the migration goes down and up.

The payments' flows (principal, interest, spread, fee parts) take no entry in these indexes,
which is the point: they are most of the table's rows and of a day's inserts.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from lendstack.storage import funding
from lendstack.storage.subledger import _GUARANTEE_PAID
from migration_checks import assert_indexes_migrate_down_and_up

PARTIAL = {"ix_funder_flows_disbursements", "ix_funder_flows_guarantees"}
REPLACED = "ix_funder_flows_flow_funder_id"


def _plan(engine: Engine, statement: str, params: Any) -> str:
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        return " ".join(str(r[3]) for r in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_kinds_read_by_kind_read_their_partial_index(engine: Engine) -> None:
    day = date(2026, 3, 2).isoformat()
    close = _plan(
        engine,
        funding._CLOSE_EXPOSURE,
        {"day": day, "balance": 0, "never": date.min.isoformat(), "f": "bank", "through": None},
    )
    assert "INDEX ix_funder_flows_disbursements (funder_id=? AND business_date>?" in close
    paid = _plan(engine, str(_GUARANTEE_PAID), {"f": "bank"})
    assert "INDEX ix_funder_flows_guarantees (funder_id=?)" in paid

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    with engine.connect() as conn:
        funding._tallies(conn, date(2026, 3, 2))
    event.remove(engine, "before_cursor_execute", record)
    statement, params = next((s, p) for s, p in seen if "flow = 'disbursement'" in s)
    assert "INDEX ix_funder_flows_disbursements" in _plan(engine, statement, params)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_partial_indexes_migrate_down_and_up(engine: Engine) -> None:
    assert_indexes_migrate_down_and_up(engine, "0020", added=PARTIAL, dropped={REPLACED})


def test_the_guarantee_sum_runs_with_its_kind_as_a_literal(engine: Engine) -> None:
    """`guarantee_paid`'s statement, the kind as a literal, runs on both backends (its sums:
    test_subledger_storage's payouts)."""
    from lendstack.storage.subledger import guarantee_paid

    with engine.begin() as conn:
        assert guarantee_paid(conn, "no-such-bank") == 0
        found = conn.execute(text("SELECT COUNT(*) FROM funder_flows")).scalar()
    assert found == 0

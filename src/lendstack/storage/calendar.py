"""The business calendar as the close records it: a date is closed once its `closed` step is."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, func, select

from lendstack.storage.schema import cob_steps

CLOSED_STEP = "closed"

LAST_CLOSED = select(func.max(cob_steps.c.business_date)).where(cob_steps.c.step == CLOSED_STEP)
"""Built once: payments ask it on every call, and a prebuilt statement skips compilation."""


def as_date(value: Any) -> date | None:
    """A DATE column's value (SQLite may hand back text) as a date."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def last_closed(conn: Connection) -> date | None:
    return as_date(conn.execute(LAST_CLOSED).scalar())

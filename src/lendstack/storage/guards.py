"""Database-level append-only guard on the decision log.

The hash chain *detects* tampering; these triggers *refuse* it: an UPDATE, DELETE or (on
PostgreSQL) TRUNCATE of `decision_log` fails inside the database, whoever sends it. Someone
with DDL rights can still drop the triggers first, which is why verification does not rely
on them (the tamper tests drop them, as such an attacker would, and still catch every edit).
Review resolutions are new rows, never updates, so nothing legitimate is refused.
"""

from __future__ import annotations

from sqlalchemy import Connection

MESSAGE = "decision_log is append-only"

_SQLITE_CREATE = tuple(
    f"CREATE TRIGGER decision_log_no_{verb.lower()} BEFORE {verb} ON decision_log "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
    for verb in ("UPDATE", "DELETE")
)
_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS decision_log_no_update",
    "DROP TRIGGER IF EXISTS decision_log_no_delete",
)
_PG_CREATE = (
    "CREATE FUNCTION decision_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$",
    "CREATE TRIGGER decision_log_append_only BEFORE UPDATE OR DELETE ON decision_log "
    "FOR EACH ROW EXECUTE FUNCTION decision_log_append_only()",
    "CREATE TRIGGER decision_log_no_truncate BEFORE TRUNCATE ON decision_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION decision_log_append_only()",
)
_PG_DROP = (
    "DROP TRIGGER IF EXISTS decision_log_append_only ON decision_log",
    "DROP TRIGGER IF EXISTS decision_log_no_truncate ON decision_log",
    "DROP FUNCTION IF EXISTS decision_log_append_only()",
)


def create_append_only_guard(conn: Connection) -> None:
    for statement in _SQLITE_CREATE if conn.dialect.name == "sqlite" else _PG_CREATE:
        conn.exec_driver_sql(statement)


def drop_append_only_guard(conn: Connection) -> None:
    for statement in _SQLITE_DROP if conn.dialect.name == "sqlite" else _PG_DROP:
        conn.exec_driver_sql(statement)

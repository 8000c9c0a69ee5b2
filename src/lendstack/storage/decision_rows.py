"""The decision log's row mechanics: the append lock, the head anchor, and prepared rows.

Shared by every writer of the chain (single appends, chunked batch appends, review
resolutions) so there is one definition of how a row is locked, hashed and anchored.
Appends are serialised so the chain never forks: PostgreSQL takes a transaction-scoped
advisory lock, SQLite starts the transaction with BEGIN IMMEDIATE (the write lock up front;
a deferred BEGIN would let two writers read the same head, and the loser could only fail).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, Row, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from lendstack.core.errors import ValidationError
from lendstack.storage.schema import decision_log_head
from lendstack.underwriting.audit import (
    ChainProblem,
    HeadAnchor,
    LogEntry,
    ProblemKind,
    canonical_json,
)

APPEND_LOCK = 0x4C53_4443_4C4F_47  # "LSDCLOG": the advisory lock that serialises appends
COLUMNS_KEY = "_log"
"""Key under which `append` adds the row's query columns to the hashed record."""
HEAD = select(decision_log_head.c.seq, decision_log_head.c.hash).where(decision_log_head.c.id == 1)


def entry_of(row: Any) -> LogEntry:
    return LogEntry(row.seq, row.kind, row.decision_id, row.record_json, row.prev_hash, row.hash)


def utc(moment: datetime, field: str) -> datetime:
    """Times are instants: refuse naive ones rather than guess a zone."""
    if moment.tzinfo is None:
        raise ValidationError("must be timezone-aware", field=field)
    return moment.astimezone(UTC)


class _AppendGate:
    """Queues SQLite appenders before they ask SQLite for the write lock.

    SQLite's busy handler polls: a writer that finds the database locked sleeps 1, 2, 5 ms…
    and tries again, while the CPU idles. With several server workers appending decisions
    that is most of the lost throughput. An exclusive `flock` on a file beside the database
    (processes) plus a mutex (threads of one process, which share the file description)
    makes appenders wait in the kernel and wake the moment the previous one commits.
    The BEGIN IMMEDIATE inside stays the real guarantee; this only orders the queue.
    """

    _gates: ClassVar[dict[str, _AppendGate]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: str) -> None:
        self._mutex = threading.Lock()
        self._fd = os.open(f"{path}.append-lock", os.O_RDWR | os.O_CREAT, 0o600)

    @classmethod
    def for_engine(cls, engine: Engine) -> _AppendGate | None:
        path = engine.url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        with cls._guard:
            if path not in cls._gates:
                cls._gates[path] = cls(path)
            return cls._gates[path]

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._mutex:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


@contextmanager
def serialised(engine: Engine) -> Iterator[Connection]:
    """One write transaction holding the log's append lock; commits only if the block ends."""
    gate = _AppendGate.for_engine(engine) if engine.dialect.name == "sqlite" else None
    if gate is None:
        with _transaction(engine) as conn:
            yield conn
        return
    with gate.held(), _transaction(engine) as conn:
        yield conn


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # sqlite3 must not issue its own deferred BEGIN; we issue BEGIN IMMEDIATE instead.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
            return
        with conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK})
            yield conn


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction that sees one consistent state of the log and its anchor."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN")  # WAL: the first read fixes the snapshot
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
            return
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def read_head(conn: Connection) -> HeadAnchor | None:
    row = conn.execute(HEAD).first()
    return None if row is None else HeadAnchor(int(row.seq), row.hash)


def advance_head(conn: Connection, before: HeadAnchor | None, entry: LogEntry) -> None:
    values = {"seq": entry.seq, "hash": entry.hash}
    if before is None:
        conn.execute(insert(decision_log_head), {"id": 1, **values})
    else:
        conn.execute(update(decision_log_head).where(decision_log_head.c.id == 1), values)


def hashed_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The query columns as the hashed record holds them: their JSON forms.

    The plain types a decision row holds are converted directly, as `canonical_json` then
    `json.loads` would (text, integers, None, dates and instants as ISO text); anything else
    takes that round trip itself, so the result is the same either way.
    """
    out: dict[str, Any] = {}
    for k in HASHED_COLUMNS:
        value = row[k]
        kind = type(value)
        if value is None or kind is str or kind is int:
            out[k] = value
        elif kind is date or kind is datetime:
            out[k] = value.isoformat()
        else:
            columns: dict[str, Any] = json.loads(
                canonical_json({k: row[k] for k in HASHED_COLUMNS})
            )
            return columns
    return out


HASHED_COLUMNS = (
    "kind",
    "decision_id",
    "channel",
    "application_date",
    "outcome",
    "borrower_key",
    "offer_amount_fen",
    "idempotency_key",
    "request_sha256",
    "recorded_at",
)


def column_problem(row: Row[Any]) -> ChainProblem | None:
    """A query column that disagrees with the hashed record: edited outside the chain."""
    try:
        hashed = json.loads(row.record_json).get(COLUMNS_KEY)
    except (ValueError, AttributeError):
        return None  # an unreadable record is already an EDITED problem
    if not isinstance(hashed, dict):
        return None
    values = dict(row._mapping)
    values["recorded_at"] = as_utc(values["recorded_at"])
    values["application_date"] = as_date(values["application_date"])
    actual = hashed_columns(values)
    wrong = sorted(k for k in HASHED_COLUMNS if hashed.get(k) != actual[k])
    if not wrong:
        return None
    message = f"column(s) {', '.join(wrong)} differ from the hashed record"
    return ChainProblem(row.seq, ProblemKind.EDITED, message)


def as_utc(value: datetime | str) -> datetime:
    """SQLite hands back naive (or text) times; they were stored as UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_date(value: date | str) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def is_idempotency_clash(exc: IntegrityError) -> bool:
    return "idempotency_key" in str(exc.orig)


@dataclass(frozen=True, slots=True)
class PreparedEntry:
    """One decision ready to chain: its query columns and its canonical, hashed record text.

    Built by `prepare_entry`, which is pure (no database), so batch workers can do the JSON
    work in parallel; only the hash chain itself is computed under the append lock.
    """

    row: dict[str, Any]
    record_json: str
    review: tuple[str, datetime] | None = None
    """(reasons JSON, opened at) when the decision also opens a review-queue row."""


def prepare_entry(
    kind: str,
    decision_id: str,
    channel: str,
    application_date: date,
    outcome: str,
    borrower_key: str,
    offer_amount_fen: int | None,
    idempotency_key: str | None,
    request_sha256: str | None,
    record: dict[str, Any],
    recorded_at: datetime,
    review: tuple[str, datetime] | None = None,
) -> PreparedEntry:
    """The row and record text `append` would write: the query columns go into the hashed
    record under `_log`, so editing one in SQL is caught by verify like any other edit."""
    row = {
        "kind": kind,
        "decision_id": decision_id,
        "channel": channel,
        "application_date": application_date,
        "outcome": outcome,
        "borrower_key": borrower_key,
        "offer_amount_fen": offer_amount_fen,
        "idempotency_key": idempotency_key,
        "request_sha256": request_sha256,
        "recorded_at": utc(recorded_at, "recorded_at"),
    }
    if review is not None:
        review = (review[0], utc(review[1], "opened_at"))
    record_json = canonical_json({**record, COLUMNS_KEY: hashed_columns(row)})
    return PreparedEntry(row, record_json, review)

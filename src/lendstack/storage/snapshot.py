"""A reader pinned to one moment of a SQLite database while another process goes on writing.

SQLite in WAL mode gives each read transaction the database as it was when the transaction
first read it, however much is committed after. `PinnedReader.engine` hands every caller
the same connection, whose transaction is opened by `pin` and held until `unpin`: the
commits and rollbacks that code reading through the engine asks for are ignored, so
everything read between `pin` and `unpin` comes from that one moment, as if the writer had
stopped at it. Nothing may write through it (a write would need the writer's lock).

Used to decide a simulated month in a second process while the first services it: the
decisions read the book as it stood when the month began, exactly what they would have read
had they been made before servicing started (`simulation.deciding`).

While a reader is pinned, checkpoints cannot move the write-ahead log past its moment, so
the log grows with what is written meanwhile: pin for as short a time as the work allows.

`ReadAside` pins one for queries run on a thread of its own: the simulator's close reads
each day's snapshot and the next day's accrual that way while the next day is booked and
paid (`storage.close_store.SqlCloseStore(read_aside=True)`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from lendstack.core.errors import ValidationError


class _Held:
    """A DBAPI connection whose transaction outlives its users: `commit`, `rollback` and
    `close` do nothing (the pool and SQLAlchemy call them as each user finishes)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        object.__setattr__(self, "_connection", connection)

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)


class PinnedReader:
    """One read-only connection to the SQLite database at `url`, pinned by `pin`."""

    def __init__(self, url: str) -> None:
        prefix = "sqlite:///"
        if not url.startswith(prefix) or url == prefix:
            raise ValidationError(
                f"a pinned reader needs a SQLite file database, not {url!r}", field="database"
            )
        path = Path(url.removeprefix(prefix))
        # isolation_level=None: the driver opens no transaction of its own; `pin` does.
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA busy_timeout=30000")
        self._connection.execute("PRAGMA cache_size=-262144")
        held = _Held(self._connection)
        self.engine: Engine = create_engine(
            url, creator=lambda: held, poolclass=StaticPool, pool_reset_on_return=None
        )

    @property
    def pinned(self) -> bool:
        return self._connection.in_transaction

    def pin(self) -> None:
        """Hold the database as it is now (what is committed so far) until `unpin`."""
        self.unpin()
        self._connection.execute("BEGIN")
        # The first read starts the read transaction: its moment is now, not at a later read.
        self._connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """A query's rows from the pinned moment, through the driver (`sqlite3` parameters):
        SQLite runs the query without holding Python's lock, so a thread can read while
        another computes."""
        if not self.pinned:
            raise RuntimeError("a pinned reader read before it was pinned")
        return self._connection.execute(sql, dict(params)).fetchall()

    def unpin(self) -> None:
        """Let go of the moment (and let checkpoints move past it)."""
        if self._connection.in_transaction:
            self._connection.execute("ROLLBACK")

    def close(self) -> None:
        self.unpin()
        self.engine.dispose()
        self._connection.close()


class ReadAside:
    """Queries read on a thread of its own, from the moment `start` was called.

    For the database's only writer: it commits, calls `start`, and goes on writing while the
    queries read the database as it was at `start` (a `PinnedReader`); `take` returns their
    rows, waiting for them if need be. SQLite runs a query without Python's lock, so a scan
    of a large table runs on another core while the writer works on. The moment stays pinned
    after `take`, for the caller to read more of it (`reader.rows`), until `release`.
    """

    def __init__(self, url: str) -> None:
        self.reader = PinnedReader(url)
        """Pinned from `start` to `release`."""
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="read-aside")
        self._pending: Future[list[list[tuple[Any, ...]]]] | None = None

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def start(self, queries: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Pin the database as it is now and read `queries` from it aside."""
        if self._pending is not None or self.reader.pinned:
            raise RuntimeError("a read aside is still held: take and release it first")
        self.reader.pin()  # here, not on the thread: the moment is the caller's now
        wanted = [(sql, dict(params)) for sql, params in queries]
        self._pending = self._pool.submit(lambda: [self.reader.rows(*q) for q in wanted])

    def take(self) -> list[list[tuple[Any, ...]]]:
        """Each query's rows (the first error, if one failed); the moment stays pinned."""
        if self._pending is None:
            raise RuntimeError("no read aside is pending")
        pending, self._pending = self._pending, None
        return pending.result()

    def release(self) -> None:
        """Let go of the moment (and let checkpoints past it)."""
        if self._pending is not None:
            raise RuntimeError("a read aside is pending: take it first")
        self.reader.unpin()

    def close(self) -> None:
        """Wait for a pending read (its rows dropped), then let go of the thread and reader."""
        self._pending = None
        self._pool.shutdown(wait=True)
        self.reader.close()

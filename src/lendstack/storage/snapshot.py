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
"""

from __future__ import annotations

import sqlite3
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

    def unpin(self) -> None:
        """Let go of the moment (and let checkpoints move past it)."""
        if self._connection.in_transaction:
            self._connection.execute("ROLLBACK")

    def close(self) -> None:
        self.unpin()
        self.engine.dispose()
        self._connection.close()

"""`storage.snapshot.PinnedReader`: everything read between `pin` and `unpin` is the database as
it was at `pin`, whatever another connection commits meanwhile and whatever the reading
code's own commits and rollbacks ask for."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from lendstack.core.errors import ValidationError
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.db import make_engine
from lendstack.storage.snapshot import PinnedReader, ReadAside


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM t")).scalar_one())


def _add(writer: Engine) -> None:
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))


@pytest.fixture
def db(tmp_path: Path) -> tuple[Engine, PinnedReader]:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    writer = make_engine(url)  # WAL mode
    with writer.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    _add(writer)
    return writer, PinnedReader(url)


def test_a_pinned_reader_sees_the_moment_it_pinned(db: tuple[Engine, PinnedReader]) -> None:
    writer, reader = db
    reader.pin()
    _add(writer)
    assert _rows(reader.engine) == 1
    with reader.engine.begin() as conn:  # a reader's commit ...
        conn.execute(text("SELECT 1"))
    with reader.engine.connect() as conn:  # ... and rollback leave the moment held
        conn.rollback()
    _add(writer)
    assert reader.pinned
    assert _rows(reader.engine) == 1
    assert _rows(writer) == 3
    reader.close()


def test_pinning_again_moves_the_moment_and_unpinning_lets_go(
    db: tuple[Engine, PinnedReader],
) -> None:
    writer, reader = db
    reader.pin()
    _add(writer)
    reader.pin()
    assert _rows(reader.engine) == 2
    reader.unpin()
    assert not reader.pinned
    _add(writer)
    assert _rows(reader.engine) == 3  # unpinned: each read sees the latest commit
    reader.close()


def test_a_checkpoint_passes_the_moment_once_unpinned(db: tuple[Engine, PinnedReader]) -> None:
    """While pinned, the log cannot be checkpointed past the moment; after, it can, whole."""
    writer, reader = db
    reader.pin()
    _add(writer)
    with writer.connect() as conn:
        conn.exec_driver_sql("PRAGMA busy_timeout=0")  # report the block, do not wait it out
        busy, _, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        conn.exec_driver_sql("PRAGMA busy_timeout=30000")
    assert busy == 1
    reader.unpin()
    with writer.connect() as conn:
        busy, log, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    assert (busy, log, done) == (0, 0, 0)
    reader.close()


@pytest.mark.parametrize("url", ["postgresql+psycopg://x@h/db", "sqlite://", "sqlite:///"])
def test_only_a_sqlite_file_can_be_pinned(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PinnedReader(url)
    assert caught.value.field == "database"


def test_a_read_aside_reads_the_moment_it_started_while_the_writer_goes_on(
    db: tuple[Engine, PinnedReader], tmp_path: Path
) -> None:
    writer, reader = db
    reader.close()
    aside = ReadAside(f"sqlite:///{tmp_path / 'book.db'}")
    with pytest.raises(RuntimeError, match="no read aside"):
        aside.take()
    gate = threading.Event()
    # The read waits on the gate, so the writer's commits below land while it is pending.
    raw = aside.reader.engine.raw_connection().driver_connection
    raw.create_function("gate", 0, lambda: int(gate.wait(10)))
    aside.start([("SELECT COUNT(*), gate() FROM t", {}), ("SELECT :x + 1", {"x": 1})])
    assert aside.pending
    with pytest.raises(RuntimeError, match="still held"):
        aside.start([("SELECT 1", {})])
    with pytest.raises(RuntimeError, match="take it first"):
        aside.release()
    _add(writer)
    _add(writer)
    gate.set()
    assert aside.take() == [[(1, 1)], [(2,)]]
    assert not aside.pending
    # Taken, the moment stays pinned for the caller's own reads, until released.
    assert aside.reader.rows("SELECT COUNT(*) FROM t", {}) == [(1,)]
    with pytest.raises(RuntimeError, match="still held"):
        aside.start([("SELECT 1", {})])
    aside.release()
    aside.start([("SELECT COUNT(*) FROM t WHERE x = :x", {"x": 1})])
    _add(writer)
    assert aside.take() == [[(3,)]]
    aside.release()
    with pytest.raises(RuntimeError, match="before it was pinned"):
        aside.reader.rows("SELECT 1", {})
    aside.close()


def test_a_read_aside_hands_its_error_to_the_taker(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    with make_engine(url).begin() as conn:  # the file exists, in WAL mode
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    aside = ReadAside(url)
    aside.start([("SELECT * FROM no_such_table", {})])
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        aside.take()
    aside.release()
    aside.close()


def test_only_a_close_on_a_sqlite_file_reads_aside() -> None:
    with pytest.raises(ValidationError) as caught:
        SqlCloseStore(make_engine("postgresql+psycopg://x@h/db"), read_aside=True)
    assert caught.value.field == "database"

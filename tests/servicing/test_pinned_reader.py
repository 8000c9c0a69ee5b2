"""`storage.snapshot.PinnedReader`: everything read between `pin` and `unpin` is the database as
it was at `pin`, whatever another connection commits meanwhile and whatever the reading
code's own commits and rollbacks ask for."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from lendstack.core.errors import ValidationError
from lendstack.storage.db import make_engine
from lendstack.storage.snapshot import PinnedReader


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
        busy, _, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
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

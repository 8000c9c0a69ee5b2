"""Checks shared by the tests of migrations that add an index (SQLite: read from sqlite_master)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, text

from lendstack.storage.db import _alembic_config, migrate


def sqlite_indexes(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
        return {r[0] for r in conn.execute(text(query))}


def assert_index_migrates_down_and_up(engine: Engine, index: str, previous: str) -> None:
    """`index` is there at head, gone after a downgrade to `previous`, back after migrating."""
    assert index in sqlite_indexes(engine)
    command.downgrade(_alembic_config(engine), previous)
    assert index not in sqlite_indexes(engine)
    migrate(engine)
    assert index in sqlite_indexes(engine)

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
    assert_indexes_migrate_down_and_up(engine, previous, added={index})


def assert_indexes_migrate_down_and_up(
    engine: Engine, previous: str, added: set[str], dropped: frozenset[str] | set[str] = frozenset()
) -> None:
    """At head the `added` indexes are there and the `dropped` ones gone; after a downgrade to
    `previous` the other way round; after migrating again, as at head."""

    def at_head() -> None:
        assert sqlite_indexes(engine) >= added
        assert not dropped & sqlite_indexes(engine)

    at_head()
    command.downgrade(_alembic_config(engine), previous)
    assert not added & sqlite_indexes(engine)
    assert sqlite_indexes(engine) >= dropped
    migrate(engine)
    at_head()

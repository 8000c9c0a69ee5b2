"""Engines and migrations. SQLite is the embedded default; PostgreSQL is production.

SQLite runs in WAL mode with synchronous=FULL: every committed payment survives power loss,
and readers never block the writer.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, OperationalError

from lendstack.core.errors import LendstackError, ValidationError


class DatabaseUnavailable(LendstackError):
    exit_code = 5
    http_status = 503
    title = "Database unavailable"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MiB page cache for set-based closes
    cursor.close()


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for `url`, with SQLite tuned for durability; bad URLs name the field.
    `options` go to `create_engine` (pool settings, say)."""
    try:
        engine = create_engine(url, future=True, **options)
    except (ArgumentError, ModuleNotFoundError) as exc:
        raise ValidationError(f"cannot use database URL {url!r}: {exc}", field="database") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    location = resources.files("lendstack.storage") / "migrations"
    config.set_main_option("script_location", str(location))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` in place; safe to run on every start."""
    try:
        command.upgrade(_alembic_config(engine), revision)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach the database: {exc.orig}") from exc


def is_initialised(engine: Engine) -> bool:
    try:
        return inspect(engine).has_table("loans")
    except OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach the database: {exc.orig}") from exc

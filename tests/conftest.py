"""Shared fixtures: a migrated database on SQLite and, when configured, on PostgreSQL.

Set LENDSTACK_TEST_DATABASE_URL to a PostgreSQL URL to run every storage test on both
engines. Each PostgreSQL test gets its own schema, dropped afterwards. If the variable is set
and the server is unreachable the tests fail; they never skip silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import Engine, create_engine, text

from backends import BACKENDS, PG_URL
from cli_runner import Run, runner
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.repositories import SqlUnitOfWork

# Error messages name files under pytest's temp directory, whose path grows with every run on
# a machine; a console 80 columns wide would wrap them mid-word and break substring checks.
os.environ["COLUMNS"] = "200"

# CI replays the same examples every run so a red build is reproducible and its time bounded;
# HYPOTHESIS_PROFILE=explore searches afresh on each run.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _pg_engine(schema: str) -> Engine:
    assert PG_URL is not None
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return make_engine_with_schema(schema)


def make_engine_with_schema(schema: str) -> Engine:
    assert PG_URL is not None
    return create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})


def _drop_pg(schema: str) -> None:
    assert PG_URL is not None
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database; PostgreSQL URLs carry their own search_path."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _pg_engine(schema).dispose()
    sep = "&" if "?" in (PG_URL or "") else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    _drop_pg(schema)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def uow(engine: Engine) -> SqlUnitOfWork:
    return SqlUnitOfWork(engine)


@pytest.fixture(scope="session")
def catalog() -> ProductCatalog:
    return ProductCatalog()


@pytest.fixture
def second_engine(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """Another empty, migrated database on the same backend as `engine` (for comparisons)."""
    if engine.dialect.name == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'second.db'}")
        migrate(eng)
        yield eng
        eng.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    eng = _pg_engine(schema)
    migrate(eng)
    yield eng
    eng.dispose()
    _drop_pg(schema)


@pytest.fixture
def cli(database_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]) -> Run:
    """`lendstack --database <the test database> …`, in-process, on a migrated database."""
    return runner(database_url, capsys)

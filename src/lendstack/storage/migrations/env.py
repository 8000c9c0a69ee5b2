"""Alembic environment: runs against the engine lendstack hands over, never a config URL."""

from __future__ import annotations

from alembic import context

from lendstack.storage.schema import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=engine.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()

"""What every command needs: settings, the database engine and the product catalog.

Built lazily from the root options, so `--help` never touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import typer
from sqlalchemy import Engine

from lendstack.core.errors import Conflict
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage.db import is_initialised, make_engine, migrate
from lendstack.storage.repositories import SqlUnitOfWork


@dataclass
class AppContext:
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def catalog(self) -> ProductCatalog:
        return ProductCatalog(self.settings.products_dir)

    def ready_engine(self) -> Engine:
        """The engine of an initialised database; migrations run in place if it is behind."""
        if not is_initialised(self.engine):
            raise Conflict(
                f"database {self.settings.database_url} is not initialised; run `lendstack init`",
                field="database",
            )
        migrate(self.engine)
        return self.engine

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.ready_engine())


def app_context(ctx: typer.Context) -> AppContext:
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext(Settings.from_env())
    return root.obj

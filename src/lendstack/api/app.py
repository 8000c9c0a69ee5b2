"""Build the FastAPI service. Nothing exists at import time: call `create_app(settings)`.

Adding a capability's routes is one line in `create_app`: `app.include_router(x.router)`;
its endpoints take `CurrentPrincipal` or `Depends(require(Role...))` from `lendstack.api.deps`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy import Engine

from lendstack import __version__
from lendstack.api import health, partners, problems, servicing, transactions, underwriting
from lendstack.api.auth import KeyCache
from lendstack.core.errors import Conflict
from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage.apikeys import SqlApiKeys
from lendstack.storage.db import is_initialised, make_engine, migrate

DESCRIPTION = """Internet consumer lending: underwriting decisions and loan servicing.

Authenticate with `Authorization: Bearer <api key>` (create one with `lendstack apikey create`).
Errors are RFC 9457 `application/problem+json`; money is a decimal string.
"""


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    key_ttl: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The API over `engine` (default: one made from `settings.database_url`).

    `key_ttl` is how long an API key look-up is cached, i.e. the longest a revoked key keeps
    working; `clock` is a test seam for that cache.
    """
    app = FastAPI(title="lendstack", version=__version__, description=DESCRIPTION)
    app.state.settings = settings
    app.state.engine = engine if engine is not None else make_engine(settings.database_url)
    app.state.catalog = ProductCatalog(settings.products_dir)
    app.state.key_cache = KeyCache(SqlApiKeys(app.state.engine), key_ttl, clock)
    app.state.underwriting = None  # built on first use: it loads the model and the PII key
    app.state.decision_log = None  # built on the first invalid application
    app.state.invalid_input_hooks = (underwriting.count_invalid_applications,)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(underwriting.router)
    app.include_router(servicing.router)
    app.include_router(partners.router)
    app.include_router(transactions.router)
    return app


def ready_engine(settings: Settings) -> Engine:
    """The engine of an initialised database, migrated in place (as the CLI does)."""
    engine = make_engine(settings.database_url)
    if not is_initialised(engine):
        raise Conflict(
            f"database {settings.database_url} is not initialised; run `lendstack init`",
            field="database",
        )
    migrate(engine)
    return engine


def app_from_env() -> FastAPI:
    """Factory for uvicorn (`factory=True`): each worker process builds its own app."""
    settings = Settings.from_env()
    return create_app(settings, engine=ready_engine(settings))


__all__ = ["app_from_env", "create_app", "ready_engine"]

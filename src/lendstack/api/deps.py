"""Dependencies routers share: the engine, a unit of work, the catalog, the caller.

Everything comes from `app.state`, filled by `create_app`; nothing is built at import time.
They are `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool,
and a hop there for a mere attribute read costs more than the read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from lendstack.api.auth import CurrentPrincipal, Principal, current_principal, require
from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage.repositories import SqlUnitOfWork


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_catalog(request: Request) -> ProductCatalog:
    catalog: ProductCatalog = request.app.state.catalog
    return catalog


async def get_uow(request: Request) -> SqlUnitOfWork:
    """A fresh unit of work per request; it opens its transaction only when entered."""
    return SqlUnitOfWork(request.app.state.engine)


EngineDep = Annotated[Engine, Depends(get_engine)]
CatalogDep = Annotated[ProductCatalog, Depends(get_catalog)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
UowDep = Annotated[SqlUnitOfWork, Depends(get_uow)]

__all__ = [
    "CatalogDep",
    "CurrentPrincipal",
    "EngineDep",
    "Principal",
    "SettingsDep",
    "UowDep",
    "current_principal",
    "get_catalog",
    "get_engine",
    "get_settings",
    "get_uow",
    "require",
]

"""`GET /healthz`: is the process up and can it reach its database. No key needed."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from lendstack.api.deps import EngineDep
from lendstack.api.problems import responses
from lendstack.storage.db import DatabaseUnavailable

router = APIRouter(tags=["health"])
_PING = text("SELECT 1")


@router.get("/healthz", responses=responses(503))
async def healthz(engine: EngineDep) -> dict[str, str]:
    """`{"status": "ok", "database": "ok"}`, or 503 problem+json when the database is down."""
    try:
        with engine.connect() as conn:
            conn.execute(_PING)
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable("cannot reach the database") from exc
    return {"status": "ok", "database": "ok"}


__all__ = ["router"]

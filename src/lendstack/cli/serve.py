"""`lendstack serve`: run the HTTP API under uvicorn.

uvicorn imports `lendstack.api.app:app_from_env` as a factory in each worker, so `--workers`
above 1 works and no app is ever built at import time. The database is migrated here, once,
before any worker starts; workers find it at head and do nothing.
"""

from __future__ import annotations

import os

import typer

from lendstack.cli.context import app_context
from lendstack.storage.apikeys import Role, SqlApiKeys
from lendstack.storage.db import migrate

FACTORY = "lendstack.api.app:app_from_env"


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    dev: bool = typer.Option(
        False, "--dev", help="Initialise the database if needed and print a fresh risk key."
    ),
    access_log: bool = typer.Option(True, help="Log every request (costs throughput)."),
) -> None:
    """Serve the HTTP API (OpenAPI at /docs). Uses uvloop and httptools when installed."""
    import uvicorn  # imported here so the rest of the CLI does not pay for it

    actx = app_context(ctx)
    if dev:
        migrate(actx.engine)
        key, _ = SqlApiKeys(actx.engine).create(Role.RISK)
        typer.echo(f"dev risk key: {key}", err=True)
    else:
        actx.ready_engine()
    actx.engine.dispose()
    # Workers rebuild Settings from the environment; pass on a --database override.
    os.environ["LENDSTACK_DATABASE_URL"] = actx.settings.database_url
    uvicorn.run(
        FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="auto",  # uvloop when installed (uvicorn[standard]), else asyncio
        http="auto",  # httptools when installed, else h11
        access_log=access_log,
    )


def register(root: typer.Typer) -> None:
    root.command("serve")(serve)


__all__ = ["register", "serve"]

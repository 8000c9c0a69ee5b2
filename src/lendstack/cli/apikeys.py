"""`lendstack apikey create|list|revoke`: keys for the HTTP API.

`create` prints the key alone on stdout, once; only its SHA-256 is stored, so a lost key is
revoked and replaced, never recovered.
"""

from __future__ import annotations

import json

import typer
from rich.table import Table

from lendstack.cli.context import app_context
from lendstack.cli.render import OutputFormat, console
from lendstack.core.errors import ValidationError
from lendstack.storage.apikeys import ApiKey, Role, SqlApiKeys, check_scope

app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)


def _keys(ctx: typer.Context) -> SqlApiKeys:
    return SqlApiKeys(app_context(ctx).ready_engine())


@app.command("create")
def create(
    ctx: typer.Context,
    role: Role = typer.Option(..., "--role", help="channel, risk, regulator or partner."),
    channel: str | None = typer.Option(None, "--channel", help="Channel id (role channel)."),
    partner: str | None = typer.Option(None, "--partner", help="Partner bank id (role partner)."),
) -> None:
    """Create a key and print it (and nothing else) on stdout. It is shown only this once."""
    try:
        check_scope(role, channel, partner)
    except ValidationError as exc:
        raise typer.BadParameter(exc.message, param_hint=f"--{exc.field}") from exc
    key, _ = _keys(ctx).create(role, channel, partner)
    typer.echo(key)


def _row(key: ApiKey) -> dict[str, str | None]:
    return {
        "prefix": key.prefix,
        "role": key.role.value,
        "channel": key.channel,
        "partner": key.partner_id,
        "created": key.created_at.isoformat(timespec="seconds"),
        "revoked": key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else None,
    }


@app.command("list")
def list_keys(
    ctx: typer.Context,
    fmt: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table or json."),
) -> None:
    """Every key ever issued, by prefix; the keys themselves are not stored."""
    rows = [_row(k) for k in _keys(ctx).all()]
    if fmt is OutputFormat.JSON:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("prefix", "role", "channel", "partner", "created", "revoked")
    for r in rows:
        table.add_row(*(v or "" for v in r.values()))
    console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context, prefix: str = typer.Argument(..., help="The key's prefix (or the key).")
) -> None:
    """Revoke a key. Running API processes may accept it for up to 5 s more (look-up cache)."""
    key = _keys(ctx).revoke(prefix)
    console.print(f"revoked {key.prefix} ({key.role})")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="apikey")


__all__ = ["app", "register"]

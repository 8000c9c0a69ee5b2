"""The `lendstack` command. Sub-command groups live in sibling modules, one per capability."""

from __future__ import annotations

import sys

import click
import typer
from typer._click import exceptions as typer_click_exceptions

from lendstack import __version__
from lendstack.cli.context import AppContext
from lendstack.cli.render import err_console
from lendstack.core.errors import LendstackError
from lendstack.settings import Settings

# typer 0.29 raises exceptions from its vendored copy of click, which are not click's own;
# catch both so usage errors are a message and exit code 2, never a traceback.
_EXITS = (click.exceptions.Exit, typer.Exit)
_ABORTS = (click.exceptions.Abort, typer.Abort)
_USAGE_ERRORS = (click.ClickException, typer_click_exceptions.ClickException)

app = typer.Typer(
    name="lendstack",
    help="Internet consumer lending: underwriting, co-lending, servicing, collections and risk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    database: str | None = typer.Option(
        None,
        "--database",
        help="SQLAlchemy URL; overrides LENDSTACK_DATABASE_URL (default sqlite:///lendstack.db).",
    ),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    ctx.obj = AppContext(Settings.from_env().with_database(database))


def _register() -> None:
    # Once per process: tests call main() many times, and typer rebuilds every registered
    # group on each call, so registering again would make each call slower than the last.
    if app.registered_groups:
        return
    # Imported here so that `lendstack --help` stays cheap and each group stays independent.
    from lendstack.cli import (
        apikeys,
        applicants,
        collections,
        decisions,
        funding,
        model,
        npl,
        report,
        risk,
        risk_analytics,
        rules,
        serve,
        servicing,
        simulate,
        underwriting,
    )

    servicing.register(app)
    npl.register(app)
    app.add_typer(model.app, name="model")
    app.add_typer(applicants.app, name="applicants")
    app.add_typer(rules.app, name="rules")
    app.command("decide")(underwriting.decide)
    decisions.app.command("replay")(underwriting.replay)
    app.add_typer(decisions.app, name="decisions")
    app.add_typer(underwriting.review_app, name="review")
    app.add_typer(funding.partners_app, name="partners")
    app.add_typer(funding.funding_app, name="funding")
    app.add_typer(risk.risk_app, name="risk")
    risk_analytics.register(risk.risk_app)
    apikeys.register(app)
    collections.register(app)
    serve.register(app)
    simulate.register(app)
    app.add_typer(report.report_app, name="report")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI, translating the error tree into a message on stderr and an exit code."""
    _register()
    try:
        app(args=argv, standalone_mode=False)
    except LendstackError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(exc.exit_code)
    except _EXITS as exc:
        sys.exit(exc.exit_code)
    except _ABORTS:
        err_console.print("aborted")
        sys.exit(130)
    except _USAGE_ERRORS as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()

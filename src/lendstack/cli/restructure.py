"""`lendstack collections restructure|restructures` (docs/collections.md, "Restructuring").

`restructure` re-ages a loan on the open business date: what it owes (principal, and interest,
fees and penalty capitalised, or the penalty or all three waived) becomes a new schedule of `--term`
months, optionally at a new `--rate` inside the product's range. The loan's class is then held
at 关注 or worse through the observation period. Bad input exits non-zero naming the field
and writes nothing; the same request again prints the first result.
"""

from __future__ import annotations

import typer
from rich.table import Table

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_date, parse_rate
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.core.errors import ValidationError
from lendstack.servicing.domain.restructure import RestructureOption
from lendstack.storage.restructures import RestructureRequest, restructure_loan, restructures

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table for people, json for tools.")


def _option(capitalise: bool, waive_penalty: bool, principal_only: bool) -> RestructureOption:
    if capitalise + waive_penalty + principal_only > 1:
        raise ValidationError(
            "choose one of --capitalise, --waive-penalty and --principal-only", field="option"
        )
    if principal_only:
        return RestructureOption.PRINCIPAL_ONLY
    return RestructureOption.WAIVE_PENALTY if waive_penalty else RestructureOption.CAPITALISE


def restructure(
    ctx: typer.Context,
    loan: int = typer.Argument(..., help="The loan id."),
    on: str = typer.Option(..., "--date", help="The open business date, YYYY-MM-DD."),
    term: int = typer.Option(..., "--term", help="New term in months (one the product offers)."),
    rate: str | None = typer.Option(
        None, "--rate", help="New annual rate, e.g. 0.12 (default: keep the contract rate)."
    ),
    capitalise: bool = typer.Option(
        False, "--capitalise", help="Capitalise interest, fees and penalty (the default)."
    ),
    waive_penalty: bool = typer.Option(
        False, "--waive-penalty", help="Capitalise interest and fees; forgive the penalty."
    ),
    principal_only: bool = typer.Option(
        False,
        "--principal-only",
        help="Reschedule the principal only; forgive interest, fees and penalty"
        " (the only option for a loan in non-accrual).",
    ),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Restructure (re-age) a loan into a new schedule from the open business date."""
    request = RestructureRequest(
        loan_id=loan,
        on=parse_date(on, "date"),
        term_months=term,
        rate=parse_rate(rate, "rate"),
        option=_option(capitalise, waive_penalty, principal_only),
    )
    context = app_context(ctx)
    record = restructure_loan(context.ready_engine(), context.catalog, request)
    if fmt is OutputFormat.JSON:
        print_json(record)
        return
    console.print(
        f"loan {loan} restructured on {record['date']}: principal {record['principal_before']}"
        f" + capitalised {record['capitalised_interest']} interest,"
        f" {record['capitalised_fee']} fees, {record['capitalised_penalty']} penalty"
        f" (waived {record['waived_interest']} interest, {record['waived_fee']} fees,"
        f" {record['waived_penalty']} penalty) = {record['principal']} over {term} months"
        f" at {record['rate']}; class held at {record['class_floor']}"
        f" until {record['observe_until']} and {record['on_time_required']} on-time installments"
    )


def history(
    ctx: typer.Context,
    loan: int | None = typer.Option(None, "--loan", help="Only this loan."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Restructurings and their observation status (observing, released, superseded, ended)."""
    rows = restructures(app_context(ctx).ready_engine(), loan)
    if fmt is OutputFormat.JSON:
        print_json(rows)
        return
    table = Table(title="Restructurings")
    names = ("id", "loan_id", "date", "principal", "term_months", "rate", "class_floor")
    names += ("observe_until", "on_time", "status", "released_on")
    for name in names:
        table.add_column(name)
    for row in rows:
        table.add_row(*(str(row[n]) for n in names))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("restructure")(restructure)
    app.command("restructures")(history)

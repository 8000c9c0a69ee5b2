"""`lendstack pay file`: a day's payments from a CSV file (a bank's collection results, a
direct-debit run), posted as one batch.

The file is checked whole before anything is posted: a bad row is refused with its line and
column named, and nothing is written. The batch then goes through `take_payments`, all or
nothing, with each row's idempotency key, so re-running a file after a failure or twice by
mistake posts every payment exactly once.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import typer

from lendstack.cli.context import app_context
from lendstack.cli.loans import FormatOpt, pay_app
from lendstack.cli.params import parse_amount, parse_date
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.core.errors import ValidationError
from lendstack.servicing import Payment, PrepaymentMode, take_payments
from lendstack.servicing.views import payment_json

COLUMNS = ("loan_id", "amount", "date", "idempotency_key")
"""Required columns; an optional `prepay` column takes shorten-term or lower-installment."""


def read_payments(path: Path) -> list[Payment]:
    """The file's payments, or a `ValidationError` naming the first bad line and column."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
            header = set(rows[0]) if rows else set()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}", field="file") from None
    missing = [c for c in COLUMNS if c not in header]
    if rows and missing:
        raise ValidationError(f"missing column(s) {', '.join(missing)}", field="file")
    return [_payment(row, line) for line, row in enumerate(rows, start=2)]


def _payment(row: dict[str, str], line: int) -> Payment:
    def where(column: str) -> str:
        return f"line {line}: {column}"

    loan = (row.get("loan_id") or "").strip()
    if not loan.isdigit():
        raise ValidationError(f"{loan!r} is not a loan id", field=where("loan_id"))
    key = (row.get("idempotency_key") or "").strip()
    if not key:
        raise ValidationError(
            "is required (it makes a re-run harmless)", field=where("idempotency_key")
        )
    prepay = (row.get("prepay") or "").strip()
    try:
        mode = PrepaymentMode(prepay) if prepay else None
    except ValueError:
        choices = ", ".join(m.value for m in PrepaymentMode)
        raise ValidationError(
            f"{prepay!r} is not one of {choices}", field=where("prepay")
        ) from None
    return Payment(
        int(loan),
        parse_amount(row.get("amount") or "", where("amount")),
        parse_date((row.get("date") or "").strip(), where("date")),
        key,
        mode,
    )


@pay_app.command("file")
def pay_file(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="CSV: loan_id, amount, date, idempotency_key[, prepay]."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Post a file of payments as one batch: all of them, or none if any is refused."""
    payments = read_payments(path)
    if not payments:
        raise ValidationError("holds no payments", field="file")
    stored = take_payments(app_context(ctx).uow(), payments)
    if fmt is OutputFormat.JSON:
        print_json([payment_json(p) for p in stored])
        return
    total = sum((p.amount for p in stored), Decimal(0))
    console.print(
        f"{len(stored)} payment(s) posted (a repeated key: its first result), {total} CNY"
    )

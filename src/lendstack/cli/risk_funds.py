"""`lendstack risk transactions ingest|scan|flags|penalty`: use-of-funds surveillance.

`ingest FILE` reads a feed of disbursement-account transactions (CSV with a header row, or
JSON lines: one object per line; by extension, or `--kind`), checks every row first, and
only if all are valid stores them and flags the loans whose funds reached a forbidden
merchant category (`lendstack.risk.surveillance`). A bad row fails the whole file, naming
the row and field (`row 7: amount`), and nothing is written. Re-ingesting the same file
stores nothing new. `scan` re-runs the pack over stored transactions; `flags` lists flagged
loans; `penalty LOAN` shows (and with `--apply` applies) the misuse penalty rate.
"""

from __future__ import annotations

import csv
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lendstack.cli.context import app_context
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.core.errors import LendstackError, NotFound, ValidationError
from lendstack.risk.surveillance import (
    SurveillancePack,
    Transaction,
    default_pack,
    load_pack,
    parse_transaction,
)
from lendstack.storage.use_of_funds import Ingested, SqlUseOfFunds

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table for people, json for tools.")
PackOpt = typer.Option(
    None, "--pack", help="A surveillance pack (TOML); default: the shipped default.toml."
)
MAX_LISTED_ERRORS = 20

transactions_app = typer.Typer(
    help="Use-of-funds surveillance: the transaction feed, flags and misuse penalty.",
    no_args_is_help=True,
)


class FeedKind(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def register(app: typer.Typer) -> None:
    app.add_typer(transactions_app, name="transactions")


def _pack(path: Path | None) -> SurveillancePack:
    return default_pack() if path is None else load_pack(path)


def _kind(path: Path, kind: FeedKind | None) -> FeedKind:
    if kind is not None:
        return kind
    if path.suffix.lower() == ".csv":
        return FeedKind.CSV
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return FeedKind.JSONL
    raise ValidationError(f"cannot tell the format of {path.name}: use --kind", field="kind")


def _records(path: Path, kind: FeedKind) -> list[tuple[int, Any]]:
    """(row number, raw record); CSV rows are numbered as a spreadsheet shows them (header
    = row 1), JSON lines by line; blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NotFound(f"no file {path}", field="file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}", field="file") from exc
    if kind is FeedKind.CSV:
        reader = csv.DictReader(text.splitlines())
        return [(i, row) for i, row in enumerate(reader, start=2)]
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append((i, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise ValidationError(f"not valid JSON: {exc.msg}", field=f"row {i}") from None
    return out


def read_feed(path: Path, kind: FeedKind | None = None) -> tuple[list[int], list[Transaction]]:
    """Every row parsed, or one ValidationError listing the bad rows (the first names the
    field); an empty feed is an error too."""
    rows, txs, errors = [], [], []
    for number, raw in _records(path, _kind(path, kind)):
        if not isinstance(raw, dict):
            errors.append(ValidationError("must be an object", field=f"row {number}"))
            continue
        try:
            txs.append(parse_transaction(raw, number))
            rows.append(number)
        except LendstackError as exc:
            errors.append(exc)
    if errors:
        listed = "; ".join(str(e) for e in errors[:MAX_LISTED_ERRORS])
        more = len(errors) - MAX_LISTED_ERRORS
        suffix = f" (and {more} more)" if more > 0 else ""
        raise ValidationError(
            f"{len(errors)} bad row(s), nothing written: {listed}{suffix}", field=errors[0].field
        )
    if not txs:
        raise ValidationError(f"{path} has no transactions", field="file")
    return rows, txs


@transactions_app.command("ingest")
def ingest(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV (with header) or JSON-lines transaction feed."),
    kind: FeedKind | None = typer.Option(None, "--kind", help="Feed format (default: by suffix)."),
    pack: Path | None = PackOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Store a transaction feed and flag loans whose funds reached a forbidden category."""
    surveillance = _pack(pack)
    rows, txs = read_feed(file, kind)
    store = SqlUseOfFunds(app_context(ctx).ready_engine(), surveillance)
    with console.status(f"storing {len(txs)} transactions…"):
        done = store.ingest(txs, "file", rows)
    _show(done, fmt)


@transactions_app.command("scan")
def scan(ctx: typer.Context, pack: Path | None = PackOpt, fmt: OutputFormat = FormatOpt) -> None:
    """Re-run the pack over every stored transaction; record any missing flags and alerts."""
    store = SqlUseOfFunds(app_context(ctx).ready_engine(), _pack(pack))
    _show(store.scan(), fmt)


@transactions_app.command("flags")
def flags(ctx: typer.Context, fmt: OutputFormat = FormatOpt) -> None:
    """List the loans flagged for misuse of funds, with their penalty status."""
    rows = SqlUseOfFunds(app_context(ctx).ready_engine(), default_pack()).flag_rows()
    if fmt is OutputFormat.JSON:
        print_json({"flags": rows})
        return
    table = Table("loan", "transaction", "category", "amount", "day", "days after", "penalty")
    for r in rows:
        table.add_row(
            str(r["loan_id"]), r["transaction_id"], r["category"], r["amount"], r["at"][:10],
            str(r["days_after"]), r["penalty_rate"] or "–",
        )  # fmt: skip
    console.print(table)


@transactions_app.command("penalty")
def penalty(
    ctx: typer.Context,
    loan_id: int = typer.Argument(..., help="A flagged loan's id."),
    apply: bool = typer.Option(False, "--apply", help="Raise the loan's penalty rate to it."),
    pack: Path | None = PackOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """The misuse penalty rate (contract rate × (1 + markup), capped) of a flagged loan."""
    store = SqlUseOfFunds(app_context(ctx).ready_engine(), _pack(pack))
    if apply:
        result, changed = store.apply_penalty(loan_id)
    else:
        result, changed = store.penalty(loan_id), False
    payload = {"loan_id": loan_id, **result.as_json(), "applied": apply, "changed": changed}
    if fmt is OutputFormat.JSON:
        print_json(payload)
        return
    console.print(
        f"loan {loan_id}: contract {result.contract_rate} × (1 + {result.markup}) = "
        f"{result.rate}; chargeable {result.applied_rate}"
        + (" (capped)" if result.capped else "")
        + ("; applied" if changed else "; already applied" if apply else "")
    )


def _show(done: Ingested, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.JSON:
        print_json(done.as_json())
        return
    console.print(f"{done.inserted} stored, {done.duplicates} already stored")
    for flag in done.flags:
        console.print(
            f"flagged loan {flag.loan_id}: {flag.amount} to {flag.category.value} "
            f"{flag.days_after} days after disbursement ({flag.transaction_id})"
        )
    console.print(
        f"alerts: {len(done.alerts.new)} new, {len(done.alerts.unchanged)} already stored"
    )

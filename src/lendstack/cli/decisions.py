"""`lendstack decisions`: verify the hash-chained decision log and show one decision.

`verify` prints the head hash on success so an operator can keep it somewhere the database's
writers cannot reach; passing it back later with `--expect-head` proves the chain up to that
point was not rewritten, even by someone who also rewrote the anchor row.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from lendstack.cli.context import app_context
from lendstack.cli.render import OutputFormat, console, err_console, print_json
from lendstack.core.errors import LendstackError, NotFound
from lendstack.storage.decisions import SqlDecisionLog
from lendstack.underwriting.audit import ChainReport, LogEntry
from lendstack.underwriting.pii import PiiVault, map_applications, mask_application

app = typer.Typer(help="Verify and inspect the decision audit log.", no_args_is_help=True)

_FORMAT = typer.Option(OutputFormat.TABLE, "--format", help="table or json")


def _report_json(report: ChainReport) -> dict[str, Any]:
    last = report.last
    return {
        "ok": report.ok,
        "checked": report.checked,
        "head": None if last is None else {"seq": last.seq, "hash": last.hash},
        "problems": [
            {"seq": p.seq, "kind": p.kind.value, "message": p.message} for p in report.problems
        ],
    }


def _print_report(report: ChainReport) -> None:
    head = report.last.hash if report.last else "(empty log)"
    if report.ok:
        console.print(
            f"chain intact: {report.checked} records, head {head}", soft_wrap=True, highlight=False
        )
        return
    table = Table("seq", "kind", "message", title="decision log problems")
    for p in report.problems:
        table.add_row(str(p.seq), p.kind.value, p.message)
    console.print(table)
    err_console.print(
        f"[bold red]chain broken:[/] {len(report.problems)} problem(s) "
        f"in {report.checked} records, last hash {head}",
        soft_wrap=True,
    )


@app.command()
def verify(
    ctx: typer.Context,
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="A head hash recorded earlier; it must still be in the chain."
    ),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """Check every record, link and the head anchor; exit 1 naming each problem."""
    log = SqlDecisionLog(app_context(ctx).ready_engine())
    report = log.verify(expect_head=expect_head)
    if fmt is OutputFormat.JSON:
        print_json(_report_json(report))
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _vault(ctx: typer.Context) -> PiiVault | None:
    return PiiVault.for_reading(app_context(ctx).settings)


def _readable(entry: LogEntry, vault: PiiVault | None, reveal: bool) -> Any:
    """The record with PII revealed, masked, or (without a key) left sealed."""
    record = json.loads(entry.record_json)
    if vault is None:
        return record
    opened = map_applications(record, lambda app: vault.reveal(app, entry.decision_id))
    return opened if reveal else map_applications(opened, mask_application)


def _entry_json(entry: LogEntry, vault: PiiVault | None, reveal: bool) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "kind": entry.kind,
        "decision_id": entry.decision_id,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "record": _readable(entry, vault, reveal),
    }


@app.command()
def show(
    ctx: typer.Context,
    decision_id: str = typer.Argument(..., help="The decision id."),
    reveal: bool = typer.Option(
        False, "--reveal", help="Show PII in clear (needs the PII key); masked by default."
    ),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """Print a decision and its review entries as stored, PII masked unless --reveal."""
    entries = SqlDecisionLog(app_context(ctx).ready_engine()).history(decision_id)
    if not entries:
        raise NotFound(f"no decision {decision_id}", field="decision_id")
    vault = _vault(ctx)
    if vault is None:
        if reveal:
            raise NotFound("--reveal needs the PII key (LENDSTACK_PII_KEY or the key file)")
        err_console.print("[yellow]no PII key: personal fields are shown sealed[/]")
    try:
        rows = [_entry_json(e, vault, reveal) for e in entries]
    except LendstackError as exc:
        raise type(exc)(f"cannot show {decision_id}: {exc.message}", field=exc.field) from exc
    if fmt is OutputFormat.JSON:
        print_json({"decision_id": decision_id, "entries": rows})
        return
    for row in rows:
        console.rule(f"seq {row['seq']} · {row['kind']} · {row['decision_id']}")
        console.print(f"hash {row['hash']}\nprev {row['prev_hash']}", soft_wrap=True)
        console.print_json(json.dumps(row["record"], ensure_ascii=False))

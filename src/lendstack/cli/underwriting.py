"""`lendstack decide`, `decisions replay` and `review list|resolve`."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lendstack.cli.context import app_context
from lendstack.cli.render import OutputFormat, console, err_console, print_json
from lendstack.core.errors import ValidationError
from lendstack.settings import Settings
from lendstack.underwriting.application import Application
from lendstack.underwriting.batch_input import read_rows
from lendstack.underwriting.views import decision_view

_FORMAT = typer.Option(OutputFormat.TABLE, "--format", help="table or json")

review_app = typer.Typer(
    help="The human-review queue for REFERred decisions.", no_args_is_help=True
)


@contextmanager
def _progress(label: str) -> Iterator[Any]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda: bar.advance(task)


def decide(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Applications: .json (one), .jsonl, .csv or .parquet."),
    out: Path | None = typer.Option(None, "--out", help="Write one result per line (.jsonl)."),
    workers: int = typer.Option(
        os.cpu_count() or 1, "--workers", min=1, help="Worker processes (default: cores)."
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="Dask scheduler address (tcp://host:8786): decide chunks on its workers.",
    ),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """Decide applications and record every decision in the audit log."""
    from lendstack.storage.decisions import prepare_entry
    from lendstack.underwriting.batch import BatchJob, decide_rows
    from lendstack.wiring import underwriting_service

    app_ctx = app_context(ctx)
    service = underwriting_service(app_ctx.settings, app_ctx.ready_engine())
    if not file.exists():
        raise ValidationError(f"{file} does not exist", field="file")
    if file.suffix.lower() == ".json":
        _decide_one(service, file, fmt)
        return
    factory = partial(worker_service, app_ctx.settings)
    job = BatchJob(service, prepare_entry, factory, workers, scheduler=scheduler)
    tally: Counter[str] = Counter()
    sink = out.open("w", encoding="utf-8") if out else None
    try:
        with _progress("deciding") as tick:
            for result in decide_rows(read_rows(file), job):
                tally[result.outcome] += 1
                if sink:
                    sink.write(json.dumps(result.line, ensure_ascii=False) + "\n")
                tick()
    finally:
        if sink:
            sink.close()
    _render_tally(tally, fmt)


def worker_service(settings: Settings) -> tuple[Any, Any]:
    """A batch worker's own service and the log's entry builder (run in each process)."""
    from lendstack.storage.db import make_engine
    from lendstack.storage.decisions import prepare_entry
    from lendstack.wiring import underwriting_service

    return underwriting_service(settings, make_engine(settings.database_url)), prepare_entry


def _decide_one(service: Any, file: Path, fmt: OutputFormat) -> None:
    from pydantic import ValidationError as PydanticError

    from lendstack.underwriting.batch_input import field_errors

    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{file.name} is not JSON: {exc.msg}", field="file") from None
    try:
        app = Application.model_validate(payload)
    except PydanticError as exc:
        errors = field_errors(exc)
        channel = payload.get("channel") if isinstance(payload, dict) else None
        service.log.count_rejected("cli", channel, [e["field"] for e in errors], service.clock())
        first = errors[0]
        raise ValidationError(first["message"], field=first["field"]) from None
    recorded = service.decide(app)
    view = decision_view(recorded.decision_id, recorded.record)
    if fmt is OutputFormat.JSON:
        print_json(view)
    else:
        _render_decision(view)


def _render_decision(view: dict[str, Any]) -> None:
    console.print(f"[bold]{view['decision_id']}[/]  outcome [bold]{view['outcome']}[/]")
    for reason in view["reasons"]:
        console.print(f"  {reason['code']}: {reason['text']}")
    offer = view["offer"]
    if offer:
        console.print(
            f"offer {offer['amount']} CNY over {offer['term_months']} months "
            f"({offer['repayment_method']}), APR (IRR) {float(offer['apr_irr']):.2%}, "
            f"total cost {offer['total_cost']}"
        )
    funding = view.get("funding")
    if funding and funding["outcome"] == "funded":
        parts = ", ".join(
            f"{s['funder_id']} {s['share']} ({s['amount']})" for s in funding["shares"]
        )
        console.print(f"funded by {parts}")


def _render_tally(tally: Counter[str], fmt: OutputFormat) -> None:
    total = sum(tally.values())
    if fmt is OutputFormat.JSON:
        print_json({"applications": total, "outcomes": dict(sorted(tally.items()))})
        return
    table = Table(title=f"{total} applications")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for outcome, count in sorted(tally.items()):
        table.add_row(outcome, str(count), f"{count / total:.1%}")
    console.print(table)


def replay(
    ctx: typer.Context,
    first: datetime = typer.Option(
        ..., "--from", formats=["%Y-%m-%d"], help="First application date."
    ),
    last: datetime = typer.Option(..., "--to", formats=["%Y-%m-%d"], help="Last application date."),
    rules: str | None = typer.Option(None, "--rules", help="Backtest against this rule pack."),
    model: Path | None = typer.Option(None, "--model", help="Backtest against this model dir."),
    workers: int = typer.Option(
        os.cpu_count() or 1, "--workers", min=1, help="Worker processes (default: cores)."
    ),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """Re-decide stored applications: 0 differences expected; with --rules/--model, a backtest."""
    from lendstack.storage.decisions import SqlDecisionLog
    from lendstack.underwriting.rerun import backtest
    from lendstack.underwriting.rerun import replay as run_replay
    from lendstack.wiring import build_engine, pii_vault

    app_ctx = app_context(ctx)
    log = SqlDecisionLog(app_ctx.ready_engine())
    vault = pii_vault(app_ctx.settings)
    d1, d2 = first.date(), last.date()
    if d2 < d1:
        raise ValidationError("--to is before --from", field="--to")
    factory = partial(rerun_worker, app_ctx.settings, rules, model)
    if rules is None and model is None:
        engine, sha = build_engine(app_ctx.settings)
        with _progress("replaying") as tick:
            report = run_replay(
                log, vault, engine, sha, d1, d2, tick, workers=workers, factory=factory
            )
        _render_replay(report.as_json(), fmt)
        if not report.ok:
            raise typer.Exit(1)
        return
    challenger, _ = build_engine(app_ctx.settings, pack=rules, model_dir=model)
    with _progress("backtesting") as tick:
        tally = backtest(
            log, vault, lambda _record: challenger, d1, d2, tick, workers=workers, factory=factory
        )
    _render_backtest(tally.as_json(), fmt)


def rerun_worker(settings: Settings, rules: str | None, model: Path | None) -> Any:
    """A replay/backtest worker's `Rerun`: its own log connection, vault and engines."""
    from lendstack.storage.db import make_engine
    from lendstack.storage.decisions import SqlDecisionLog
    from lendstack.underwriting.rerun import Rerun
    from lendstack.wiring import build_engine, pii_vault

    log = SqlDecisionLog(make_engine(settings.database_url))
    engine, sha = build_engine(settings)
    challenger = engine
    if rules is not None or model is not None:
        challenger, _ = build_engine(settings, pack=rules, model_dir=model)
    return Rerun(log, pii_vault(settings), engine, sha, lambda _record: challenger)


def _render_replay(report: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.JSON:
        print_json(report)
        return
    console.print(f"replayed {report['checked']} decisions: {report['differences']} differences")
    for d in report["details"][:50]:
        console.print(f"  {d['decision_id']}: {', '.join(d['fields'])}")


def _render_backtest(report: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.JSON:
        print_json(report)
        return
    rate = report["approval_rate"]
    console.print(
        f"{report['applications']} applications: approval rate {rate['baseline']:.2%} -> "
        f"{rate['challenger']:.2%} ({rate['change']:+.2%}); "
        f"swap-in {report['swap_in']}, swap-out {report['swap_out']}"
    )
    groups = Table(title="groups")
    for col in ("group", "count", "expected bad rate (baseline model)", "(challenger model)"):
        groups.add_column(col)
    for name, g in report["groups"].items():
        groups.add_row(
            name,
            str(g["count"]),
            _pct(g["expected_bad_rate_baseline_model"]),
            _pct(g["expected_bad_rate_challenger_model"]),
        )
    console.print(groups)
    fires = Table(title="rule fires")
    for col in ("rule", "baseline", "challenger", "change"):
        fires.add_column(col)
    for r in report["rule_fires"]:
        fires.add_row(r["rule_id"], str(r["baseline"]), str(r["challenger"]), f"{r['change']:+d}")
    console.print(fires)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


@review_app.command("list")
def review_list(
    ctx: typer.Context,
    status: str = typer.Option("open", "--status", help="open, resolved or all"),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """Decisions waiting for (or given) a human review."""
    from lendstack.storage.decisions import SqlDecisionLog

    if status not in ("open", "resolved", "all"):
        raise ValidationError("use open, resolved or all", field="--status")
    rows = SqlDecisionLog(app_context(ctx).ready_engine()).reviews(
        None if status == "all" else status
    )
    if fmt is OutputFormat.JSON:
        print_json(rows)
        return
    table = Table(title=f"review queue ({status})")
    for col in ("decision", "channel", "status", "opened", "resolution"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            row["decision_id"],
            row["channel"],
            row["status"],
            str(row["opened_at"]),
            row.get("resolution") or "",
        )
    console.print(table)


@review_app.command("resolve")
def review_resolve(
    ctx: typer.Context,
    decision_id: str = typer.Argument(...),
    outcome: str = typer.Option(..., "--outcome", help="APPROVE, COUNTER_OFFER or DECLINE"),
    by: str = typer.Option(..., "--by", help="Reviewer's staff id."),
    note: str = typer.Option("", "--note", help="Why; kept in the audit log."),
) -> None:
    """Record a reviewer's decision; it is appended to the hash-chained log."""
    from lendstack.storage.decisions import SqlDecisionLog

    if outcome not in ("APPROVE", "COUNTER_OFFER", "DECLINE"):
        raise ValidationError("use APPROVE, COUNTER_OFFER or DECLINE", field="--outcome")
    if not by.strip():
        raise ValidationError("name the reviewer", field="--by")
    at = datetime.now(UTC)
    record = {
        "decision_id": decision_id,
        "resolution": outcome,
        "by": by,
        "note": note,
        "at": at.isoformat(),
    }
    SqlDecisionLog(app_context(ctx).ready_engine()).resolve_review(
        decision_id, outcome, by, note, at, record
    )
    console.print(f"{decision_id}: {outcome} by {by}")

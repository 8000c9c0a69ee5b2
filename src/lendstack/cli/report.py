"""`lendstack report regulator --month YYYY-MM --out DIR`: the monthly regulator report.

Reads the month-end book (`lendstack.storage.regulator`), builds the tables
(`lendstack.risk.regulator`) and writes DIR/report.html (self-contained, charts inline),
one CSV per table and one XLSX workbook. Everything is written into a temporary directory
beside DIR and renamed into place at the end, so a bad month, a failed query or an
interrupted run leaves no half-written report (an existing DIR is replaced only on success).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from lendstack.cli.context import app_context
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.core.errors import LendstackError, ValidationError
from lendstack.risk.regulator import RegulatorReport, build_report
from lendstack.risk.regulator_page import render_files
from lendstack.settings import Settings
from lendstack.storage.regulator import (
    HISTORY_MONTHS,
    PLATFORM_LICENCE,
    MonitoringResult,
    load_inputs,
    resolve_period,
)
from lendstack.underwriting.rules import LENDER_TYPES
from lendstack.wiring import rule_pack_for

report_app = typer.Typer(help="Reports for supervisors and partners.", no_args_is_help=True)

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table for people, json for tools.")


@report_app.command("regulator")
def regulator(
    ctx: typer.Context,
    month: str = typer.Option(..., "--month", help="The month to report, YYYY-MM (closed)."),
    out: Path = typer.Option(..., "--out", help="Directory to write the report into."),
    pack: str | None = typer.Option(
        None, "--pack", help="Rule pack id or file; default the configured pack."
    ),
    platform_licence: str = typer.Option(
        PLATFORM_LICENCE,
        "--platform-licence",
        help="Licence (rule-pack lender type) of loans the platform funds alone.",
    ),
    monitoring: bool = typer.Option(
        True, "--monitoring/--no-monitoring", help="Include the model-monitoring tables."
    ),
    history_months: int = typer.Option(
        HISTORY_MONTHS,
        "--history-months",
        min=0,
        help="Month-ends of history for the portfolio analytics (0: leave them out).",
    ),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Write the monthly regulator report (HTML with charts, CSV and XLSX tables)."""
    if platform_licence not in LENDER_TYPES:
        raise ValidationError(
            f"must be one of {', '.join(LENDER_TYPES)}; got {platform_licence!r}",
            field="platform-licence",
        )
    check_out(out)
    context = app_context(ctx)
    engine = context.ready_engine()
    started = time.perf_counter()
    with _progress(fmt) as progress:
        task = progress.add_task("checking the month", total=None)
        period = resolve_period(engine, month)
        rules = rule_pack_for(context.settings, pack)
        progress.update(task, description="reading the month-end book")
        watch = _monitoring(engine, context.settings, period.month, period.month_end)
        inputs = load_inputs(engine, period, rules, platform_licence=platform_licence,
                             monitoring=watch if monitoring else None,
                             history_months=history_months)  # fmt: skip
        progress.update(task, description="building the tables")
        report = build_report(inputs)
        progress.update(task, description="writing the files")
        files = render_files(report)
        write_directory(out, files)
    _show(report, out, sorted(files), time.perf_counter() - started, fmt)


def _monitoring(engine: Any, settings: Settings, start: Any, end: Any) -> Any:
    """The monitoring tables, or None and why (no model, no decisions module, bad data):
    a regulator report is still written without them, saying so."""

    def tables() -> MonitoringResult:
        try:
            from lendstack.storage.model_monitoring import monitoring_tables
        except ImportError as exc:
            return None, f"Not available: model monitoring is not installed ({exc})."
        try:
            return monitoring_tables(engine, start, end, settings=settings), ""
        except (LendstackError, OSError, ValueError, KeyError) as exc:
            return None, f"Not available: {exc}"

    return tables


def _progress(fmt: OutputFormat) -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True, disable=fmt is OutputFormat.JSON,
    )  # fmt: skip


def check_out(out: Path) -> Path:
    """`--out` must be a directory or a new name in an existing one (checked before work)."""
    out = out.resolve()
    if not out.parent.is_dir():
        raise ValidationError(f"{out.parent} does not exist", field="out")
    if out.exists() and not out.is_dir():
        raise ValidationError(f"{out} exists and is not a directory", field="out")
    return out


def write_directory(out: Path, files: dict[str, bytes]) -> None:
    """Write `files` into a fresh temporary directory beside `out`, then swap it in."""
    out = check_out(out)
    parent = out.parent
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    try:
        staging.chmod(0o777 & ~_umask())
        for name, content in files.items():
            (staging / name).write_bytes(content)
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _swap(staging: Path, out: Path) -> None:
    if not out.exists():
        os.replace(staging, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, old / "report")
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(old / "report", out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _show(
    report: RegulatorReport, out: Path, files: list[str], seconds: float, fmt: OutputFormat
) -> None:
    if fmt is OutputFormat.JSON:
        print_json({**report.as_json(), "out": str(out), "files": files,
                    "seconds": round(seconds, 3)})  # fmt: skip
        return
    s = report.summary
    console.print(f"Regulator report {report.period.month:%Y-%m} written to {out} "
                  f"({len(files)} files, {seconds:.1f} s)")  # fmt: skip
    for key in ("loans_on_books", "balance", "reconciled", "npl_ratio", "apr_above_cap",
                "amount_cap_breaches", "share_floor_breaches", "concentration_breaches",
                "ecl_total", "alerts", "model_monitoring"):  # fmt: skip
        console.print(f"  {key}: {s.get(key)}")


__all__ = ["report_app"]

"""`lendstack risk monitor|drift|fairness`: the credit model in production.

All three read the same tables (`storage.model_monitoring.monitoring_tables`): PSI of the
score and each feature for applications decided in [--start, --end] against the model's
training baseline, AUC and calibration on matured loans against the development figures,
and approval/default rates by gender, age band and province with bootstrap CIs and the
adverse-impact ratio (below 0.8 flagged). `monitor` prints all four tables; `drift` the PSI
ones and `fairness` the fairness one. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_date
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.core.errors import ValidationError
from lendstack.storage.model_monitoring import (
    DEFAULT_HORIZON_MONTHS,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    monitoring_tables,
)

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table for people, json for tools.")
StartOpt = typer.Option(..., "--start", help="First application date, YYYY-MM-DD.")
EndOpt = typer.Option(..., "--end", help="Last application date (inclusive), YYYY-MM-DD.")
ModelOpt = typer.Option(None, "--model", help="Model directory (default: the model in force).")
HorizonOpt = typer.Option(
    DEFAULT_HORIZON_MONTHS, "--horizon", help="Months a loan must be observed to have matured."
)
ResamplesOpt = typer.Option(DEFAULT_RESAMPLES, "--resamples", help="Bootstrap resamples.")
SeedOpt = typer.Option(DEFAULT_SEED, "--seed", help="Bootstrap seed (results are reproducible).")


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)
    app.command("drift")(drift)
    app.command("fairness")(fairness)


def _tables(
    ctx: typer.Context, start: str, end: str, model: Path | None, horizon: int, resamples: int,
    seed: int,
) -> dict[str, list[dict[str, object]]]:  # fmt: skip
    if resamples < 200:
        raise ValidationError("need at least 200 bootstrap resamples", field="resamples")
    context = app_context(ctx)
    with console.status("reading decisions and loans…"):
        return monitoring_tables(
            context.ready_engine(),
            parse_date(start, "start"),
            parse_date(end, "end"),
            settings=context.settings,
            model_dir=model,
            horizon_months=horizon,
            resamples=resamples,
            seed=seed,
        )


def monitor(
    ctx: typer.Context,
    start: str = StartOpt,
    end: str = EndOpt,
    model: Path | None = ModelOpt,
    horizon: int = HorizonOpt,
    resamples: int = ResamplesOpt,
    seed: int = SeedOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Drift (PSI), performance (AUC, calibration) and fairness of the model in force."""
    tables = _tables(ctx, start, end, model, horizon, resamples, seed)
    if fmt is OutputFormat.JSON:
        print_json(tables)
        return
    _print_psi(tables)
    _print_performance(tables["performance"])
    _print_fairness(tables["fairness"])


def drift(
    ctx: typer.Context,
    start: str = StartOpt,
    end: str = EndOpt,
    model: Path | None = ModelOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """PSI of the score and each feature, banded at 0.10 (watch) and 0.25 (shift)."""
    tables = _tables(ctx, start, end, model, DEFAULT_HORIZON_MONTHS, DEFAULT_RESAMPLES, 0)
    if fmt is OutputFormat.JSON:
        print_json({"score_psi": tables["score_psi"], "feature_psi": tables["feature_psi"]})
        return
    _print_psi(tables)


def fairness(
    ctx: typer.Context,
    start: str = StartOpt,
    end: str = EndOpt,
    model: Path | None = ModelOpt,
    horizon: int = HorizonOpt,
    resamples: int = ResamplesOpt,
    seed: int = SeedOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Approval and default rates by gender, age band and province; AIR < 0.8 flagged."""
    tables = _tables(ctx, start, end, model, horizon, resamples, seed)
    if fmt is OutputFormat.JSON:
        print_json({"fairness": tables["fairness"]})
        return
    _print_fairness(tables["fairness"])


def _num(value: Any, spec: str = ".4f") -> str:
    return "–" if value is None else format(value, spec)


def _print_psi(tables: dict[str, list[dict[str, object]]]) -> None:
    table = Table("name", "PSI", "band", "applications", title="population stability")
    for row in [*tables["score_psi"], *tables["feature_psi"]]:
        table.add_row(
            str(row["name"]), _num(row["psi"]), str(row["band"]), str(row["applications"])
        )
    console.print(table)


def _print_performance(rows: Sequence[dict[str, object]]) -> None:
    table = Table("metric", "observed", "reference", "difference", "loans", title="performance")
    for row in rows:
        table.add_row(
            str(row["metric"]), _num(row["observed"]), _num(row["reference"]),
            _num(row["difference"], "+.4f"), str(row["loans"]),
        )  # fmt: skip
    console.print(table)
    console.print("reference: development figure (summary rows) or mean PD (decile rows)")


def _print_fairness(rows: Sequence[dict[str, object]]) -> None:
    table = Table(
        "attribute", "group", "apps", "approval", "95% CI", "matured", "default", "95% CI",
        "AIR", "flag", title="fairness",
    )  # fmt: skip
    for r in rows:
        table.add_row(
            str(r["attribute"]), str(r["group"]), str(r["applications"]),
            _num(r["approval_rate"], ".3f"), _ci(r["approval_low"], r["approval_high"]),
            str(r["matured"]), _num(r["default_rate"], ".3f"),
            _ci(r["default_low"], r["default_high"]), _num(r["air"], ".3f"),
            "< 0.8" if r["flagged"] else "",
        )  # fmt: skip
    console.print(table)


def _ci(low: object, high: object) -> str:
    return "–" if low is None or high is None else f"{_num(low, '.2f')}–{_num(high, '.2f')}"

"""`lendstack simulate`: the market simulator, lendstack's main job (docs/simulation.md).

One scenario writes its run into `--out` (default runs/<scenario>); several scenarios write
one directory each under `--out` (default runs/compare) plus compare.html and compare.json.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress
from rich.table import Table

from lendstack.cli.params import parse_date
from lendstack.cli.render import OutputFormat, console, print_json, progress_bar


def simulate(
    scenario: list[str] = typer.Option(
        ["baseline"],
        "--scenario",
        help="Built-in scenario name or a scenario .toml file (repeat to compare).",
    ),
    borrowers: int = typer.Option(2_000, "--borrowers", help="Borrowers in the population."),
    months: int = typer.Option(12, "--months", help="Months to simulate."),
    seed: int = typer.Option(
        7, "--seed", help="Random seed (same seed + scenario = same metrics)."
    ),
    start: str = typer.Option("2025-10-01", "--start", help="First day of the first month."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/<scenario>)."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="Processes per scenario: 1 decides each month before servicing it; 2 decides it in "
        "a second process while the first services it (the same results, faster). Default: 2 "
        "when scenarios run one at a time on a machine with 2 or more cores, else 1.",
    ),
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        help="Scenarios run at once, one process each (default: one per scenario, at most one "
        "per core). Outputs are the same either way.",
    ),
    retrain: bool = typer.Option(
        False, "--retrain", help="Retrain the credit model monthly on matured loans (slower)."
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table or json"),
) -> None:
    """Run the platform month by month under scenarios; write metrics, tables and a report."""
    from lendstack.simulation import RunConfig, load_scenario, simulate_run
    from lendstack.simulation.output import comparison
    from lendstack.simulation.report import comparison_report

    scenarios = [load_scenario(s) for s in scenario]
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        from lendstack.core.errors import ValidationError

        raise ValidationError("each scenario may be given once", field="scenario")
    at_once = _jobs(jobs, len(scenarios))
    config = RunConfig(
        borrowers, months, seed, parse_date(start, "start"), _workers(workers, at_once),
        retrain=retrain,
    )  # fmt: skip
    multi = len(scenarios) > 1
    base = out or Path("runs") / ("compare" if multi else scenarios[0].name)
    runs = [(sc, base / sc.name if multi else base) for sc in scenarios]
    with _bar() as bar:
        reporters = {sc.name: _reporter(bar, sc.name, months) for sc in scenarios}
        if at_once > 1:
            from lendstack.simulation.side_by_side import run_side_by_side

            def relay(name: str, stage: str, done: int, total: int) -> None:
                reporters[name](stage, done, total)

            results = run_side_by_side(runs, config, at_once, relay)
        else:
            results = [simulate_run(sc, config, where, reporters[sc.name]) for sc, where in runs]
    if multi:
        (base / "compare.json").write_text(_dumps(comparison(results)), encoding="utf-8")
        comparison_report(results, base / "compare.html")
    if fmt is OutputFormat.JSON:
        print_json(
            {
                "runs": [
                    _paths(r, base / r["summary"]["scenario"] if multi else base) for r in results
                ]
            }
        )
        return
    _print(results)
    for r in results:
        where = base / r["summary"]["scenario"] if multi else base
        console.print(f"report: {where / 'report.html'}   database: {where / 'lendstack.db'}")
    if multi:
        console.print(f"comparison: {base / 'compare.html'}")


def _jobs(jobs: int | None, scenarios: int) -> int:
    """How many runs go at once: never more than the scenarios, by default one per core."""
    if jobs is not None and jobs < 1:
        from lendstack.core.errors import ValidationError

        raise ValidationError("must be at least 1", field="jobs")
    return min(scenarios, jobs if jobs is not None else os.cpu_count() or 1)


def _workers(workers: int | None, at_once: int) -> int:
    """Processes per run: by default a second one for the decisions only when the runs going
    at once leave a core free for it."""
    if workers is not None:
        return workers  # RunConfig names the field if it is not 1 or 2
    return 2 if (os.cpu_count() or 1) >= 2 * at_once else 1


def _dumps(payload: Any) -> str:
    import json

    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _paths(metrics: dict[str, Any], where: Path) -> dict[str, Any]:
    return {"summary": metrics["summary"], "report": str(where / "report.html"),
            "metrics": str(where / "metrics.json"), "database": str(where / "lendstack.db")}  # fmt: skip


def _bar() -> Progress:
    return progress_bar()


def _reporter(bar: Progress, name: str, months: int) -> Any:
    """progress(stage, done, total) for the runner: a months bar and a stage bar."""
    month_task = bar.add_task(f"{name}: months", total=months)
    stage_task = bar.add_task("", total=1)
    seen: set[str] = set()

    def report(stage: str, done: int, total: int) -> None:
        month_label = stage.split(":", 1)[0]
        if month_label not in seen:
            if seen:
                bar.advance(month_task)
            seen.add(month_label)
        bar.update(stage_task, description=stage, completed=done, total=max(total, 1))
        if stage.endswith("report written"):
            bar.update(month_task, completed=months)

    return report


def _print(results: list[dict[str, Any]]) -> None:
    table = Table(title="simulation summary")
    keys = ("approval_rate", "loans_booked", "originations_amount", "npl_ratio", "dpd30_rate",
            "ecl", "net_income", "max_apr", "ledger_balanced")  # fmt: skip
    table.add_column("measure")
    for r in results:
        table.add_column(r["summary"]["scenario"], justify="right")
    for key in keys:
        table.add_row(key, *[_cell(r["summary"][key]) for r in results])
    table.add_row("alerts", *[str(len(r["summary"]["alerts"])) for r in results])
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float) and abs(value) < 1:
        return f"{value:.2%}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)

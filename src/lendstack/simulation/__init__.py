"""Market simulator: a synthetic population run through the real platform, month by month.

Public names: `simulate_run` (one scenario, every output written), `RunConfig`, `Scenario`,
`load_scenario`, `parse_scenario`, `builtin_names`. See docs/simulation.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from lendstack.simulation.runner import MonthEndHook, Progress, RunConfig, run_scenario
from lendstack.simulation.scenario import Scenario, builtin_names, load_scenario, parse_scenario


def simulate_run(
    scenario: Scenario,
    config: RunConfig,
    out: Path,
    progress: Progress | None = None,
    hooks: tuple[MonthEndHook, ...] = (),
) -> dict[str, Any]:
    """Run `scenario` into `out` and write metrics.json, the Parquet tables and report.html."""
    from lendstack.simulation.output import write_outputs
    from lendstack.simulation.report import run_report

    result = run_scenario(scenario, config, out, progress, hooks)
    metrics = write_outputs(result)
    run_report(metrics, pl.read_parquet(out / "loans.parquet"), out / "report.html")
    result.engine.dispose()
    if progress is not None:
        progress(f"{scenario.name}: report written", 1, 1)
    return metrics


__all__ = [
    "MonthEndHook",
    "RunConfig",
    "Scenario",
    "builtin_names",
    "load_scenario",
    "parse_scenario",
    "simulate_run",
]

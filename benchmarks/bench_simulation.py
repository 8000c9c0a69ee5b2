"""Market simulator benchmark: the whole platform, month by month, at a few population sizes.

    .venv/bin/python -m benchmarks.bench_simulation --borrowers 25000 50000 100000 --months 24

Target (issue 8): 100,000 borrowers × 24 months, full engine in the loop, ≤ 3 minutes on the
2-core machine on SQLite, and time growing no worse than linearly in borrowers × months.

Each size is one `lendstack simulate` run (outputs included) into a temporary directory; the
line printed per size is wall time, loans booked, payments posted and time per borrower-month,
so linearity can be read off directly. Stage times come from the progress callback: deciding,
servicing (booking, payments and the daily closes) and month-end (measures, ECL, alerts).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from lendstack.simulation import RunConfig, load_scenario, simulate_run


def _timed_progress(stages: dict[str, float]) -> object:
    state = {"stage": "", "since": time.perf_counter()}

    def progress(stage: str, done: int, total: int) -> None:
        name = stage.split(": ", 1)[-1].split(" ", 1)[0]
        now = time.perf_counter()
        stages[state["stage"]] += now - float(state["since"])
        state["stage"], state["since"] = name, now

    return progress


def run(borrowers: int, months: int, scenario: str, workers: int) -> dict[str, object]:
    stages: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        metrics = simulate_run(
            load_scenario(scenario),
            RunConfig(borrowers=borrowers, months=months, workers=workers),
            Path(tmp) / "run",
            _timed_progress(stages),  # type: ignore[arg-type]
        )
        seconds = time.perf_counter() - started
        payments = len(__import__("polars").read_parquet(Path(tmp) / "run" / "payments.parquet"))
    summary = metrics["summary"]
    return {
        "borrowers": borrowers,
        "months": months,
        "seconds": round(seconds, 1),
        "applications": summary["applications"],
        "loans": summary["loans_booked"],
        "payments": payments,
        "ms_per_borrower_month": round(1000 * seconds / (borrowers * months), 3),
        "stages": {k: round(v, 1) for k, v in stages.items() if k},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--borrowers", type=int, nargs="+", default=[2_000])
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--scenario", default="baseline")
    parser.add_argument(
        "--workers", type=int, default=2, help="RunConfig.workers (simulate's default on 2 cores)"
    )
    args = parser.parse_args()
    print(f"# {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()},"
          f" load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for n in args.borrowers:
        print(json.dumps(run(n, args.months, args.scenario, args.workers)), flush=True)


if __name__ == "__main__":
    main()

"""Where a simulation's time goes: CPU seconds by stage and by close step, and per unit of work.

    .venv/bin/python -m benchmarks.profile_simulation --borrowers 10000 --months 24

One baseline run (no outputs written, so only the engine's work is timed). Each stage is
timed in CPU seconds of the run's main thread (`time.thread_time`, SQLite included: it runs
in the thread), so a busy machine stretches the figures less than wall time; its wall
seconds are given too, and what they exceed the CPU seconds by is time the stage waited (in
"taking decisions", for the side process) or was kept off a core by the run's other work.
`months_detail` gives each month's wall seconds, the main thread's CPU seconds and its
waits for the side process, so the months where the run waits stand out. The process's
other threads (with `--workers 2`, the executor's thread that unpickles the side process's
results while the main thread waits in C, the close's reads aside, and any native threads
a library starts) are
"other threads", not charged to whichever stage happened to be running. The units of work
are read from the run's database afterwards: applications decided, loans booked, payments
posted and loan-days (the days each loan was open, which is what a daily close walks). Dividing one by the other
gives the cost per unit. `calibration` is a fixed workload's CPU seconds just before and
after the run (`benchmarks.calibration`): how fast the machine was, to compare runs made on
different machines or minutes apart. Each stage's time is also scaled to a run of `--at-borrowers` ×
`--at-months`, assuming the units grow linearly (docs/benchmarks.md shows they do), and the
whole run's against `--target-seconds`: how many times over the target it would be.

With `--workers 2` the month's decisions are made in a second process while this one
services the month (`simulation.deciding`): "deciding" is then ~0 here, "taking decisions"
is this process's share (recording each chunk in the log), "side process" is the second
process's CPU, and wall time is what the target is about (two cores at work).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.calibration import calibrate
from lendstack.simulation import runner
from lendstack.simulation.deciding import SideProcess
from lendstack.simulation.repayments import Repayments
from lendstack.simulation.scenario import load_scenario
from lendstack.storage import cob

STAGES = {
    "deciding": (runner, "decide_first", "applications"),
    "taking decisions": (runner._MonthDecisions, "granted_through", "applications"),
    "booking": (runner._Run, "_book", "loans"),
    "payments": (Repayments, "post_day", "payments"),
    "close": (runner, "close_day", "loan_days"),
    "month-end": (runner, "measure_month", "months"),
}
"""Stage name → (owner, attribute) of the function whose calls are that stage, and the unit
of work (a key of `_units`) its time is divided by."""


def _timed(seconds: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, adding its calls' CPU seconds to `seconds[name]` and their wall seconds to
    `seconds["wall: " + name]`."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        started, wall = time.thread_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[name] += time.thread_time() - started
            seconds[f"wall: {name}"] += time.perf_counter() - wall

    return timed


@contextmanager
def _instrumented(seconds: dict[str, float]) -> Iterator[None]:
    """Time each stage and each close step while the block runs; restore them after."""
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in STAGES.values()]
    steps = dict(cob.STEP_SQL)
    for name, (owner, attr, _) in STAGES.items():
        setattr(owner, attr, _timed(seconds, name, getattr(owner, attr)))
    for step, fn in steps.items():
        cob.STEP_SQL[step] = _timed(seconds, f"close: {step.value}", fn)
    try:
        yield
    finally:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)
        cob.STEP_SQL.update(steps)


class _Months:
    """Each month's wall seconds, the run's main thread's CPU seconds in it, and how long that
    thread waited for the side process in it: for the month's start (the side process pinning
    its moment; in month 1 also its start, the model's loading) and for decisions ("taking
    decisions"' wall time beyond its CPU). Where a run's wall time beyond its main thread's
    goes, month by month."""

    _WAITS = ((runner._MonthDecisions, "granted_through"), (SideProcess, "month"))

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self._saved: list[tuple[Any, str, Callable[..., Any]]] = []

    def _waited(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def waiting(*args: Any, **kwargs: Any) -> Any:
            started, wall = time.thread_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                waited = (time.perf_counter() - wall) - (time.thread_time() - started)
                self.rows[-1]["waiting_s"] = round(self.rows[-1]["waiting_s"] + waited, 3)

        return waiting

    def __enter__(self) -> None:
        # Read when entered, so that a stage timed by `_instrumented` stays timed inside.
        self._saved = [(owner, attr, getattr(owner, attr)) for owner, attr in self._WAITS]
        self._month = runner._Run.month
        rows, month = self.rows, self._month

        def timed_month(run: Any, n: int) -> None:
            rows.append({"month": n, "wall_s": 0.0, "main_cpu_s": 0.0, "waiting_s": 0.0})
            started, wall = time.thread_time(), time.perf_counter()
            try:
                month(run, n)
            finally:
                rows[-1]["wall_s"] = round(time.perf_counter() - wall, 2)
                rows[-1]["main_cpu_s"] = round(time.thread_time() - started, 2)

        runner._Run.month = timed_month  # type: ignore[method-assign]
        for owner, attr, fn in self._saved:
            setattr(owner, attr, self._waited(fn))

    def __exit__(self, *exc: object) -> None:
        runner._Run.month = self._month  # type: ignore[method-assign]
        for owner, attr, fn in self._saved:
            setattr(owner, attr, fn)


class _SideCpu:
    """The side process's CPU seconds (`deciding.SideProcess.cpu_seconds`), read as it closes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._close = SideProcess.close

    def __enter__(self) -> None:
        def close(side: SideProcess) -> None:
            self.seconds += side.cpu_seconds
            self._close(side)

        SideProcess.close = close  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        SideProcess.close = self._close  # type: ignore[method-assign]


def _units(db: Path, months: int) -> dict[str, int]:
    with sqlite3.connect(db) as conn:

        def count(table: str) -> int:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

        last_close = conn.execute("SELECT MAX(business_date) FROM cob_steps").fetchone()[0]
        loan_days = conn.execute(
            "SELECT SUM(julianday(COALESCE(closed_on, ?)) - julianday(disbursement_date))"
            " FROM loans",
            (last_close,),
        ).fetchone()[0]
        return {
            "applications": count("decision_log"),
            "loans": count("loans"),
            "payments": count("payments"),
            "loan_days": int(loan_days or 0),
            "months": months,
        }


def _cores() -> int:
    """The cores this process may run on (a container may allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def overlap_floor(main_thread_s: float, all_cpu_s: float, cores: int) -> dict[str, Any]:
    """The least wall time any scheduling of the run's measured work could take: its main
    thread's CPU, which only that thread can do, one step after another; or all its CPU (the
    main process's threads and the side process's) spread evenly over every core, whichever
    is longer. A run's wall time minus this is waiting and contention; a target below it
    needs less work, not better overlap (docs/benchmarks.md, session m)."""
    floor = max(main_thread_s, all_cpu_s / cores)
    return {
        "all_cpu_s": round(all_cpu_s, 1),
        "cores": cores,
        "floor_s": round(floor, 1),
        "bound_by": "main thread" if floor == main_thread_s else "all CPU",
    }


def profile(
    borrowers: int,
    months: int,
    at: tuple[int, int],
    target: float,
    workers: int = 1,
    calibration_reps: int = 3,
) -> dict[str, Any]:
    seconds: dict[str, float] = defaultdict(float)
    before = calibrate(calibration_reps)
    config = runner.RunConfig(borrowers=borrowers, months=months, workers=workers)
    side, by_month = _SideCpu(), _Months()
    with tempfile.TemporaryDirectory() as tmp, _instrumented(seconds), side, by_month:
        started, wall = time.process_time(), time.perf_counter()
        main_started = time.thread_time()
        runner.run_scenario(load_scenario("baseline"), config, Path(tmp) / "run")
        total, wall = time.process_time() - started, time.perf_counter() - wall
        main_thread = time.thread_time() - main_started
        units = _units(Path(tmp) / "run" / "lendstack.db", months)
    after = calibrate(calibration_reps)
    seconds["side process"] = side.seconds
    scale = (at[0] * at[1]) / (borrowers * months)
    stages = {
        name: {
            "cpu_s": round(seconds[name], 4),
            "unit": unit,
            "us_per_unit": round(1e6 * seconds[name] / max(units[unit], 1), 2),
            "at_size_s": round(seconds[name] * scale, 1),
        }
        | ({"wall_s": round(seconds[f"wall: {name}"], 2)} if name in STAGES else {})
        for name, (_, _, unit) in {**STAGES, "side process": (None, None, "applications")}.items()
    }
    floor = overlap_floor(main_thread, total + side.seconds, _cores())
    return {
        "borrowers": borrowers,
        "months": months,
        "workers": workers,
        "cpu_s": round(total, 1),
        "main_thread_cpu_s": round(main_thread, 1),
        "other_threads_cpu_s": round(total - main_thread, 1),
        "wall_s": round(wall, 1),
        "calibration": {"before": before, "after": after},
        "units": units,
        "stages": stages,
        "months_detail": by_month.rows,
        "floor": floor,
        "close_steps": {
            k.removeprefix("close: "): round(v, 2)
            for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])
            if k.startswith("close: ")
        },
        "at": {
            "borrowers": at[0],
            "months": at[1],
            "cpu_s": round(total * scale, 1),
            "wall_s": round(wall * scale, 1),
            "target_s": target,
            "times_too_slow": round(wall * scale / target, 1),
            "floor_s": round(floor["floor_s"] * scale, 1),
            "floor_times_target": round(floor["floor_s"] * scale / target, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--borrowers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--at-borrowers", type=int, default=100_000)
    parser.add_argument("--at-months", type=int, default=24)
    parser.add_argument("--target-seconds", type=float, default=180.0)
    parser.add_argument("--workers", type=int, default=1, help="RunConfig.workers: 1 or 2")
    parser.add_argument(
        "--calibration-reps", type=int, default=3, help="benchmarks.calibration, before and after"
    )
    args = parser.parse_args()
    print(f"# {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()},"
          f" load {os.getloadavg()[0]:.1f}")  # fmt: skip
    at = (args.at_borrowers, args.at_months)
    found = profile(
        args.borrowers, args.months, at, args.target_seconds, args.workers, args.calibration_reps
    )
    print(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()

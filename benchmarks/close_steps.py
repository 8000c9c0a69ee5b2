"""The daily close on a fixed book: CPU milliseconds per close step, and optionally per SQL
statement, on a run's database, which is left as it was.

    .venv/bin/python -m benchmarks.close_steps runs/baseline/lendstack.db --reps 7 --statements

It closes the day after the database's last close `--reps` times, after one warm-up close,
each inside a transaction that is rolled back: every repetition closes the same book, and
the database is not changed. The figures are medians over the repetitions.

Unlike the stage profiler (`benchmarks.profile_simulation`), which times the close inside a
whole run, this runs nothing else, so a step's cost can be compared between two books (a
10,000- and a 100,000-borrower run, say: is a step linear in the active loans?) or between
two checkouts on one book, interleaved (A B A B), to within a few per cent on a shared
machine. docs/benchmarks.md ("Does the close scale with the book?") used it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, event, text

from lendstack.servicing.cob import STEPS
from lendstack.simulation.runner import scratch_engine
from lendstack.storage import cob
from lendstack.storage.close_store import SqlCloseStore


def measure(
    db: str,
    reps: int = 5,
    statements: bool = False,
    deferred: bool = False,
    carried: bool = False,
) -> dict[str, Any]:
    """Median CPU milliseconds of each close step (and statement) over `reps` closes of the
    day after `db`'s last close, each rolled back; `deferred`: the accrual defers its row
    writes, as a simulation's close does between month-ends (`cob.accrue`); `carried`: the
    funders' exposures are carried from the last close, as a simulation's are (`cob.fund`)."""
    if reps < 1:
        raise ValueError("reps must be at least 1")
    engine = scratch_engine(f"sqlite:///{db}")
    timings: dict[tuple[str, str], list[float]] = defaultdict(list)
    current = {"step": "", "timed": False}

    def before(conn: Connection, *_: Any) -> None:
        conn.info["close_steps_t0"] = time.process_time()

    def after(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        spent = time.process_time() - conn.info.pop("close_steps_t0")
        if current["timed"]:
            timings[(str(current["step"]), " ".join(statement.split()))].append(spent)

    if statements:
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
    try:
        day = _next_day(engine)
        store = SqlCloseStore(engine, defer_accrual=deferred, carry_exposures=carried)
        options = store.step_options(day)
        steps: dict[str, list[float]] = {step.value: [] for step in STEPS}
        totals: list[float] = []
        with engine.connect() as conn:
            active = int(conn.execute(_ACTIVE).scalar() or 0)
            conn.rollback()  # ends the read's transaction: each close takes its own
            for rep in range(reps + 1):  # the first warms the page cache, untimed
                current["timed"] = rep > 0
                transaction = conn.begin()
                try:
                    start = time.process_time()
                    for step in STEPS:
                        current["step"] = step.value
                        t = time.process_time()
                        cob.STEP_SQL[step](conn, day, **options.get(step, {}))
                        if rep:
                            steps[step.value].append(time.process_time() - t)
                    if rep:
                        totals.append(time.process_time() - start)
                finally:
                    transaction.rollback()
    finally:
        engine.dispose()
    found: dict[str, Any] = {
        "day": day.isoformat(),
        "active_loans": active,
        "reps": reps,
        "total_ms": _ms(totals),
        "steps_ms": {name: _ms(spent) for name, spent in steps.items()},
    }
    if statements:
        rows = [
            {"step": step, "ms": sum(spent) * 1000 / reps, "sql": sql}
            for (step, sql), spent in timings.items()
        ]
        found["statements"] = sorted(rows, key=lambda row: -row["ms"])
    return found


_ACTIVE = text("SELECT COUNT(*) FROM loans WHERE status = 'active'")


def _next_day(engine: Any) -> date:
    store = SqlCloseStore(engine)
    last = store.last_closed()
    if last is not None:
        return last + timedelta(days=1)
    first = store.first_activity()
    if first is None:
        raise SystemExit("the database has no loans to close")
    return first


def _ms(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1000, 3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", help="a run's lendstack.db (not changed)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--statements", action="store_true", help="also time each statement")
    parser.add_argument("--top", type=int, default=20, help="statements shown")
    parser.add_argument(
        "--deferred", action="store_true", help="the accrual defers its row writes (simulation)"
    )
    parser.add_argument(
        "--carried",
        action="store_true",
        help="exposures carried from the last close (simulation; the book's last close must"
        " have carried them, else they are summed)",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    found = measure(args.db, args.reps, args.statements, args.deferred, args.carried)
    if args.format == "json":
        print(json.dumps(found, indent=2))
        return
    print(
        f"close of {found['day']}: {found['active_loans']} active loans,"
        f" {found['total_ms']:.1f} ms CPU (median of {found['reps']})"
    )
    for name, ms in found["steps_ms"].items():
        print(f"  {name:15s} {ms:9.2f} ms")
    for row in found.get("statements", [])[: args.top]:
        print(f"  {row['step']:15s} {row['ms']:9.2f} ms  {row['sql'][:110]}")


if __name__ == "__main__":
    main()

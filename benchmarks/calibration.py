"""How fast this machine runs lendstack's kind of work right now: one fixed workload, timed.

    .venv/bin/python -m benchmarks.calibration

The sessions that measured the simulator ran on machines whose speed differed by up to 2.4×
for the same code, and drifted ±10–20% from one run to the next (docs/benchmarks.md,
sessions h and i), so two runs' raw seconds compare only on the same machine at the same
moment. This workload is the run's own mix at a fixed size: the servicing domain's Decimal
work (a schedule quoted for every product and term of the catalogue) and SQLite's (a table
with an index filled in one transaction, then summed by group). It never changes, so its CPU
time, taken just before and just after a run (`profile_simulation` does), says how fast the
machine was; a run's seconds divided by it compare across machines. Its parts are timed
apart, since Python's speed and SQLite's need not move together.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from lendstack.servicing import LoanRequest, ProductCatalog
from lendstack.servicing.services import quote

_START = date(2026, 1, 15)
_AMOUNTS = tuple(Decimal(a) for a in ("3000.00", "8888.88", "15000.00"))
_ROWS = 40_000
_ROUNDS = 300


def domain_work() -> int:
    """Quote each product's every term at a few amounts (within its limits): the schedules'
    Decimal arithmetic and records, which servicing and booking spend most of their Python on.
    Returns the installments made."""
    catalog = ProductCatalog()
    made = 0
    for _ in range(_ROUNDS):
        for product in sorted(catalog.all(), key=lambda p: p.id):
            for term in product.terms_allowed:
                for amount in _AMOUNTS:
                    amount = min(max(amount, product.amount_min), product.amount_max)
                    request = LoanRequest(product.id, amount, term, None, _START)
                    made += len(quote(catalog, request).installments)
    return made


def sqlite_work() -> int:
    """Fill an indexed table in one transaction and sum it by group: the kind of statement
    the close and the payments run. Returns the groups summed."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, loan INTEGER, kind TEXT, fen INTEGER)"
        )
        conn.execute("CREATE INDEX ix_t_loan ON t (loan)")
        rows = [(n, (n * 7919) % 5000, ("a", "b", "c")[n % 3], n % 977) for n in range(_ROWS)]
        with conn:
            conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
        groups = 0
        for _ in range(10):
            groups += len(conn.execute("SELECT kind, SUM(fen) FROM t GROUP BY kind").fetchall())
            groups += len(conn.execute("SELECT SUM(fen) FROM t WHERE loan < 2500").fetchall())
        return groups
    finally:
        conn.close()


def _cpu(work: Callable[[], int], reps: int) -> float:
    """The least CPU seconds of `reps` runs (the least is the one least disturbed)."""
    best = float("inf")
    for _ in range(reps):
        started = time.thread_time()
        work()
        best = min(best, time.thread_time() - started)
    return best


def calibrate(reps: int = 3) -> dict[str, float]:
    """CPU seconds of the workload's parts, each the least of `reps` runs, and their sum."""
    domain, database = _cpu(domain_work, reps), _cpu(sqlite_work, reps)
    return {
        "domain_s": round(domain, 3),
        "sqlite_s": round(database, 3),
        "total_s": round(domain + database, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    print(json.dumps(calibrate(parser.parse_args().reps)))


if __name__ == "__main__":
    main()

"""Covering indexes for a deferring close's daily scans, kept only while a simulation runs.

Between month-ends a deferring close (`SqlCloseStore(defer_accrual=True)`) still reads every
active loan twice a day: the accrual's sums and the snapshot. Each visit fetches the loan's
44-column row from the table, in an index's order, which is most of both statements' cost.
An index holding every column a statement reads answers it from the index alone: on a
25,000 × 12 book (8,241 active loans) the accrual's step fell 11 → 4.7 ms and the snapshot
13.6 → 4.5 ms (`benchmarks.close_steps --deferred --carried`, docs/benchmarks.md).

They are not in the schema, because they cost a close that does not defer: its accrual
rewrites every accruing row's balance columns daily, and each index entry with them (the
daily close's accrual step doubled, 28 → 62 ms on the same book), and on PostgreSQL they
would stop the accrual's in-place (HOT) row updates. A simulation's close defers, so a run
creates them on its database at the start and drops them at the end (`covering_indexes`),
leaving the project's schema for whatever reads the run's database next. Between
month-ends only the rows payments and bookings write (and the few the close bills, ages or
penalises) change their entries; each month-end rewrites them all once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

_ACCRUAL_READS = "period_due, period_start, period_interest, period_accrued, rounding"

COVERING = {
    # The accrual's sums (`cob.accrue`): grouped by non_accrual, in this index's order.
    "ix_run_close_accrual": f"status, non_accrual, {_ACCRUAL_READS}, accrual_dirty",
    # The snapshot (`cob.snapshot`): grouped by product, bucket and class, in this order;
    # the period columns give each row's unwritten interest (`cob.INTEREST`).
    "ix_run_close_snapshot": (
        f"status, product_id, bucket, risk_class, {_ACCRUAL_READS},"
        " bal_principal, bal_interest, bal_fee, bal_penalty"
    ),
}
"""Index name → the loan columns it holds, leading with the ones its statement filters and
groups by (SQLite picks a covering index for a statement only when it serves the filter)."""


@contextmanager
def covering_indexes(engine: Engine) -> Iterator[None]:
    """The `COVERING` indexes on the loan table for the block, dropped after it (even on
    error: the database is left with the project's schema)."""
    with engine.begin() as conn:
        for name, columns in COVERING.items():
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON loans ({columns})"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            for name in COVERING:
                conn.execute(text(f"DROP INDEX IF EXISTS {name}"))

"""A small run of benchmarks/bench_collections.py: its book loads, and the plan accounts for
every attempt the shipped strategies want (counted here from the book with plain SQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from lendstack.storage.mapping import to_day


def test_bench_book_plans_every_wanted_attempt(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_collections as bench  # the repository root: not installed

    bench.build(engine, 3000)
    seconds, ranked = bench.run_queue(engine)
    _, summary, _ = bench.run_plan(engine)
    d = to_day(bench.DAY)
    with engine.connect() as conn:

        def count(where: str) -> int:
            return int(
                conn.execute(text(f"SELECT COUNT(*) FROM loans WHERE {where}")).scalar() or 0
            )

        pre_due = count(f"dpd = 0 AND period_due BETWEEN {d} AND {d + 3}")
        m1, m2, agency = count("bucket = 1"), count("bucket = 2"), count("bucket >= 3")
        # debtors with 6 unanswered calls today are unreachable: their M2 strategy adds
        # one emergency call
        unreachable_m2 = int(
            conn.execute(
                text(
                    "SELECT COUNT(*) FROM loans WHERE bucket = 2 AND id IN (SELECT loan_id FROM"
                    " collection_contacts GROUP BY loan_id HAVING COUNT(*) >= 6)"
                )
            ).scalar()
            or 0
        )
    assert ranked == m1 + m2 + agency == 3000
    wanted = pre_due + 2 * m1 + 3 * m2 + unreachable_m2 + 2 * agency
    refused = sum(summary["refused_attempts_by_reason"].values())  # type: ignore[union-attr]
    assert summary["planned_attempts"] + refused == wanted
    assert set(summary["refused_attempts_by_reason"]) <= {"MAX_ATTEMPTS"}  # type: ignore[arg-type]
    assert seconds < 30

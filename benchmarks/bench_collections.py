"""Collections benchmark: the ranked queue and the day's compliant contact plan over a big book.

    .venv/bin/python -m benchmarks.bench_collections --loans 1000000 --backend sqlite

Target (issue 7): queue and plan for 1,000,000 delinquent loans in <= 60 s.

The book is written by SQL inside the database (a recursive CTE), not by the servicing
generator: `--loans` delinquent loans spread over M1..M7+ with balances of 1,000-40,000 CNY,
plus a fifth as many current loans of which about a quarter fall due within the reminder
window, and a contact log for the plan's day (unanswered calls on one loan in ten, and six
unanswered calls on one in a hundred, so the call limit and the emergency-contact rule both
bind). The timed parts are what `lendstack collections queue` and `plan` run: the set-based
read into numpy, the ranking, the log's facts and the filtered plan.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

from sqlalchemy import Engine, text

from benchmarks.bench_servicing import fresh_engine
from lendstack.collections import default_pack, default_strategies, plan, rank
from lendstack.storage import collections as store
from lendstack.storage.mapping import to_day

DAY = date(2026, 7, 1)
CLOSED = date(2026, 6, 30)

_SERIES = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)"
_HASH = "((i * 2654435761) % 1000003)"


def _loans_sql(delinquent: bool) -> str:
    dpd = f"({_HASH} % 200 + 1)" if delinquent else "0"
    bucket = f"(CASE WHEN {dpd} > 180 THEN 7 ELSE ({dpd} + 29) / 30 END)"
    due = ":d + (i % 12)" if not delinquent else ":d + 30 - (i % 30)"
    return (
        f"{_SERIES} INSERT INTO loans (id, product_id, currency, status, principal_fen,"
        " annual_rate, term_months, method, disbursement_date, anchor_date, day_count, rounding,"
        " grace_days, penalty_multiplier, penalty_rate_e8, year_days, waterfall, non_accrual_dpd,"
        " charge_off_dpd, fee_rate, upfront_fee_rate, prepayment_fee_rate, bal_principal,"
        " bal_interest, bal_fee, bal_penalty, period_no, period_due, dpd, bucket, risk_class,"
        " created_at)"
        " SELECT i + :offset, 'cash-loan-installment', 'CNY', 'active', 1000000, '0.18', 12,"
        " 'equal_installment', '2026-01-01', '2026-01-01', 'ACT/365', 'half_up', 0, '1.5',"
        " 27000000, 365, 'penalty,fee,interest,principal', 90, 365, '0', '0', '0',"
        f" 100000 + ({_HASH} * 7) % 3900000, {_HASH} % 50000, 0, {_HASH} % 3000, 3,"
        f" {due}, {dpd}, {bucket}, 'special_mention', '2026-01-01 00:00:00' FROM n"
    )


_CONTACTS_SQL = (
    f"{_SERIES} INSERT INTO collection_contacts (loan_id, contacted_at, local_day, local_time,"
    " channel, party, number, outcome, consent, message, allowed, reasons, rule_pack,"
    " recorded_at) SELECT (i / 7) * 10 + 1, '2026-07-01 01:00:00', :day, '09:00', 'call',"
    " 'debtor', 'debtor', 'no_answer', FALSE, '', TRUE, '[]', 'bench', '2026-07-01 01:00:00'"
    " FROM n WHERE (i / 7) * 10 + 1 <= :loans AND (((i / 7) % 10 = 0 AND i % 7 < 6) OR i % 7 < 2)"
)


def build(engine: Engine, loans: int) -> float:
    """Write the book, a closed business date and the day's contact log; seconds taken."""
    started = time.perf_counter()
    with engine.begin() as conn:
        d = to_day(DAY)
        conn.execute(text(_loans_sql(True)), {"count": loans, "offset": 0, "d": d})
        current = max(loans // 5, 1)
        conn.execute(text(_loans_sql(False)), {"count": current, "offset": loans, "d": d})
        conn.execute(text(_CONTACTS_SQL), {"count": loans // 10 * 7, "day": DAY, "loans": loans})
        conn.execute(
            text(
                "INSERT INTO cob_steps (step, business_date, rows, completed_at)"
                " VALUES ('closed', :day, 0, '2026-06-30 23:00:00')"
            ),
            {"day": CLOSED},
        )
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE loans"))
            conn.execute(text("ANALYZE collection_contacts"))
    return time.perf_counter() - started


def run_queue(engine: Engine) -> tuple[float, int]:
    strategies = default_strategies()
    started = time.perf_counter()
    with engine.connect() as conn:
        store.check_open_date(conn, DAY)
        book = store.read_book(conn, DAY, strategies.days_before_due)
    queue = rank(book, strategies).delinquent()
    return time.perf_counter() - started, len(queue)


def run_plan(engine: Engine) -> tuple[float, dict[str, object], dict[str, float]]:
    strategies, pack = default_strategies(), default_pack()
    marks = {}
    started = time.perf_counter()
    with engine.connect() as conn:
        store.check_open_date(conn, DAY)
        book = store.read_book(conn, DAY, strategies.days_before_due)
        marks["read book"] = time.perf_counter() - started
        facts = store.log_facts(conn, DAY, pack)
        marks["log facts"] = time.perf_counter() - started - marks["read book"]
    mark = time.perf_counter()
    queue = rank(book, strategies)
    marks["rank"] = time.perf_counter() - mark
    mark = time.perf_counter()
    result = plan(queue, strategies, pack, facts)
    marks["plan"] = time.perf_counter() - mark
    return time.perf_counter() - started, result.summary(), marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", type=int, default=1_000_000, help="Delinquent loans.")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print("| backend | delinquent loans | build s | queue s (loans) | plan s | plan detail |")
    print("|---|---|---|---|---|---|")
    for backend in backends:
        with fresh_engine(backend) as engine:
            built = build(engine, args.loans)
            queue_s, ranked = run_queue(engine)
            plan_s, summary, marks = run_plan(engine)
            detail = ", ".join(f"{k} {v:.2f}" for k, v in marks.items())
            print(
                f"| {backend} | {args.loans:,} | {built:.1f} | {queue_s:.2f} ({ranked:,}) |"
                f" {plan_s:.2f} | {detail} |"
            )
            print(f"plan summary: {summary}")


if __name__ == "__main__":
    main()

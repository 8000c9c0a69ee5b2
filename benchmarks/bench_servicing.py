"""Servicing benchmark: close of business on a generated book, and durable payment posting.

    .venv/bin/python -m benchmarks.bench_servicing --loans 1000000 --backend both

For each backend it generates a book of N loans disbursed over the year before the as-of
date, closes 1 business date and then 29 more, and reports loans per second. It then closes
one date on two books of the same size whose loans are all 1 day and all 360 days old, to
show the per-loan cost does not grow with age, and posts payments one per transaction.
Figures go in docs/benchmarks.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Engine, create_engine, text

from lendstack.servicing.cob import close_day, close_through
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.services import Payment, take_payment, take_payments
from lendstack.servicing.synthetic import BookSpec
from lendstack.storage.bulk import generate_into
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.repositories import SqlUnitOfWork

AS_OF = date(2026, 6, 30)
PG_URL = os.environ.get(
    "LENDSTACK_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def fresh_engine(backend: str) -> Iterator[Engine]:
    """An empty, migrated database: a temp SQLite file or a throwaway PostgreSQL schema."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{folder}/bench.db")
            migrate(engine)
            yield engine
            engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{PG_URL}?options=-csearch_path%3D{schema}")
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def active_loans(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text("SELECT COUNT(*) FROM loans WHERE status = 'active'")).scalar() or 0
        )


def load(engine: Engine, spec: BookSpec) -> float:
    products = {p.id: p for p in ProductCatalog().all()}
    started = time.perf_counter()
    generate_into(engine, products, spec)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


@dataclass
class CloseFigures:
    backend: str
    loans: int
    active: int
    generate_s: float
    one_day_s: float
    thirty_days_s: float

    @property
    def loans_per_s(self) -> float:
        return self.active / self.one_day_s


def bench_close(backend: str, loans: int, days: int) -> CloseFigures:
    with fresh_engine(backend) as engine:
        gen = load(engine, BookSpec(loans, 42, AS_OF))
        active = active_loans(engine)
        store = SqlCloseStore(engine)
        started = time.perf_counter()
        close_day(store, AS_OF + timedelta(days=1))
        one = time.perf_counter() - started
        started = time.perf_counter()
        close_through(store, AS_OF + timedelta(days=days))
        rest = time.perf_counter() - started
    return CloseFigures(backend, loans, active, gen, one, one + rest)


def bench_age(backend: str, loans: int) -> dict[int, float]:
    """Microseconds per active loan to close one date, for books of young and old loans."""
    out = {}
    for age in (1, 360):
        with fresh_engine(backend) as engine:
            load(engine, BookSpec(loans, 43, AS_OF, age_days=age))
            active = active_loans(engine)
            started = time.perf_counter()
            close_day(SqlCloseStore(engine), AS_OF + timedelta(days=1))
            out[age] = (time.perf_counter() - started) / active * 1e6
    return out


def bench_payments(backend: str, count: int) -> tuple[float, float]:
    """Payments per second through the payment service: each its own durable transaction
    (`take_payment`), and the same number more as one batch (`take_payments`, a day's file)."""
    with fresh_engine(backend) as engine:
        load(engine, BookSpec(max(2 * count, 2000), 44, AS_OF))
        with engine.connect() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    text("SELECT id FROM loans WHERE status = 'active' ORDER BY id")
                )
            ][: 2 * count]
        day = AS_OF + timedelta(days=1)
        single, batch = ids[:count], ids[count:]
        started = time.perf_counter()
        for n, loan_id in enumerate(single):
            take_payment(SqlUnitOfWork(engine), Payment(loan_id, Decimal("10.00"), day, f"b{n}"))
        one_by_one = len(single) / (time.perf_counter() - started)
        payments = [Payment(i, Decimal("10.00"), day, f"m{i}") for i in batch]
        started = time.perf_counter()
        take_payments(SqlUnitOfWork(engine), payments)
        return one_by_one, len(batch) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument(
        "--age-loans", type=int, default=0, help="book size for the age test (default loans/4)"
    )
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30, help="dates closed in the long run")
    parser.add_argument("--skip", nargs="*", default=[], choices=["close", "age", "payments"])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    if "close" not in args.skip:
        report_close(backends, args.loans, args.days)
    if "age" not in args.skip:
        report_age(backends, args.age_loans or max(args.loans // 4, 1000))
    if "payments" not in args.skip:
        report_payments(backends, args.payments)


def report_close(backends: list[str], loans: int, days: int) -> None:
    print(
        f"| backend | loans | active | generate s | close 1 day s | active loans/s | close {days} days s |"
    )
    print("|---|---|---|---|---|---|---|")
    for backend in backends:
        f = bench_close(backend, loans, days)
        print(
            f"| {backend} | {f.loans:,} | {f.active:,} | {f.generate_s:.1f} | {f.one_day_s:.2f} "
            f"| {f.loans_per_s:,.0f} | {f.thirty_days_s:.1f} |",
            flush=True,
        )


def report_age(backends: list[str], age_loans: int) -> None:
    print(
        f"\n| backend | µs per active loan, age 1 day | age 360 days | (books of {age_loans:,}) |"
    )
    print("|---|---|---|---|")
    for backend in backends:
        age = bench_age(backend, age_loans)
        print(f"| {backend} | {age[1]:.1f} | {age[360]:.1f} | |", flush=True)


def report_payments(backends: list[str], count: int) -> None:
    print("\n| backend | payments/s, one durable transaction each | payments/s, one batch |")
    print("|---|---|---|")
    for backend in backends:
        single, batch = bench_payments(backend, count)
        print(f"| {backend} | {single:,.0f} | {batch:,.0f} |", flush=True)


if __name__ == "__main__":
    main()

"""Close of business is idempotent per business date and survives being killed part-way.

A closed date run again changes nothing at all (every table dumped and compared). A close
killed with SIGKILL at random moments and then run to completion leaves exactly the books of
an uninterrupted close on a separate database (compared by content: ids and wall-clock
timestamps excluded). Both run on SQLite and, when configured, on PostgreSQL.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from dbstate import dump, fingerprint
from sqlalchemy import Engine, text

from lendstack.servicing.cob import close_day, close_through
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.services import LoanRequest, Payment, book_loan, take_payment
from lendstack.storage.cob import SqlCloseStore
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.reports import reconcile
from lendstack.storage.repositories import SqlUnitOfWork

START = date(2026, 1, 31)
THROUGH = START + timedelta(days=230)  # past charge-off (180 DPD) of loans that never pay
# A PostgreSQL close costs ~0.1 s a date here (round trips), so it stops short of charge-off
# but past non-accrual and the move to substandard (90 DPD); SQLite covers charge-off too.
PG_THROUGH = START + timedelta(days=110)

LOANS = [
    ("cash-loan-installment", 12, "0.18", {}),
    ("guaranteed-installment", 6, "0.12", {"fee_rate": Decimal("0.002")}),
    ("consumer-loan-equal-principal", 6, "0.10", {}),
    ("huabei-installment", 6, "0", {"fee_rate": Decimal("0.006")}),
    ("business-loan-interest-first", 3, "0.15", {}),
    ("short-term-bullet", 3, "0.2", {}),
]


def build_book(engine: Engine, catalog: ProductCatalog, count: int = 24) -> None:
    """`count` loans over every product; some prepaid into credit, some partly, some never.

    Credit held on day one is applied by the close at each billing, so the credit step (the
    one step that works loan by loan) runs on many dates.
    """
    for n in range(count):
        product, term, rate, extra = LOANS[n % len(LOANS)]
        amount = Decimal(5000 + 750 * n)
        request = LoanRequest(product, amount, term, Decimal(rate), START, **extra)
        loan = book_loan(SqlUnitOfWork(engine), catalog, request)
        first = loan.installments[0].total
        paid = {0: None, 1: first, 2: first * 3, 3: Decimal("100.00")}[n % 4]
        if paid is not None:
            take_payment(SqlUnitOfWork(engine), Payment(loan.id, paid, START, f"p{n}"))


def _lendstack(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "lendstack.cli.main", "--database", url, *args]


def test_closing_a_closed_date_again_changes_nothing(engine, catalog, database_url, tmp_path):
    build_book(engine, catalog, count=12)
    store = SqlCloseStore(engine)
    day = START + timedelta(days=32)  # past the first billing date
    close_through(store, day)
    before = dump(engine)
    assert close_day(store, day).skipped
    assert all(c.skipped for c in close_through(store, day))
    assert dump(engine) == before
    cli = subprocess.run(
        _lendstack(database_url, "cob", "run", "--date", day.isoformat()),
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert "already closed" in cli.stdout
    assert dump(engine) == before
    # The control: the next date does change the books.
    close_day(store, day + timedelta(days=1))
    assert dump(engine) != before


@pytest.fixture
def reference_url(database_url: str, engine: Engine, tmp_path: Path):
    """A separate empty database on the same backend as `database_url`."""
    if engine.dialect.name == "sqlite":
        yield f"sqlite:///{tmp_path / 'reference.db'}"
        return
    # PostgreSQL: a sibling schema on the same server, named after the fixture's own.
    current = _scalar(engine, "SELECT current_schema()")
    schema = f"ref_{current}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield database_url.replace(f"search_path%3D{current}", f"search_path%3D{schema}")
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _scalar(engine: Engine, sql: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text(sql)).scalar())


def _kill_rounds(
    url: str, through: date, rng: random.Random, rounds: int, longest: float
) -> list[tuple[int, date | None]]:
    """Start the close and SIGKILL it after a random delay, `rounds` times.

    Returns each run's exit code with the last closed date it left behind.
    """
    store = SqlCloseStore(make_engine(url))
    outcomes = []
    for _ in range(rounds):
        proc = subprocess.Popen(
            _lendstack(url, "cob", "run", "--through", through.isoformat()),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.0, longest))
        proc.send_signal(signal.SIGKILL)
        outcomes.append((proc.wait(), store.last_closed()))
    store.engine.dispose()
    return outcomes


@pytest.mark.slow
def test_a_close_killed_at_random_points_ends_with_the_uninterrupted_books(
    engine, catalog, database_url, reference_url
):
    through = THROUGH if engine.dialect.name == "sqlite" else PG_THROUGH
    # The reference: the same book closed in one uninterrupted run on its own database.
    reference = make_engine(reference_url)
    migrate(reference)
    build_book(reference, catalog)
    started = time.monotonic()
    close_through(SqlCloseStore(reference), through)
    close_seconds = time.monotonic() - started
    expected = fingerprint(reference)
    with reference.connect() as conn:
        assert reconcile(conn) == []
    reference.dispose()

    build_book(engine, catalog)
    rng = random.Random(3)
    # Interpreter start-up takes about a second; kill anywhere from start-up to the end.
    outcomes = _kill_rounds(database_url, through, rng, rounds=6, longest=1.0 + close_seconds)
    mid_close = [day for code, day in outcomes if code == -signal.SIGKILL and day != through]
    assert len(mid_close) >= 2, f"too few runs were killed part-way: {outcomes}"
    finish = subprocess.run(
        _lendstack(database_url, "cob", "run", "--through", through.isoformat()),
        capture_output=True,
        text=True,
        check=False,
    )
    assert finish.returncode == 0, finish.stderr
    assert SqlCloseStore(engine).last_closed() == through
    assert fingerprint(engine) == expected, f"killed runs: {outcomes}"
    with engine.connect() as conn:
        assert reconcile(conn) == []

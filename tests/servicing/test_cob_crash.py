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
from lendstack.storage.close_store import SqlCloseStore
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


def test_closing_a_closed_date_again_changes_nothing(engine, catalog, database_url):
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


def _startup_seconds(url: str) -> float:
    """How long the CLI takes to reach the database: imports, engine, schema check."""
    started = time.monotonic()
    done = subprocess.run(_lendstack(url, "ledger", "check"), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def _kill_rounds(
    url: str, through: date, rng: random.Random, rounds: int, close_seconds: float
) -> list[tuple[int, date | None]]:
    """Start the close and SIGKILL it, `rounds` times.

    Even rounds watch the database and kill just after the run has closed a date of its own:
    on a machine whose speed swings under load, a timed kill can land before every close or
    after the last, and this round still lands inside. The first round is one of these, so a
    timed round that overshoots cannot close every date before any kill lands part-way. Odd
    rounds kill after a random delay running from late in start-up into the part of the
    close still left (start-up and close times are measured on this machine, now, so a loaded
    machine stretches the window too).
    Returns each run's exit code with the last closed date it left behind.
    """
    # Warm, then measure: a fresh install compiles every module on its first run, and a kill
    # timed from that inflated start-up lands after later, faster runs have finished.
    startup = min(_startup_seconds(url) for _ in range(2))
    store = SqlCloseStore(make_engine(url))
    first = store.last_closed()
    total_days = (through - first).days if first else (through - START).days
    outcomes = []
    for n in range(rounds):
        last = store.last_closed()
        proc = subprocess.Popen(
            _lendstack(url, "cob", "run", "--through", through.isoformat()),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if n % 2 == 0:
            _wait_for_progress(proc, store, last, rng)
        else:
            # Aim inside the work still left: earlier rounds have closed some of the dates.
            left = 1.0 if last is None else max((through - last).days, 0) / max(total_days, 1)
            time.sleep(rng.uniform(0.7 * startup, startup + 0.8 * left * close_seconds))
        proc.send_signal(signal.SIGKILL)
        outcomes.append((proc.wait(), store.last_closed()))
    store.engine.dispose()
    return outcomes


def _wait_for_progress(
    proc: subprocess.Popen[bytes], store: SqlCloseStore, last: date | None, rng: random.Random
) -> None:
    """Until the run has closed a date past `last` (or exited), then a little longer."""
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if store.last_closed() != last:
            time.sleep(rng.uniform(0.0, 0.05))
            return
        time.sleep(0.01)


def _assert_killed_part_way(
    outcomes: list[tuple[int, date | None]], before: date | None, through: date
) -> None:
    """The rounds must include kills that stopped a close after it had closed some dates."""
    killed = [code == -signal.SIGKILL and day != through for code, day in outcomes]
    days = [before] + [day for _, day in outcomes]
    progressed = [k and days[n + 1] != days[n] for n, k in enumerate(killed)]
    assert any(progressed), f"no run was killed after it began closing dates: {outcomes}"


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
    outcomes = _kill_rounds(database_url, through, rng, rounds=5, close_seconds=close_seconds)
    _assert_killed_part_way(outcomes, None, through)
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


GENERATED_AS_OF = date(2026, 6, 30)


def _generate(url: str) -> None:
    for args in (
        ("init",),
        ("portfolio", "generate", "--loans", "2000", "--seed", "3"),
    ):
        extra = ("--as-of", GENERATED_AS_OF.isoformat()) if args[0] == "portfolio" else ()
        done = subprocess.run(
            _lendstack(url, *args, *extra), capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_generated_book_killed_mid_close_ends_with_the_uninterrupted_books(
    engine, database_url, reference_url
):
    """The same on a 2,000-loan generated book: longer statements, so kills land inside them.

    Forty dates keep the close long enough, even on an idle machine, for kills to land inside it.
    """
    through = GENERATED_AS_OF + timedelta(days=40)
    _generate(reference_url)
    reference = make_engine(reference_url)
    started = time.monotonic()
    close_through(SqlCloseStore(reference), through)
    close_seconds = time.monotonic() - started
    expected = fingerprint(reference)
    reference.dispose()

    _generate(database_url)
    outcomes = _kill_rounds(database_url, through, random.Random(7), 4, close_seconds)
    _assert_killed_part_way(outcomes, GENERATED_AS_OF, through)
    finish = subprocess.run(
        _lendstack(database_url, "cob", "run", "--through", through.isoformat()),
        capture_output=True,
        text=True,
        check=False,
    )
    assert finish.returncode == 0, finish.stderr
    assert fingerprint(engine) == expected, f"killed runs: {outcomes}"
    with engine.connect() as conn:
        assert reconcile(conn) == []

"""Packaging, valuing and selling NPLs against a real book: ledger, funders, ECL, bad input.

The book: co-funded (platform 30 %, big-state-bank 70 %) and own-book cash loans, booked so
that on 2026-09-10 one cohort is charged off (180 DPD), one is 次级 on book (128 DPD), one is
days from charge-off (178 DPD), plus a guaranteed loan (not a pilot loan) and a performing one.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, make_url, text

from backends import BACKENDS, PG_URL
from cli_runner import Run, runner
from lendstack.collections.npl_buyers import load_buyers
from lendstack.collections.npl_eligibility import pilot
from lendstack.core.errors import Conflict, NotFound, ValidationError
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan, take_payment
from lendstack.servicing.cob import close_through
from lendstack.servicing.services import reverse_payment
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.ecl_runs import ecl_inputs, run_ecl
from lendstack.storage.funding import SqlFunding
from lendstack.storage.npl_package import package_portfolio
from lendstack.storage.npl_sale import sell_portfolio
from lendstack.storage.reports import reconcile, trial_balance
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.settlements import SqlSettlements

# One worker builds the module's shared fixture (xdist would build it on each).
pytestmark = pytest.mark.xdist_group("npl-sale-book")

ASOF = date(2026, 9, 10)
OPEN = ASOF + timedelta(days=1)
BANK = "big-state-bank"
SHARES = {"platform": Decimal("0.3"), BANK: Decimal("0.7")}
CINDA = load_buyers().get("cinda")


@dataclass(frozen=True)
class Book:
    charged: tuple[int, ...]
    npl: tuple[int, ...]
    near: tuple[int, ...]
    guaranteed: int
    performing: int


def build(engine: Engine, catalog: ProductCatalog) -> Book:
    repo = SqlFunding(engine)
    repo.import_builtin()
    store = SqlCloseStore(engine)

    def book(day: date, amount: str, product: str = "cash-loan-installment", co: bool = True,
             rate: str = "0.18") -> int:  # fmt: skip
        req = LoanRequest(product, Decimal(amount), 12, Decimal(rate), day)
        lid = book_loan(SqlUnitOfWork(engine), catalog, req).id
        if co:
            repo.record_plan(engine, lid, SHARES)
        return lid

    close_through(store, date(2026, 1, 4))
    charged = (book(date(2026, 1, 5), "10000.01"), book(date(2026, 1, 5), "5000.00", co=False))
    close_through(store, date(2026, 2, 15))
    near = (book(date(2026, 2, 16), "7000.07"),)
    close_through(store, date(2026, 4, 4))
    npl = (book(date(2026, 4, 5), "8000.03"), book(date(2026, 4, 5), "3000.00", co=False))
    guaranteed = book(date(2026, 4, 5), "6000.00", "guaranteed-installment", rate="0.12")
    performing = book(date(2026, 4, 5), "2000.00", co=False)
    day = date(2026, 4, 5)
    for n in range(1, 6):  # the performing loan pays each installment on its due date
        close_through(store, day + timedelta(days=30 * n) - timedelta(days=1))
        pay(engine, performing, "400.00", day + timedelta(days=30 * n), f"perf-{n}")
    close_through(store, ASOF)
    return Book(charged, npl, near, guaranteed, performing)


def pay(engine: Engine, loan_id: int, amount: str, on: date, key: str) -> None:
    take_payment(SqlUnitOfWork(engine), Payment(loan_id, Decimal(amount), on, key))


def check(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(reconcile(conn))


def scalar(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar() or 0)


def package(engine: Engine, name: str, out: Path, day: date = ASOF) -> tuple[object, ...]:
    return package_portfolio(engine, name, day, pilot(), lambda p, s, c: (p, s, c))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Book]:
    """The book built once on SQLite (with its allowance posted); tests work on copies."""
    path = tmp_path_factory.mktemp("npl") / "book.db"
    eng = make_engine(f"sqlite:///{path}")
    migrate(eng)
    built = build(eng, ProductCatalog())
    run_ecl(eng, ASOF, ecl_inputs(), post=True)
    eng.dispose()
    return path, built


def _pg_admin(statement: str) -> None:
    """CREATE/DROP DATABASE, which cannot run inside a transaction."""
    assert PG_URL is not None
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(statement))
    admin.dispose()


def _pg_url(database: str) -> str:
    assert PG_URL is not None
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def pg_template() -> Iterator[tuple[str, Book]]:
    """The book built once on PostgreSQL, in a database of its own that each test copies
    (CREATE DATABASE … TEMPLATE): building it closes ~250 dates, ~12 s a test on PostgreSQL."""
    name = f"npl_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    eng = make_engine(_pg_url(name))
    migrate(eng)
    built = build(eng, ProductCatalog())
    run_ecl(eng, ASOF, ecl_inputs(), post=True)
    eng.dispose()  # a template may have no open connections
    yield name, built
    _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The test's own copy of the book: the SQLite file is copied in by `book_`; on
    PostgreSQL the test gets a new database made from the template."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    source, _ = request.getfixturevalue("pg_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    yield _pg_url(name)
    _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def book_(engine: Engine, database_url: str, request: pytest.FixtureRequest) -> Book:
    """The book in the test's database: the PostgreSQL copy holds it already; on SQLite the
    template file is copied over the test's (still empty) database."""
    if engine.dialect.name != "sqlite":
        return request.getfixturevalue("pg_template")[1]  # type: ignore[no-any-return]
    template: tuple[Path, Book] = request.getfixturevalue("template")
    engine.dispose()
    shutil.copy(template[0], database_url.removeprefix("sqlite:///"))
    return template[1]


# --- one scenario on every backend ---------------------------------------------------------


def test_package_value_sell_end_to_end(engine: Engine, book_: Book, tmp_path: Path) -> None:
    run_ecl(engine, ASOF, ecl_inputs(), post=True)
    _portfolio, chosen, columns = package(engine, "q3", tmp_path)
    ids = set(columns["loan_id"])  # type: ignore[index]
    assert ids == {*book_.charged, *book_.npl, *book_.near}
    assert any("secured" in r for r in chosen.excluded)  # type: ignore[attr-defined]
    allowance = scalar(
        engine,
        "SELECT SUM(ecl_fen) FROM ecl_run_loans WHERE loan_id IN (SELECT loan_id FROM"
        " npl_portfolio_loans)",
    )
    assert allowance > 0
    bank_positions = scalar(
        engine,
        "SELECT SUM(principal_fen) FROM funder_positions WHERE funder_id = :b AND loan_id IN"
        " (SELECT loan_id FROM npl_portfolio_loans)",
        b=BANK,
    )
    result = sell_portfolio(engine, "q3", CINDA, Decimal("1234.57"), OPEN)
    assert sum(result.proceeds.values()) == 123457
    assert result.totals.allowance == allowance
    assert check(engine) == []
    # the loans are off the books, marked sold and flagged no-resale
    assert scalar(engine, "SELECT COUNT(*) FROM loans WHERE status = 'sold'") == len(ids)
    assert scalar(engine, "SELECT SUM(bal_principal + bal_interest) FROM loans WHERE"
                  " status = 'sold'") == 0  # fmt: skip
    assert scalar(engine, "SELECT COUNT(*) FROM npl_sold_loans WHERE no_resale = TRUE") == len(ids)
    # the bank's positions were written off and it is owed its share of the proceeds
    bank_sale = scalar(engine, "SELECT SUM(amount_fen) FROM funder_flows WHERE flow = 'sale'"
                       " AND funder_id = :b", b=BANK)  # fmt: skip
    written = scalar(engine, "SELECT SUM(amount_fen) FROM funder_flows WHERE flow ="
                     " 'charge_off' AND funder_id = :b AND source LIKE 'npl-sale:%'", b=BANK)  # fmt: skip
    assert written == bank_positions
    assert bank_sale == result.proceeds[BANK]
    # close the sale date: the funder GL is posted, the settlement file shows the proceeds
    close_through(SqlCloseStore(engine), OPEN)
    assert check(engine) == []
    statement = SqlSettlements(engine).statement(OPEN, BANK)
    assert statement.totals.amount("sale") == bank_sale
    csv_text = statement.csv_bytes().decode()
    assert "sale" in csv_text.splitlines()[0]
    assert f"{bank_sale // 100}.{bank_sale % 100:02d}" in csv_text


def test_charge_off_and_recoveries_are_split_between_funders_to_the_fen(
    engine: Engine, book_: Book
) -> None:
    loan_id = book_.charged[0]
    written = {
        f: scalar(engine, "SELECT SUM(amount_fen) FROM funder_flows WHERE loan_id = :l AND"
                  " funder_id = :f AND flow = 'charge_off'", l=loan_id, f=f)
        for f in SHARES
    }  # fmt: skip
    disbursed = {
        f: scalar(engine, "SELECT SUM(amount_fen) FROM funder_flows WHERE loan_id = :l AND"
                  " funder_id = :f AND flow = 'disbursement'", l=loan_id, f=f)
        for f in SHARES
    }  # fmt: skip
    assert written == disbursed  # no principal was ever repaid: each wrote off all it lent
    pay(engine, loan_id, "333.33", OPEN, "recovery-split")
    parts = {
        f: scalar(engine, "SELECT SUM(amount_fen) FROM funder_flows WHERE loan_id = :l AND"
                  " funder_id = :f AND flow = 'recovery'", l=loan_id, f=f)
        for f in SHARES
    }  # fmt: skip
    assert sum(parts.values()) == 33333
    assert parts[BANK] in (23333, 23334)  # 70 % of 333.33, to the fen
    assert check(engine) == []


def test_payments_on_a_sold_loan_are_refused(engine: Engine, book_: Book, tmp_path: Path) -> None:
    package(engine, "q3", tmp_path)
    sell_portfolio(engine, "q3", CINDA, Decimal("100.00"), OPEN)
    with pytest.raises(Conflict) as refused:
        pay(engine, book_.charged[0], "50.00", OPEN, "after-sale")
    assert "sold" in str(refused.value)
    assert check(engine) == []


def test_a_payment_on_a_sold_loan_cannot_be_reversed(
    engine: Engine, book_: Book, tmp_path: Path
) -> None:
    pay(engine, book_.charged[0], "50.00", OPEN, "recovery-before-sale")
    with engine.connect() as conn:
        payment_id = conn.execute(text("SELECT MAX(id) FROM payments")).scalar()
    package(engine, "q3", tmp_path, OPEN)
    sell_portfolio(engine, "q3", CINDA, Decimal("100.00"), OPEN)
    with pytest.raises(Conflict) as refused:
        reverse_payment(SqlUnitOfWork(engine), int(payment_id or 0), OPEN)
    assert refused.value.field == "payment_id"
    assert "was sold" in str(refused.value)
    assert check(engine) == []


def test_a_second_sale_and_a_resale_are_rejected(
    engine: Engine, book_: Book, tmp_path: Path
) -> None:
    package(engine, "q3", tmp_path)
    sell_portfolio(engine, "q3", CINDA, Decimal("100.00"), OPEN)
    with pytest.raises(Conflict):
        sell_portfolio(engine, "q3", CINDA, Decimal("100.00"), OPEN)
    with pytest.raises(ValidationError) as again:
        package(engine, "q3-again", tmp_path, OPEN)
    assert again.value.field == "criteria"
    assert "already sold" not in str(again.value) or "sold" in str(again.value)


def test_a_loan_that_cured_since_packaging_blocks_the_sale_and_nothing_is_written(
    engine: Engine, book_: Book, tmp_path: Path
) -> None:
    package(engine, "q3", tmp_path)
    pay(engine, book_.npl[1], "5000.00", OPEN, "cure")  # every billed due, and some credit
    close_through(SqlCloseStore(engine), OPEN)  # the close finds it current again
    entries = scalar(engine, "SELECT COUNT(*) FROM journal_entries")
    with pytest.raises(ValidationError) as bad:
        sell_portfolio(engine, "q3", CINDA, Decimal("100.00"), OPEN + timedelta(days=1))
    assert bad.value.field == "loans"
    assert f"loan {book_.npl[1]} is now normal" in str(bad.value)
    assert scalar(engine, "SELECT COUNT(*) FROM journal_entries") == entries
    assert scalar(engine, "SELECT COUNT(*) FROM npl_sales") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM loans WHERE status = 'sold'") == 0


def test_sale_dates_and_names_are_checked(engine: Engine, book_: Book, tmp_path: Path) -> None:
    package(engine, "q3", tmp_path)
    with pytest.raises(Conflict) as closed:
        sell_portfolio(engine, "q3", CINDA, Decimal("1.00"), ASOF)
    assert closed.value.field == "date"
    with pytest.raises(NotFound):
        sell_portfolio(engine, "nope", CINDA, Decimal("1.00"), OPEN)
    with pytest.raises(ValidationError) as negative:
        sell_portfolio(engine, "q3", CINDA, Decimal("-1.00"), OPEN)
    assert negative.value.field == "price"
    with pytest.raises(Conflict) as clash:
        package(engine, "q3", tmp_path)
    assert clash.value.field == "name"


# --- the ledger stays balanced after any sequence --------------------------------------------


ops = st.lists(
    st.one_of(
        st.tuples(st.just("close"), st.integers(1, 3)),
        st.tuples(st.just("recover"), st.integers(0, 2), st.integers(1, 800_000)),
        st.tuples(st.just("sell"), st.integers(0, 5_000_000)),
        st.tuples(st.just("ecl"), st.just(0)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops)
@example(steps=[("close", 3), ("recover", 0, 50_000), ("sell", 100_000), ("close", 1),
                ("ecl", 0), ("recover", 1, 700)])  # fmt: skip
@example(steps=[("recover", 2, 12_345), ("sell", 0), ("close", 2), ("ecl", 0)])
def test_ledger_balances_after_any_charge_off_recovery_and_sale_sequence(
    template: tuple[Path, Book],
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[object, ...]],
) -> None:
    path = tmp_path_factory.mktemp("run") / "book.db"
    shutil.copy(template[0], path)
    eng = make_engine(f"sqlite:///{path}")
    day, sold = ASOF, 0
    for n, step in enumerate(steps):
        day, sold = _step(eng, step, day, sold, n)
        assert check(eng) == [], step
    with eng.connect() as conn:
        assert trial_balance(conn).balanced
        stored = conn.execute(text("SELECT COUNT(*) FROM npl_sales")).scalar()
    assert stored == sold
    eng.dispose()


def _step(eng: Engine, step: tuple[object, ...], day: date, sold: int, n: int) -> tuple[date, int]:
    kind = step[0]
    if kind == "close":
        day += timedelta(days=int(step[1]))  # type: ignore[call-overload]
        close_through(SqlCloseStore(eng), day)
    elif kind == "ecl":
        run_ecl(eng, day, ecl_inputs(), post=True)
    elif kind == "recover":
        ids = [r[0] for r in eng.connect().execute(
            text("SELECT id FROM loans WHERE status = 'charged_off' ORDER BY id"))]  # fmt: skip
        if ids:
            lid = ids[int(step[1]) % len(ids)]  # type: ignore[call-overload]
            amount = Decimal(int(step[2])) / 100  # type: ignore[call-overload]
            pay(eng, lid, str(amount), day + timedelta(days=1), f"rec-{n}-{lid}")
    elif kind == "sell":
        try:
            package_portfolio(eng, f"p{n}", day + timedelta(days=1), pilot(),
                              lambda p, s, c: p)  # fmt: skip
        except ValidationError:  # nothing eligible left
            return day, sold
        price = Decimal(int(step[1])) / 100  # type: ignore[call-overload]
        sell_portfolio(eng, f"p{n}", CINDA, price, day + timedelta(days=1))
        sold += 1
    return day, sold


# --- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli_book(
    database_url: str, book_: Book, capsys: pytest.CaptureFixture[str]
) -> tuple[Run, Book]:
    return runner(database_url, capsys), book_


def test_cli_package_value_sell_and_ledger_check(
    cli_book: tuple[Run, Book], engine: Engine, tmp_path: Path
) -> None:
    cli, _ = cli_book
    done = cli("npl", "package", "--date", ASOF.isoformat(), "--name", "q3", "--out",
               str(tmp_path), "--format", "json")  # fmt: skip
    assert done.exit_code == 0, done.output
    body = done.json()
    assert body["portfolio"]["loans"] == 5
    missing = {m["field"] for m in body["completeness"]["missing"]}
    assert "age_band" in missing
    assert "region" in missing
    table = pq.read_table(tmp_path / "q3.tape.parquet")
    assert table.num_rows == 5
    assert str(table.schema.field("principal").type) == "decimal128(18, 2)"
    csv_rows = (tmp_path / "q3.tape.csv").read_text().splitlines()
    assert len(csv_rows) == 6
    valued = cli("npl", "value", "q3", "--irr", "0.15", "--haircut", "0.1", "--format", "json")
    assert valued.exit_code == 0, valued.output
    v = valued.json()
    for key in ("price", "price_pct_principal_interest", "price_pct_principal", "sensitivity"):
        assert key in v
    assert v["irr_check"]["ok"] is True
    assert "prior" in {c["source"] for c in v["curves"]}
    sold = cli("npl", "sell", "q3", "--buyer", "orient", "--price", v["price"], "--date",
               OPEN.isoformat(), "--format", "json")  # fmt: skip
    assert sold.exit_code == 0, sold.output
    assert sum(Decimal(x) for x in sold.json()["proceeds_by_funder"].values()) == Decimal(
        v["price"]
    )
    assert cli("ledger", "check").exit_code == 0
    assert cli("npl", "buyers", "--format", "json").json()["illustrative"] is True


@pytest.mark.parametrize(
    ("args", "code", "field"),
    [
        (("sell", "q3", "--buyer", "cinda", "--price", "-5", "--date", OPEN.isoformat()), 2,
         "price"),
        (("sell", "q3", "--buyer", "blackstone", "--price", "5", "--date", OPEN.isoformat()), 3,
         "buyer"),
        (("sell", "zz", "--buyer", "cinda", "--price", "5", "--date", OPEN.isoformat()), 3,
         "name"),
        (("sell", "q3", "--buyer", "cinda", "--price", "5.001", "--date", OPEN.isoformat()), 2,
         "price"),
        (("sell", "q3", "--buyer", "cinda", "--price", "5", "--date", ASOF.isoformat()), 4,
         "date"),
        (("package", "--date", ASOF.isoformat(), "--name", "q3"), 4, "name"),
        (("package", "--date", "2026-13-01", "--name", "x"), 2, "date"),
        (("package", "--date", "2026-01-01", "--name", "x"), 4, "date"),
        (("value", "q3", "--irr", "abc"), 2, "irr"),
        (("value", "zz", "--irr", "0.15"), 3, "name"),
    ],
)  # fmt: skip
def test_cli_bad_input_names_the_field_and_writes_nothing(
    cli_book: tuple[Run, Book], engine: Engine, tmp_path: Path, args: tuple[str, ...], code: int,
    field: str,
) -> None:  # fmt: skip
    cli, _ = cli_book
    assert cli("npl", "package", "--date", ASOF.isoformat(), "--name", "q3", "--out",
               str(tmp_path)).exit_code == 0  # fmt: skip
    before = _counts(engine)
    done = cli("npl", *args)
    assert done.exit_code == code, done.output
    assert f"{field}:" in done.output
    assert _counts(engine) == before


def test_cli_refuses_a_buyer_that_is_not_an_amc(
    cli_book: tuple[Run, Book], engine: Engine, tmp_path: Path
) -> None:
    cli, _ = cli_book
    cli("npl", "package", "--date", ASOF.isoformat(), "--name", "q3", "--out", str(tmp_path))
    buyers = tmp_path / "b.toml"
    buyers.write_text('[[buyer]]\nid = "fund"\nname = "Fund"\nkind = "other"\n')
    before = _counts(engine)
    done = cli("npl", "sell", "q3", "--buyer", "fund", "--price", "5", "--date",
               OPEN.isoformat(), "--buyers", str(buyers))  # fmt: skip
    assert done.exit_code == 2
    assert "buyer:" in done.output
    assert _counts(engine) == before


def _counts(engine: Engine) -> tuple[int, ...]:
    tables = ("journal_entries", "funder_flows", "npl_sales", "npl_sold_loans", "npl_portfolios")
    return tuple(scalar(engine, f"SELECT COUNT(*) FROM {t}") for t in tables)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_sale_between_two_closes_of_a_carrying_store_keeps_its_accrual_right(
    engine: Engine, book_: Book, tmp_path: Path
) -> None:
    """The simulator's close carries each day's accrual sums forward by the rows marked
    `accrual_dirty` since, and writes every loan's accrual only at month-ends, when the run
    reads raw balances, as a sale does. A sale on the day after a month-end takes its loans
    off the accrual, so it marks them: the next month-end, which sums the book anyway and
    checks the carried sums against it, finds them right, and the books tie."""
    run_ecl(engine, ASOF, ecl_inputs(), post=True)
    package(engine, "q3", tmp_path)
    with SqlCloseStore(engine, defer_accrual=True, read_aside=True) as store:
        close_through(store, date(2026, 9, 30))
        sell_portfolio(engine, "q3", CINDA, Decimal("100.00"), date(2026, 10, 1))
        close_through(store, date(2026, 10, 31))
    assert scalar(engine, "SELECT COUNT(*) FROM loans WHERE status = 'sold'") > 0
    assert scalar(engine, "SELECT COUNT(*) FROM loans WHERE accrual_dirty") == 0
    assert check(engine) == []

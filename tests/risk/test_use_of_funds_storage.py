"""SqlUseOfFunds over a real database: ingest, idempotency, bad rows, flags, alerts, penalty.

Runs on SQLite and, when LENDSTACK_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from lendstack.core.errors import Conflict, NotFound
from lendstack.risk.surveillance import MerchantCategory, Transaction, default_pack, load_pack
from lendstack.servicing import LoanRequest, LoanState, ProductCatalog, book_loan
from lendstack.storage import schema
from lendstack.storage.alerts import SqlAlerts
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.use_of_funds import SqlUseOfFunds
from risk.monitoring_book import DAY

PACK = default_pack()  # 90 days; markup 0.50; cap 0.24


@pytest.fixture
def loan(engine: Engine, catalog: ProductCatalog) -> LoanState:
    request = LoanRequest("cash-loan-installment", Decimal("12000"), 12, None, DAY)
    return book_loan(SqlUnitOfWork(engine), catalog, request)


def tx(tid: str, loan_id: int, days: int, category: str, amount: str = "800.00") -> Transaction:
    at = datetime(DAY.year, DAY.month, DAY.day, 9, tzinfo=UTC) + timedelta(days=days)
    return Transaction(tid, loan_id, at, Decimal(amount), MerchantCategory(category))


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_ingest_flags_the_loan_and_raises_one_alert(engine: Engine, loan: LoanState) -> None:
    store = SqlUseOfFunds(engine, PACK)
    feed = [tx("t1", loan.id, 1, "consumption"), tx("t2", loan.id, 5, "gold_trading", "3000.00")]
    done = store.ingest(feed, "file", [2, 3])
    assert (done.inserted, done.duplicates) == (2, 0)
    (flag,) = done.flags
    assert (flag.loan_id, flag.transaction_id, flag.days_after) == (loan.id, "t2", 5)
    assert flag.amount == Decimal("3000.00")
    with engine.connect() as conn:
        fen = conn.execute(
            select(schema.funds_transactions.c.amount_fen).where(
                schema.funds_transactions.c.transaction_id == "t2"
            )
        ).scalar_one()
    assert fen == 300000
    (alert,) = SqlAlerts(engine).list()
    assert alert.id == f"funds_misuse:{(DAY + timedelta(days=5)).isoformat()}:loan-{loan.id}"
    assert alert.severity == "critical"
    assert alert.alert["loan_ids"] == [loan.id]


def test_the_same_feed_again_stores_nothing(engine: Engine, loan: LoanState) -> None:
    store = SqlUseOfFunds(engine, PACK)
    feed = [tx("t1", loan.id, 5, "fx")]
    store.ingest(feed, "file")
    again = store.ingest(feed, "file")
    assert (again.inserted, again.duplicates, again.flags) == (1 - 1, 1, ())
    assert again.alerts.new == ()
    assert count(engine, schema.funds_transactions) == 1
    assert count(engine, schema.funds_misuse_flags) == 1


def test_a_reused_id_with_other_content_conflicts_and_writes_nothing(
    engine: Engine, loan: LoanState
) -> None:
    store = SqlUseOfFunds(engine, PACK)
    store.ingest([tx("t1", loan.id, 1, "consumption")], "file")
    batch = [tx("t9", loan.id, 2, "fx"), tx("t1", loan.id, 1, "consumption", "1.00")]
    with pytest.raises(Conflict) as err:
        store.ingest(batch, "file", [2, 3])
    assert err.value.field == "row 3: transaction_id"
    assert count(engine, schema.funds_transactions) == 1  # t9 was not written
    assert count(engine, schema.funds_misuse_flags) == 0


def test_an_unknown_loan_fails_the_whole_batch(engine: Engine, loan: LoanState) -> None:
    store = SqlUseOfFunds(engine, PACK)
    with pytest.raises(NotFound) as err:
        store.ingest([tx("a", loan.id, 1, "fx"), tx("b", 999, 1, "fx")], "api", ["x[0]", "x[1]"])
    assert err.value.field == "x[1].loan_id"
    assert count(engine, schema.funds_transactions) == 0
    assert count(engine, schema.funds_misuse_flags) == 0


def test_outside_the_window_is_not_flagged_until_a_wider_pack_scans(
    engine: Engine, loan: LoanState
) -> None:
    store = SqlUseOfFunds(engine, PACK)
    assert store.ingest([tx("late", loan.id, 120, "lottery")], "file").flags == ()
    wider = load_pack(
        "\n".join(
            [
                'id = "wide"', 'version = "2"', "window_days = 180", 'min_amount = "0.01"',
                'forbidden = ["lottery"]', 'misuse_markup = "1.00"', 'penalty_rate_cap = "0.36"',
                'severity = "warn"',
            ]
        )
    )  # fmt: skip
    scanned = SqlUseOfFunds(engine, wider).scan()
    assert [f.loan_id for f in scanned.flags] == [loan.id]
    assert len(scanned.alerts.new) == 1


DOUBLE = """
id = "double"
version = "1"
window_days = 90
min_amount = "0.01"
forbidden = ["securities_brokerage"]
misuse_markup = "1.00"
penalty_rate_cap = "0.24"
severity = "critical"
"""


def test_misuse_penalty_is_applied_once_and_exactly(engine: Engine, loan: LoanState) -> None:
    store = SqlUseOfFunds(engine, load_pack(DOUBLE))
    with pytest.raises(NotFound):
        store.penalty(loan.id)  # not flagged yet
    store.ingest([tx("t", loan.id, 3, "securities_brokerage")], "file")
    contract = loan.contract.annual_rate
    expected = min(contract + contract, Decimal("0.24"))
    assert expected > loan.contract.penalty_rate  # the overdue rate is contract × 1.5
    penalty, changed = store.apply_penalty(loan.id)
    assert changed
    assert penalty.applied_rate == expected
    with engine.connect() as conn:
        e8 = conn.execute(
            select(schema.loans.c.penalty_rate_e8).where(schema.loans.c.id == loan.id)
        ).scalar_one()
    assert Decimal(e8) / 10**8 == expected
    assert store.apply_penalty(loan.id)[1] is False  # idempotent
    (row,) = store.flag_rows()
    assert Decimal(row["penalty_rate"]) == expected
    assert "borrower_key" not in row
    reloaded = SqlUnitOfWork(engine)
    with reloaded:
        assert reloaded.loans.get(loan.id).contract.penalty_rate == expected


def test_the_default_markup_never_lowers_a_higher_overdue_rate(
    engine: Engine, loan: LoanState
) -> None:
    store = SqlUseOfFunds(engine, PACK)  # +50 %: equal to this product's overdue × 1.5
    store.ingest([tx("t", loan.id, 3, "fx")], "file")
    penalty, changed = store.apply_penalty(loan.id)
    assert penalty.applied_rate == min(loan.contract.annual_rate * Decimal("1.5"), Decimal("0.24"))
    assert changed is (penalty.applied_rate > loan.contract.penalty_rate)

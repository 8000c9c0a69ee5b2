"""Write-off (核销) by the product's policy: a charged-off loan is written off by close of
business exactly `write_off_days` after its charge-off, each funder's loss having been booked
at the charge-off; recoveries on it still post, and the books tie throughout.

Runs on SQLite and, when LENDSTACK_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from lendstack.core.errors import ValidationError
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan, take_payment
from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.products import load_product
from lendstack.servicing.services import get_loan
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import SqlFunding
from lendstack.storage.reports import reconcile
from lendstack.storage.repositories import SqlUnitOfWork

BOOKED = date(2026, 1, 5)
QUICK = """
id = "quick-write-off"
name = "Quick charge-off and write-off (test)"
method = "equal-installment"
terms_allowed = [6]
rate_min = 0.1
rate_max = 0.24
amount_min = 100
amount_max = 100000
day_count = "ACT/365F"
rounding = "half-up"
grace_days = 0
penalty_multiplier = 1.5
non_accrual_dpd = 20
charge_off_dpd = 30
write_off_days = 10
"""


@pytest.fixture
def catalog(tmp_path: Path) -> ProductCatalog:
    (tmp_path / "quick.toml").write_text(QUICK, encoding="utf-8")
    return ProductCatalog(tmp_path)


def status_events(engine: Engine, loan_id: int) -> list[tuple[date, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT business_date, new FROM loan_events WHERE loan_id = :l AND kind = 'status'"
                " ORDER BY business_date"
            ),
            {"l": loan_id},
        ).all()
    return [(r[0] if isinstance(r[0], date) else date.fromisoformat(r[0]), r[1]) for r in rows]


def test_a_charged_off_loan_is_written_off_on_its_policy_day_and_still_recovers(
    engine: Engine, catalog: ProductCatalog
) -> None:
    request = LoanRequest("quick-write-off", Decimal("6000.00"), 6, Decimal("0.18"), BOOKED)
    loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
    SqlFunding(engine).import_builtin()
    SqlFunding(engine).record_plan(
        engine, loan_id, {"platform": Decimal("0.3"), "harbour-joint-stock": Decimal("0.7")}
    )
    store = SqlCloseStore(engine)
    day = BOOKED
    while get_loan(SqlUnitOfWork(engine), loan_id).status == "active":
        day += timedelta(days=1)
        close_through(store, day)
    (charged_on, status), *_ = status_events(engine, loan_id)
    assert (charged_on, status) == (day, "charged_off")
    close_through(store, charged_on + timedelta(days=9))
    assert get_loan(SqlUnitOfWork(engine), loan_id).status == "charged_off"  # not a day early
    close_through(store, charged_on + timedelta(days=10))
    assert get_loan(SqlUnitOfWork(engine), loan_id).status == "written_off"
    assert status_events(engine, loan_id) == [
        (charged_on, "charged_off"),
        (charged_on + timedelta(days=10), "written_off"),
    ]
    recovered_on = charged_on + timedelta(days=11)
    paid = take_payment(
        SqlUnitOfWork(engine), Payment(loan_id, Decimal("500.00"), recovered_on, "r")
    )
    assert paid.applied.recovery == Decimal("500.00")
    close_through(store, recovered_on)
    with engine.connect() as conn:
        assert list(reconcile(conn)) == []


def test_a_write_off_policy_must_be_at_least_a_day(tmp_path: Path) -> None:
    path = tmp_path / "zero.toml"
    path.write_text(QUICK.replace("write_off_days = 10", "write_off_days = 0"), encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_product(path)
    assert err.value.field == "write_off_days"

"""Negotiated settlements: a loan closed for less than its payoff, booked exactly.

The loans are booked and aged by the real services and close of business; each settlement is
checked against the payoff quote, the forgiveness order, the funders' positions and the whole
ledger reconciliation. Runs on SQLite and, when LENDSTACK_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text

from cli_runner import Run
from lendstack.core.errors import Conflict, ValidationError
from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.ledger import Account
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.domain.settlement import settlement_payoff
from lendstack.servicing.services import (
    LoanRequest,
    book_loan,
    get_loan,
    reverse_payment,
)
from lendstack.servicing.settle import Settlement, settle_loan
from lendstack.storage.calendar import last_closed
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import SqlFunding
from lendstack.storage.reports import reconcile, trial_balance
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.schema import funder_flows, funder_positions, loan_settlements, payments

BANK = "harbour-joint-stock"


def open_date(engine: Engine) -> date:
    with engine.connect() as conn:
        last = last_closed(conn)
    return date(2026, 1, 5) if last is None else last + timedelta(days=1)


def delinquent_loan(
    engine: Engine, catalog: ProductCatalog, days: int, shares: bool = False
) -> int:
    """A 12-month cash loan booked on the open date, never paid, closed `days` later."""
    booked = open_date(engine)
    request = LoanRequest("cash-loan-installment", Decimal("12000.00"), 12, Decimal("0.18"), booked)
    loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
    if shares:
        SqlFunding(engine).import_builtin()
        SqlFunding(engine).record_plan(
            engine, loan_id, {"platform": Decimal("0.3"), BANK: Decimal("0.7")}
        )
    close_through(SqlCloseStore(engine), booked + timedelta(days=days))
    return loan_id


def payoff(engine: Engine, loan_id: int) -> Decimal:
    return settlement_payoff(get_loan(SqlUnitOfWork(engine), loan_id), open_date(engine)).total


def tied(engine: Engine) -> list[object]:
    close_through(SqlCloseStore(engine), open_date(engine))
    with engine.connect() as conn:
        return list(reconcile(conn))


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.integers(min_value=35, max_value=200), share=st.integers(min_value=51, max_value=99))
def test_a_settlement_closes_the_loan_forgives_in_order_and_the_books_tie(
    engine: Engine, catalog: ProductCatalog, days: int, share: int
) -> None:
    loan_id = delinquent_loan(engine, catalog, days)
    owed = payoff(engine, loan_id)
    amount = (owed * share / 100).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    settled = settle_loan(
        SqlUnitOfWork(engine), Settlement(loan_id, amount, open_date(engine), f"s-{loan_id}")
    )
    w, paid = settled.waived, settled.payment.applied
    assert settled.payoff == owed
    assert w.total == owed - amount
    assert paid.penalty + paid.interest + paid.fee + paid.principal == amount
    # forgiveness order: penalty, interest, fee, principal
    if w.interest:
        assert paid.penalty == 0
    if w.fee:
        assert paid.penalty == paid.interest == 0
    if w.principal:
        assert paid.penalty == paid.interest == paid.fee == 0
    assert get_loan(SqlUnitOfWork(engine), loan_id).status == "paid_off"
    assert tied(engine) == []


def test_a_co_funded_settlement_writes_each_funders_remaining_position_off(
    engine: Engine, catalog: ProductCatalog
) -> None:
    loan_id = delinquent_loan(engine, catalog, 100, shares=True)
    owed = payoff(engine, loan_id)
    amount = (owed * Decimal("0.55")).quantize(Decimal("0.01"))
    settled = settle_loan(
        SqlUnitOfWork(engine), Settlement(loan_id, amount, open_date(engine), "co-1")
    )
    assert settled.waived.principal > 0
    with engine.connect() as conn:
        left = conn.execute(
            select(func.sum(funder_positions.c.principal_fen)).where(
                funder_positions.c.loan_id == loan_id
            )
        ).scalar_one()
        waived = conn.execute(
            select(func.sum(funder_flows.c.amount_fen)).where(
                funder_flows.c.loan_id == loan_id, funder_flows.c.flow == "waiver"
            )
        ).scalar_one()
    assert left == 0
    assert waived == int(settled.waived.principal * 100)
    assert tied(engine) == []


def test_on_a_non_accrual_loan_only_the_principal_forgiven_costs_pl(
    engine: Engine, catalog: ProductCatalog
) -> None:
    loan_id = delinquent_loan(engine, catalog, 130)  # 90+ DPD: non-accrual
    assert get_loan(SqlUnitOfWork(engine), loan_id).non_accrual
    owed = payoff(engine, loan_id)
    amount = (owed * Decimal("0.60")).quantize(Decimal("0.01"))
    settled = settle_loan(
        SqlUnitOfWork(engine), Settlement(loan_id, amount, open_date(engine), "na-1")
    )
    with engine.connect() as conn:
        discount = trial_balance(conn).balance(Account.SETTLEMENT_DISCOUNT)
    assert discount == settled.waived.principal
    assert tied(engine) == []


def test_a_repeated_key_has_no_second_effect_and_a_changed_body_conflicts(
    engine: Engine, catalog: ProductCatalog
) -> None:
    loan_id = delinquent_loan(engine, catalog, 60)
    on = open_date(engine)
    amount = (payoff(engine, loan_id) * Decimal("0.8")).quantize(Decimal("0.01"))
    first = settle_loan(SqlUnitOfWork(engine), Settlement(loan_id, amount, on, "k"))
    again = settle_loan(SqlUnitOfWork(engine), Settlement(loan_id, amount, on, "k"))
    assert again.replayed
    assert (again.payment.id, again.waived, again.payoff) == (
        first.payment.id,
        first.waived,
        first.payoff,
    )
    with pytest.raises(Conflict, match="idempotency"):
        settle_loan(SqlUnitOfWork(engine), Settlement(loan_id, amount - 1, on, "k"))
    assert count(engine, loan_settlements) == 1


def test_bad_settlements_are_refused_naming_the_field_and_write_nothing(
    engine: Engine, catalog: ProductCatalog
) -> None:
    loan_id = delinquent_loan(engine, catalog, 60)
    on, owed = open_date(engine), payoff(engine, loan_id)
    before = count(engine, payments), count(engine, loan_settlements)
    cases = [
        (owed, "no discount"),
        (owed + 1, "no discount"),
        ((owed * Decimal("0.4")).quantize(Decimal("0.01")), "forgives more than"),
        (Decimal("0.001"), "more precise"),
    ]
    for amount, message in cases:
        with pytest.raises(ValidationError, match=message) as err:
            settle_loan(SqlUnitOfWork(engine), Settlement(loan_id, amount, on, f"bad-{amount}"))
        assert err.value.field == "amount"
    with pytest.raises(Conflict):  # not the open business date
        settle_loan(
            SqlUnitOfWork(engine), Settlement(loan_id, owed / 2, on - timedelta(days=1), "x")
        )
    assert (count(engine, payments), count(engine, loan_settlements)) == before
    done = settle_loan(
        SqlUnitOfWork(engine),
        Settlement(loan_id, (owed * Decimal("0.9")).quantize(Decimal("0.01")), on, "ok"),
    )
    with pytest.raises(Conflict, match="paid_off"):  # a closed loan settles no more
        settle_loan(SqlUnitOfWork(engine), Settlement(loan_id, Decimal("10.00"), on, "again"))
    with pytest.raises(Conflict, match="cannot be reversed"):
        reverse_payment(SqlUnitOfWork(engine), done.payment.id, on)


def test_the_cli_settles_and_names_a_bad_amount(
    engine: Engine, catalog: ProductCatalog, cli: Run
) -> None:
    loan_id = delinquent_loan(engine, catalog, 60)
    on, owed = open_date(engine), payoff(engine, loan_id)
    bad = cli("collections", "settle", str(loan_id), "--amount", str(owed), "--date",
              on.isoformat(), "--idempotency-key", "c-1")  # fmt: skip
    assert bad.exit_code == 2
    assert "amount" in bad.output
    amount = (owed * Decimal("0.75")).quantize(Decimal("0.01"))
    ok = cli("collections", "settle", str(loan_id), "--amount", str(amount), "--date",
             on.isoformat(), "--idempotency-key", "c-1", "--format", "json")  # fmt: skip
    assert ok.exit_code == 0, ok.output
    body = ok.json()
    assert Decimal(body["waived_total"]) == owed - amount
    assert Decimal(body["payment"]["amount"]) == amount
    with engine.connect() as conn:
        kind = conn.execute(text("SELECT kind FROM payments WHERE loan_id = :l"), {"l": loan_id})
        assert [r[0] for r in kind] == ["settlement"]

"""Funder sub-ledgers on SQLite and PostgreSQL: splits with the payment, the close's GL entry,
reconciliation, guarantee payouts and buybacks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, text

from lendstack.core.errors import Conflict, NotFound
from lendstack.core.money import from_fen
from lendstack.funding import Funder, builtin_partners
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan, take_payment
from lendstack.servicing.cob import close_through
from lendstack.servicing.services import reverse_payment
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import SqlFunding
from lendstack.storage.reports import reconcile, trial_balance
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.schema import funder_flows, funder_positions
from lendstack.storage.subledger import guarantee_paid

BOOKED = date(2026, 3, 2)
BANK = "harbour-joint-stock"  # 3.4 % yield, first-loss guarantee at 90 DPD
SHARES = {"platform": Decimal("0.3"), BANK: Decimal("0.7")}


def sample(funder_id: str) -> Funder:
    return next(f for f in builtin_partners() if f.id == funder_id)


@pytest.fixture
def repo(engine: Engine) -> SqlFunding:
    repo = SqlFunding(engine)
    repo.import_builtin()
    return repo


def book(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding, amount: str = "10000.01"
) -> int:
    request = LoanRequest("cash-loan-installment", Decimal(amount), 12, Decimal("0.18"), BOOKED)
    loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
    repo.record_plan(engine, loan_id, SHARES)
    return loan_id


def positions(engine: Engine, loan_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(funder_positions.c.funder_id, funder_positions.c.principal_fen).where(
                funder_positions.c.loan_id == loan_id
            )
        )
        return {r.funder_id: r.principal_fen for r in rows}


def flows(engine: Engine, source: str) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(select(funder_flows).where(funder_flows.c.source == source))
        return {(r.funder_id, r.flow): r.amount_fen for r in rows}


def gl(engine: Engine, code: str, funder_id: str) -> int:
    """Net credit on an account for one funder."""
    with engine.connect() as conn:
        value = conn.execute(
            text(
                "SELECT COALESCE(SUM(credit_fen) - SUM(debit_fen), 0) FROM journal_lines"
                " WHERE account = :a AND funder_id = :f"
            ),
            {"a": code, "f": funder_id},
        ).scalar()
    return int(value or 0)


def paid_out(engine: Engine) -> int:
    with engine.connect() as conn:
        return guarantee_paid(conn, BANK)


def check(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(reconcile(conn))


def test_disbursement_is_split_to_the_fen_when_the_plan_is_recorded(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    loan_id = book(engine, catalog, repo)
    assert positions(engine, loan_id) == {"platform": 300000, BANK: 700001}
    assert flows(engine, f"disbursement:{loan_id}") == {
        ("platform", "disbursement"): 300000,
        (BANK, "disbursement"): 700001,
    }
    assert check(engine) == []


def test_payment_and_its_reversal_are_split_and_undone_fen_for_fen(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    loan_id = book(engine, catalog, repo)
    close_through(SqlCloseStore(engine), BOOKED + timedelta(days=31))
    paid_on = BOOKED + timedelta(days=32)
    stored = take_payment(
        SqlUnitOfWork(engine), Payment(loan_id, Decimal("2000.00"), paid_on, "k1")
    )
    parts = flows(engine, f"payment:{stored.id}")
    principal = sum(v for (_, flow), v in parts.items() if flow == "principal")
    assert from_fen(principal) == stored.applied.principal
    interest = sum(v for (_, flow), v in parts.items() if flow in ("interest", "spread"))
    assert from_fen(interest) == stored.applied.interest
    # the bank earns 3.4 % of an 18 % loan's interest on its 70 %; the rest is spread
    bank_gross = parts[(BANK, "interest")] + parts[(BANK, "spread")]
    assert parts[(BANK, "interest")] == bank_gross * 34 // 180
    assert sum(positions(engine, loan_id).values()) == 1000001 - principal
    assert check(engine) == []

    reverse_payment(SqlUnitOfWork(engine), stored.id, paid_on)
    undone = flows(engine, f"reversal:{stored.id}")
    assert undone == {k: -v for k, v in parts.items()}
    assert positions(engine, loan_id) == {"platform": 300000, BANK: 700001}
    close_through(SqlCloseStore(engine), paid_on)
    assert check(engine) == []


def test_close_posts_the_banks_side_and_funders_reconcile_to_the_gl(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    loan_id = book(engine, catalog, repo)
    close_through(SqlCloseStore(engine), BOOKED + timedelta(days=31))
    paid_on = BOOKED + timedelta(days=32)
    stored = take_payment(SqlUnitOfWork(engine), Payment(loan_id, Decimal("950.00"), paid_on, "k"))
    assert check(engine) == []  # the open date's flows are not in the GL yet, and need not be
    close_through(SqlCloseStore(engine), paid_on)
    parts = flows(engine, f"payment:{stored.id}")
    bank_position = positions(engine, loan_id)[BANK]
    assert gl(engine, "2260", BANK) == bank_position
    due = 700001 - parts[(BANK, "principal")] - parts[(BANK, "interest")]
    assert gl(engine, "2250", BANK) == -due  # still owed by the bank: it funded more than came back
    assert gl(engine, "2260", "platform") == 0  # the platform's own part needs no entry
    with engine.connect() as conn:
        assert trial_balance(conn).balanced
    assert check(engine) == []


def test_reconciliation_catches_a_tampered_position(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    loan_id = book(engine, catalog, repo)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE funder_positions SET principal_fen = principal_fen + 1"
                " WHERE loan_id = :l AND funder_id = :f"
            ),
            {"l": loan_id, "f": BANK},
        )
    found = [d.check for d in check(engine)]  # type: ignore[attr-defined]
    assert any("positions" in c for c in found)
    assert any("position vs its flows" in c for c in found)


def test_guarantee_pays_the_bank_at_the_trigger_dpd_and_not_before(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    loan_id = book(engine, catalog, repo)
    store = SqlCloseStore(engine)
    first_due = BOOKED + timedelta(days=31)  # nothing is ever paid
    trigger_day = None
    for day in (first_due + timedelta(days=n) for n in range(0, 130)):
        close_through(store, day)
        if paid_out(engine):
            trigger_day = day
            break
    assert trigger_day is not None
    with engine.connect() as conn:
        dpd = conn.execute(text("SELECT dpd FROM loans WHERE id = :l"), {"l": loan_id}).scalar()
    assert dpd == 90  # the first close at which the loan reached the trigger
    assert positions(engine, loan_id) == {"platform": 1000001, BANK: 0}
    assert flows(engine, f"guarantee:{loan_id}:{BANK}") == {
        (BANK, "guarantee"): 700001,
        ("platform", "acquired"): 700001,
    }
    assert gl(engine, "2260", BANK) == 0
    assert gl(engine, "2250", BANK) == 0  # funded 700,001 fen, compensated 700,001 fen
    assert check(engine) == []
    # the charge-off later falls on the platform alone
    close_through(store, trigger_day + timedelta(days=95))
    assert flows(engine, f"charge_off:{loan_id}") == {("platform", "charge_off"): 1000001}
    assert check(engine) == []


def test_an_exhausted_guarantee_leaves_the_stake_with_the_bank(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    bank = sample(BANK)
    assert bank.guarantee is not None
    repo.update(replace(bank, guarantee=replace(bank.guarantee, balance=Decimal("7000.00"))))
    loan_id = book(engine, catalog, repo)  # the bank's stake is 7,000.01: one fen too many
    close_through(SqlCloseStore(engine), BOOKED + timedelta(days=31 + 100))
    assert positions(engine, loan_id)[BANK] == 700001
    assert paid_out(engine) == 0
    assert check(engine) == []


def test_buyback_moves_the_stake_to_the_platform_on_the_open_date(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    loan_id = book(engine, catalog, repo)
    close_through(SqlCloseStore(engine), BOOKED + timedelta(days=3))
    with pytest.raises(Conflict):
        repo.buyback(loan_id, BANK, BOOKED)  # a closed date
    with pytest.raises(NotFound):
        repo.buyback(loan_id, "nobody", BOOKED + timedelta(days=4))
    with pytest.raises(Conflict):
        repo.buyback(loan_id, "platform", BOOKED + timedelta(days=4))
    assert repo.buyback(loan_id, BANK, BOOKED + timedelta(days=4)) == Decimal("7000.01")
    assert positions(engine, loan_id) == {"platform": 1000001, BANK: 0}
    with pytest.raises(Conflict):
        repo.buyback(loan_id, BANK, BOOKED + timedelta(days=4))  # nothing left to buy
    close_through(SqlCloseStore(engine), BOOKED + timedelta(days=40))
    paid_on = BOOKED + timedelta(days=41)
    stored = take_payment(SqlUnitOfWork(engine), Payment(loan_id, Decimal("950.00"), paid_on, "k"))
    assert {f for f, _ in flows(engine, f"payment:{stored.id}")} == {"platform"}
    close_through(SqlCloseStore(engine), paid_on)
    assert check(engine) == []


def test_a_plan_cannot_start_after_the_loan_has_been_through_a_close(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    request = LoanRequest("cash-loan-installment", Decimal("5000.00"), 12, Decimal("0.18"), BOOKED)
    loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
    close_through(SqlCloseStore(engine), BOOKED)
    with pytest.raises(Conflict) as caught:
        repo.record_plan(engine, loan_id, SHARES)
    assert caught.value.field == "loan_id"
    assert positions(engine, loan_id) == {}


def test_a_paid_off_loan_leaves_every_position_at_zero(
    engine: Engine, catalog: ProductCatalog, repo: SqlFunding
) -> None:
    loan_id = book(engine, catalog, repo, "3333.33")
    store = SqlCloseStore(engine)
    with SqlUnitOfWork(engine) as uow:
        schedule = uow.loans.get(loan_id).installments
    for n, item in enumerate(schedule):
        close_through(store, item.due_date - timedelta(days=1))
        take_payment(SqlUnitOfWork(engine), Payment(loan_id, item.total, item.due_date, f"p{n}"))
    close_through(store, schedule[-1].due_date)
    assert positions(engine, loan_id) == {"platform": 0, BANK: 0}
    assert gl(engine, "2260", BANK) == 0
    assert check(engine) == []

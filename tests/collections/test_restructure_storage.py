"""Restructuring on a real book: the books tie, funders follow, the class is held and released.

Loans are booked, aged and paid by the real services and close of business. The observation
timeline is short and synthetic: two loans restructured on the same day, closed day by day for
about 13 months (closes on a two-loan book are a few milliseconds each). Runs on SQLite and,
when LENDSTACK_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select, text

from lendstack.core.dates import add_months
from lendstack.core.errors import Conflict
from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.delinquency import RiskClass
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.domain.restructure import RestructureOption
from lendstack.servicing.domain.schedule import PrepaymentMode
from lendstack.servicing.services import (
    LoanRequest,
    Payment,
    book_loan,
    get_loan,
    quote_payoff,
    reverse_payment,
    take_payment,
)
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import SqlFunding
from lendstack.storage.reports import reconcile
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.restructures import RestructureRequest, restructure_loan
from lendstack.storage.schema import funder_positions

BOOKED = date(2026, 1, 5)
AGED = BOOKED + timedelta(days=60)  # first due 2026-02-05 unpaid: about a month late
DAY = AGED + timedelta(days=1)  # the open date the loans are restructured on
BANK = "harbour-joint-stock"


def book(engine: Engine, catalog: ProductCatalog, shares: bool = False) -> int:
    request = LoanRequest("cash-loan-installment", Decimal("12000.00"), 12, Decimal("0.18"), BOOKED)
    loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
    if shares:
        SqlFunding(engine).import_builtin()
        SqlFunding(engine).record_plan(
            engine, loan_id, {"platform": Decimal("0.3"), BANK: Decimal("0.7")}
        )
    return loan_id


def tied(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(reconcile(conn))


def klass(engine: Engine, loan_id: int) -> RiskClass:
    return get_loan(SqlUnitOfWork(engine), loan_id).risk_class


def pay_due(engine: Engine, loan_id: int, number: int, late_days: int = 0) -> None:
    """Close up to installment `number`'s due date (+ late days) and pay it.

    On time it pays the installment; late it pays everything billed and unpaid plus the
    penalty, which cures the loan.
    """
    item = get_loan(SqlUnitOfWork(engine), loan_id).installment(number)
    on = item.due_date + timedelta(days=late_days)
    close_through(SqlCloseStore(engine), on - timedelta(days=1))
    loan = get_loan(SqlUnitOfWork(engine), loan_id)
    owed = loan.installment(number).unpaid
    if late_days:
        billed = sum((i.unpaid for i in loan.installments if i.billed), Decimal(0))
        owed = loan.balances.penalty + billed
    take_payment(SqlUnitOfWork(engine), Payment(loan_id, owed, on, f"p-{loan_id}-{number}"))


def test_restructuring_a_delinquent_loan_re_ages_it_and_the_books_tie(
    engine: Engine, catalog: ProductCatalog
) -> None:
    loan_id = book(engine, catalog)
    close_through(SqlCloseStore(engine), AGED)
    before = get_loan(SqlUnitOfWork(engine), loan_id)
    assert before.dpd > 0
    assert before.balances.penalty > 0
    request = RestructureRequest(loan_id, DAY, 24, Decimal("0.12"), RestructureOption.CAPITALISE)
    record = restructure_loan(engine, catalog, request)
    after = get_loan(SqlUnitOfWork(engine), loan_id)
    b = before.balances
    assert Decimal(str(record["principal"])) == after.balances.principal
    # what it owed (interest brought to the date) is now principal, to the fen
    owed = b.principal + b.interest + b.fee + b.penalty
    assert after.balances.principal - owed == Decimal(str(record["capitalised_interest"])) - (
        b.interest
    )
    assert sum(i.unpaid_principal for i in after.installments) == after.balances.principal
    assert (after.dpd, after.risk_class, len(after.installments)) == (
        0,
        RiskClass.SPECIAL_MENTION,
        24,
    )
    assert after.contract.annual_rate == Decimal("0.12")
    assert after.schedule_version == before.schedule_version + 1
    assert tied(engine) == []
    # the same request again returns the first record and writes nothing
    with engine.connect() as conn:
        entries = conn.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar()
    assert restructure_loan(engine, catalog, request) == record
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar() == entries
    close_through(SqlCloseStore(engine), DAY + timedelta(days=40))
    assert tied(engine) == []


def test_a_co_funded_restructure_grows_each_funders_position_and_still_reconciles(
    engine: Engine, catalog: ProductCatalog
) -> None:
    loan_id = book(engine, catalog, shares=True)
    close_through(SqlCloseStore(engine), AGED)
    with engine.connect() as conn:
        held_before = dict(
            conn.execute(
                select(funder_positions.c.funder_id, funder_positions.c.principal_fen).where(
                    funder_positions.c.loan_id == loan_id
                )
            ).all()
        )
    request = RestructureRequest(loan_id, DAY, 12, None, RestructureOption.WAIVE_PENALTY)
    record = restructure_loan(engine, catalog, request)
    capitalised = sum(Decimal(str(record[k])) for k in ("capitalised_interest", "capitalised_fee"))
    assert Decimal(str(record["waived_penalty"])) > 0
    with engine.connect() as conn:
        held = dict(
            conn.execute(
                select(funder_positions.c.funder_id, funder_positions.c.principal_fen).where(
                    funder_positions.c.loan_id == loan_id
                )
            ).all()
        )
        total = conn.execute(
            select(func.sum(funder_positions.c.principal_fen)).where(
                funder_positions.c.loan_id == loan_id
            )
        ).scalar_one()
    grown = {f: held[f] - held_before[f] for f in held}
    assert sum(grown.values()) == int(capitalised * 100)
    # each funder's part is its share of the capitalised amount, to within one fen
    assert abs(grown[BANK] - capitalised * 70) < 1
    assert total == int(get_loan(SqlUnitOfWork(engine), loan_id).balances.principal * 100)
    assert tied(engine) == []  # before the close: the sub-ledger runs ahead by today's flows
    close_through(SqlCloseStore(engine), DAY + timedelta(days=35))
    assert tied(engine) == []


def test_the_class_is_held_through_the_observation_period_and_released_on_both_conditions(
    engine: Engine, catalog: ProductCatalog
) -> None:
    on_time, late = book(engine, catalog), book(engine, catalog)
    close_through(SqlCloseStore(engine), AGED)
    for loan_id in (on_time, late):
        restructure_loan(engine, catalog, RestructureRequest(loan_id, DAY, 24))
    grace = catalog.get("cash-loan-installment").grace_days
    year = add_months(DAY, 12)  # also installment 12's due date

    for number in range(1, 11):
        pay_due(engine, on_time, number)
        pay_due(engine, late, number)
    # two on-time installments were reached long ago, but a year has not passed: still held,
    # although DPD is 0 and the DPD class would be 正常
    close_through(SqlCloseStore(engine), add_months(DAY, 10) + timedelta(days=grace + 2))
    assert get_loan(SqlUnitOfWork(engine), on_time).dpd == 0
    assert klass(engine, on_time) is RiskClass.SPECIAL_MENTION

    # installment 11: the late loan misses it and pays the arrears 10 days late (a cure)
    pay_due(engine, on_time, 11)
    pay_due(engine, late, 11, late_days=10)
    pay_due(engine, on_time, 12)
    pay_due(engine, late, 12)
    assert get_loan(SqlUnitOfWork(engine), late).dpd == 0
    assert klass(engine, on_time) is RiskClass.SPECIAL_MENTION  # one day short of a year
    assert klass(engine, late) is RiskClass.SPECIAL_MENTION  # cured, still held
    close_through(SqlCloseStore(engine), year)
    assert klass(engine, on_time) is RiskClass.NORMAL  # both conditions hold: upgraded
    with engine.connect() as conn:
        moved = conn.execute(
            text(
                "SELECT old, new FROM loan_events WHERE loan_id = :l AND kind = 'class'"
                " AND business_date = :d"
            ),
            {"l": on_time, "d": year},
        ).all()
    assert [tuple(m) for m in moved] == [("special_mention", "normal")]

    # the late loan: a year has passed, but its on-time run restarted after the miss
    close_through(SqlCloseStore(engine), year + timedelta(days=grace + 2))
    assert get_loan(SqlUnitOfWork(engine), late).dpd == 0
    assert klass(engine, late) is RiskClass.SPECIAL_MENTION
    pay_due(engine, late, 13)
    due_13 = add_months(DAY, 13)
    close_through(SqlCloseStore(engine), due_13 + timedelta(days=grace))
    assert klass(engine, late) is RiskClass.SPECIAL_MENTION  # not until its grace has ended
    close_through(SqlCloseStore(engine), due_13 + timedelta(days=grace + 1))
    assert klass(engine, late) is RiskClass.NORMAL
    with engine.connect() as conn:
        status = dict(conn.execute(text("SELECT loan_id, status FROM loan_restructures")).all())
    assert status == {on_time: "released", late: "released"}
    assert tied(engine) == []


def test_a_payment_from_before_the_restructuring_cannot_be_reversed(
    engine: Engine, catalog: ProductCatalog
) -> None:
    loan_id = book(engine, catalog)
    close_through(SqlCloseStore(engine), AGED - timedelta(days=1))
    paid = take_payment(SqlUnitOfWork(engine), Payment(loan_id, Decimal("100.00"), AGED, "before"))
    close_through(SqlCloseStore(engine), AGED)
    restructure_loan(engine, catalog, RestructureRequest(loan_id, DAY, 12))
    with engine.connect() as conn:
        entries = conn.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar()
    with pytest.raises(Conflict) as info:
        reverse_payment(SqlUnitOfWork(engine), paid.id, DAY)
    assert info.value.field == "payment_id"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar() == entries
    assert tied(engine) == []


def test_a_non_performing_loan_keeps_its_worse_class_through_the_observation(
    engine: Engine, catalog: ProductCatalog
) -> None:
    loan_id = book(engine, catalog, shares=True)
    aged = BOOKED + timedelta(days=140)  # about 110 DPD: 次级, non-accrual
    close_through(SqlCloseStore(engine), aged)
    before = get_loan(SqlUnitOfWork(engine), loan_id)
    assert before.non_accrual
    assert before.risk_class is RiskClass.SUBSTANDARD
    on = aged + timedelta(days=1)
    request = RestructureRequest(loan_id, on, 12, None, RestructureOption.PRINCIPAL_ONLY)
    record = restructure_loan(engine, catalog, request)
    after = get_loan(SqlUnitOfWork(engine), loan_id)
    assert after.balances.principal == before.balances.principal
    assert not after.non_accrual
    assert (after.dpd, after.risk_class) == (0, RiskClass.SUBSTANDARD)
    assert record["class_floor"] == "substandard"
    assert tied(engine) == []  # the suspense was cleared with the forgiven income
    pay_due(engine, loan_id, 1)
    pay_due(engine, loan_id, 2)
    close_through(SqlCloseStore(engine), add_months(on, 3))
    assert get_loan(SqlUnitOfWork(engine), loan_id).dpd == 0
    assert klass(engine, loan_id) is RiskClass.SUBSTANDARD
    assert tied(engine) == []


def test_a_restructured_loan_paid_off_ends_its_hold_and_prepays_on_the_new_schedule(
    engine: Engine, catalog: ProductCatalog
) -> None:
    loan_id = book(engine, catalog)
    close_through(SqlCloseStore(engine), AGED)
    restructure_loan(engine, catalog, RestructureRequest(loan_id, DAY, 6))
    on = DAY + timedelta(days=45)
    close_through(SqlCloseStore(engine), on - timedelta(days=1))
    owed = quote_payoff(SqlUnitOfWork(engine), loan_id, on).total
    mode = PrepaymentMode.SHORTEN_TERM
    take_payment(SqlUnitOfWork(engine), Payment(loan_id, owed, on, "payoff", mode))
    assert get_loan(SqlUnitOfWork(engine), loan_id).status == "paid_off"
    close_through(SqlCloseStore(engine), on)
    with engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM loan_restructures")).scalar_one()
    assert status == "ended"
    assert tied(engine) == []

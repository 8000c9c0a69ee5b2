"""The funding repository on SQLite and PostgreSQL: partners, plans and exposure."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select, update

from lendstack.core.errors import Conflict, NotFound, ValidationError
from lendstack.core.money import from_fen
from lendstack.funding import Funder, Policy, Rule, builtin_partners, is_no_capacity, split
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan, take_payment
from lendstack.servicing.domain.schedule import PrepaymentMode
from lendstack.servicing.ports import PlanTerms
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.schema import funder_positions, funders, funding_plans, loans

BOOKED = date(2026, 3, 2)
LATER = date(2026, 3, 9)


def sample(funder_id: str) -> Funder:
    return next(f for f in builtin_partners() if f.id == funder_id)


def book(engine: Engine, catalog: ProductCatalog, amount: str, on: date = BOOKED) -> int:
    request = LoanRequest("cash-loan-installment", Decimal(amount), 12, Decimal("0.18"), on)
    loan = book_loan(SqlUnitOfWork(engine), catalog, request)
    return loan.id


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


@pytest.fixture
def repo(engine: Engine) -> SqlFunding:
    return SqlFunding(engine)


def test_add_get_update_list_round_trip(repo: SqlFunding) -> None:
    for funder in reversed(builtin_partners()):
        assert repo.add(funder).version == 1
    assert repo.all() == builtin_partners()  # rebuilt by the pure parser, equal, sorted by id
    bank = sample("harbour-joint-stock")  # carries a guarantee
    assert repo.get(bank.id) == bank
    cheaper = replace(bank, funding_cost=Decimal("0.0335"), on_platform_list=False)
    record = repo.update(cheaper)
    assert record.version == 2
    assert record.funder == cheaper
    assert repo.get(bank.id) == cheaper
    assert repo.record(bank.id).updated_at >= repo.record(bank.id).created_at
    assert repo.update(bank).version == 3


def test_duplicate_add_is_a_conflict_and_changes_nothing(repo: SqlFunding) -> None:
    bank = sample("big-state-bank")
    repo.add(bank)
    with pytest.raises(Conflict) as caught:
        repo.add(replace(bank, name="Someone else"))
    assert caught.value.field == "id"
    assert repo.get(bank.id) == bank
    assert repo.record(bank.id).version == 1
    assert len(repo.all()) == 1


def test_unknown_partner_is_not_found(repo: SqlFunding) -> None:
    with pytest.raises(NotFound):
        repo.get("nobody")
    with pytest.raises(NotFound):
        repo.update(sample("platform"))
    assert repo.all() == ()


def test_import_builtin_is_idempotent(repo: SqlFunding) -> None:
    repo.add(sample("platform"))
    added = repo.import_builtin()
    assert added == ("big-state-bank", "harbour-joint-stock", "westlake-city-bank")
    assert repo.import_builtin() == ()
    assert repo.all() == builtin_partners()


@pytest.mark.parametrize(
    ("shares", "error", "field"),
    [
        ({"platform": Decimal("0.3"), "big-state-bank": Decimal("0.6")}, ValidationError, "shares"),
        ({"platform": Decimal("0.3"), "big-state-bank": Decimal("0.8")}, ValidationError, "shares"),
        ({"platform": Decimal("1.3"), "big-state-bank": Decimal("-0.3")}, ValidationError, "shares"),
        ({"platform": Decimal("0.33333"), "big-state-bank": Decimal("0.66667")}, ValidationError,
         "shares"),
        ({}, ValidationError, "shares"),
        ({"platform": Decimal("0.3"), "no-such-bank": Decimal("0.7")}, NotFound, "funder"),
    ],
)  # fmt: skip
def test_record_plan_rejects_bad_plans_and_writes_nothing(
    engine: Engine,
    repo: SqlFunding,
    catalog: ProductCatalog,
    shares: dict[str, Decimal],
    error: type[Exception],
    field: str,
) -> None:
    repo.import_builtin()
    loan_id = book(engine, catalog, "12000")
    with pytest.raises(error) as caught:
        repo.record_plan(engine, loan_id, shares)
    assert getattr(caught.value, "field", None) == field
    assert count(engine, funding_plans) == 0


def test_record_plan_needs_a_loan_and_only_one_plan(
    engine: Engine, repo: SqlFunding, catalog: ProductCatalog
) -> None:
    repo.import_builtin()
    shares = {"platform": Decimal("0.3"), "big-state-bank": Decimal("0.7")}
    with pytest.raises(NotFound):
        repo.record_plan(engine, 999, shares)
    loan_id = book(engine, catalog, "12000")
    repo.record_plan(engine, loan_id, shares)
    assert repo.plan(loan_id) == shares
    with pytest.raises(Conflict):
        repo.record_plan(engine, loan_id, {"platform": Decimal(1)})
    assert repo.plan(loan_id) == shares


def test_bad_shares_are_named_before_the_book_is_read(engine: Engine, repo: SqlFunding) -> None:
    """Shares that do not sum to 1 are the caller's error (`shares`), even for a loan that
    does not exist: the plan itself is checked before any read or lock."""
    repo.import_builtin()
    with pytest.raises(ValidationError) as caught:
        repo.record_plan(engine, 999, {"platform": Decimal("0.5")})
    assert caught.value.field == "shares"


def test_booking_rechecks_the_ratio_rules_under_the_lock(
    engine: Engine, repo: SqlFunding, catalog: ProductCatalog
) -> None:
    """Two bookings that each fit a bank's tier-1 limit (2.2) but not together: given the
    desk's policy, the unit of work refuses the second under the funders' lock and writes
    nothing for it; without one it checks the quotas only."""
    repo.import_builtin()
    repo.update(replace(sample("big-state-bank"), tier1_net_capital=Decimal("40000")))
    shares = {"platform": Decimal("0.3"), "big-state-bank": Decimal("0.7")}
    request = LoanRequest("cash-loan-installment", Decimal("12000"), 12, Decimal("0.18"), BOOKED)

    def fund() -> PlanTerms:
        return PlanTerms(shares)

    def checked() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, plan_policy=lambda _day: Policy())

    book_loan(checked(), catalog, request, "first", fund)  # 8,400 of the bank's 10,000
    with pytest.raises(Conflict) as refused:
        book_loan(checked(), catalog, request, "second", fund)
    assert is_no_capacity(refused.value)
    assert Rule.TIER1.value in refused.value.message
    assert count(engine, loans) == count(engine, funding_plans) // 2 == 1
    book_loan(SqlUnitOfWork(engine), catalog, request, "quotas only", fund)
    assert count(engine, loans) == 2


def test_record_plan_joins_the_callers_transaction(
    engine: Engine, repo: SqlFunding, catalog: ProductCatalog
) -> None:
    repo.import_builtin()
    loan_id = book(engine, catalog, "12000")
    shares = {"platform": Decimal("0.3"), "big-state-bank": Decimal("0.7")}

    def booking_that_fails_after_the_plan() -> None:
        with engine.begin() as conn:
            repo.record_plan(conn, loan_id, shares)
            raise RuntimeError("the booking failed after the plan was written")

    with pytest.raises(RuntimeError):
        booking_that_fails_after_the_plan()
    assert repo.plan(loan_id) == {}


def test_exposure_splits_each_loan_balance_to_the_fen(
    engine: Engine, repo: SqlFunding, catalog: ProductCatalog
) -> None:
    repo.import_builtin()
    first, second = book(engine, catalog, "12000"), book(engine, catalog, "5000.03", LATER)
    plans = {
        first: {"platform": Decimal("0.3"), "big-state-bank": Decimal("0.7")},
        second: {"platform": Decimal("0.3333"), "harbour-joint-stock": Decimal("0.6667")},
    }
    for loan_id, shares in plans.items():
        repo.record_plan(engine, loan_id, shares)
    # 2,041.41 prepaid: 41.42 accrued interest, 1,999.99 principal split by the positions
    prepaid = Payment(first, Decimal("2041.41"), LATER, "prepay", PrepaymentMode.SHORTEN_TERM)
    assert take_payment(SqlUnitOfWork(engine), prepaid).applied.principal == Decimal("1999.99")
    with engine.begin() as conn:  # as if aged by a close
        conn.execute(update(loans).where(loans.c.id == second).values(dpd=45, bucket=2))
        balances = dict(conn.execute(select(loans.c.id, loans.c.bal_principal)).all())
    assert balances[first] == 1_000_001

    report = repo.exposures(LATER)
    by_id = {p.funder.id: p for p in report.partners}
    with engine.connect() as conn:
        held = conn.execute(
            select(
                funder_positions.c.funder_id, func.sum(funder_positions.c.principal_fen)
            ).group_by(funder_positions.c.funder_id)
        ).all()
    expected = {funder_id: from_fen(int(fen)) for funder_id, fen in held}
    assert {i: p.exposure.balance for i, p in by_id.items() if p.loans} == expected
    assert by_id["westlake-city-bank"].exposure.balance == Decimal("0.00")
    total = from_fen(sum(balances.values()))
    assert report.total_balance == total == sum(p.exposure.balance for p in report.partners)
    # 8,400.00 less its part of 1,999.99 split 3,600 : 8,400 by largest remainder (1,399.99)
    assert by_id["big-state-bank"].exposure.balance == Decimal("7000.01")
    assert by_id["platform"].loans == 2
    assert by_id["big-state-bank"].loans == 1

    harbour = by_id["harbour-joint-stock"]
    mix = {b.label: (b.loans, b.balance) for b in harbour.dpd_mix}
    assert list(mix) == ["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7+"]
    assert mix["M2"] == (1, harbour.exposure.balance)
    assert mix["M0"] == (0, Decimal("0.00"))
    assert harbour.exposure.today == split(Decimal("5000.03"), plans[second])["harbour-joint-stock"]

    state = by_id["big-state-bank"]
    assert state.tier1_limit == Decimal("750000000000.00")  # 25 % of 3,000,000,000,000
    assert state.total_loans_limit == Decimal("12500000000000.00")  # 50 % of 25 tn
    assert state.headroom_for(Rule.TIER1) == state.tier1_limit - state.exposure.balance
    assert by_id["platform"].tier1_limit is None
    assert by_id["platform"].headroom_for(Rule.TIER1) is None


def test_exposure_as_of_takes_loans_disbursed_by_then(
    engine: Engine, repo: SqlFunding, catalog: ProductCatalog
) -> None:
    repo.import_builtin()
    early, late = book(engine, catalog, "1000"), book(engine, catalog, "2000", LATER)
    for loan_id in (early, late):
        repo.record_plan(engine, loan_id, {"platform": Decimal(1)})
    assert repo.exposures(BOOKED).total_balance == Decimal("1000.00")
    assert repo.exposures(None).total_balance == Decimal("3000.00")
    assert count(engine, funders) == 4

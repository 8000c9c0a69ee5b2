"""Booking a funded decision: the plan is written in the loan's transaction, re-checked against
the exact book, re-allocated or refused; and `lendstack funding plan` for manual plans.

Runs on SQLite and, when LENDSTACK_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cli_runner import Run
from example_app import application as app_for
from lendstack.core.errors import Conflict, InvariantViolation
from lendstack.funding import NO_CAPACITY, Quotas, builtin_partners, check_plan
from lendstack.servicing import LoanRequest, PlanTerms, ProductCatalog, book_loan
from lendstack.settings import Settings
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.schema import funding_plans, journal_entries, loans
from lendstack.underwriting.funding_desk import (
    FundingDesk,
    funding_policy,
    record_request,
    recorded_plan,
)
from lendstack.underwriting.origination import originate
from lendstack.underwriting.rules import default_pack
from lendstack.underwriting.service import Recorded, Underwriting
from lendstack.wiring import booking_desk, underwriting_service


@pytest.fixture
def settings() -> Settings:
    return Settings(pii_key=base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def service(settings: Settings, engine: Engine) -> Underwriting:
    SqlFunding(engine).import_builtin()
    return underwriting_service(settings, engine)


@pytest.fixture
def desk(settings: Settings, engine: Engine) -> FundingDesk:
    return booking_desk(settings, engine)


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def stored_plan(engine: Engine, loan_id: int) -> dict[str, Decimal]:
    return SqlFunding(engine).plan(loan_id)


def decided_shares(recorded: Recorded) -> dict[str, Decimal]:
    plan = recorded_plan(recorded.record)
    assert plan is not None
    assert plan.funded
    return plan.share_map()


def change(engine: Engine, funder_id: str, **fields: Any) -> None:
    repo = SqlFunding(engine)
    repo.update(replace(repo.get(funder_id), **fields))


def test_a_funded_decision_books_with_its_plan_exactly_once(
    service: Underwriting, desk: FundingDesk, engine: Engine, catalog: ProductCatalog
) -> None:
    recorded = service.decide(app_for())
    loan = originate(SqlUnitOfWork(engine), catalog, recorded.record, desk)
    assert stored_plan(engine, loan.id) == decided_shares(recorded)
    change(engine, "big-state-bank", on_platform_list=False)  # the plan would not pass now
    again = originate(SqlUnitOfWork(engine), catalog, recorded.record, desk)
    assert again.id == loan.id  # idempotent: the same loan, not re-checked, no second plan
    assert count(engine, loans) == 1
    assert count(engine, funding_plans) == len(decided_shares(recorded))
    exposure = SqlFunding(engine).exposure_map(loan.contract.disbursement_date)
    offer = Decimal(recorded.record["decision"]["offer"]["amount"])
    assert sum(e.balance for e in exposure.values()) == offer


class _FailsAfterThePlan(SqlUnitOfWork):
    """Writes the plan, then fails to post the disbursement: the booking must leave nothing."""

    planned: list[int]

    def __enter__(self) -> _FailsAfterThePlan:
        super().__enter__()
        inner, planned = self.funding, self.planned

        @dataclass
        class Spy:
            def record_many(self, plans: Sequence[tuple[int, PlanTerms]]) -> None:
                inner.record_many(plans)
                for loan_id, _ in plans:
                    with_plan = select(func.count()).where(funding_plans.c.loan_id == loan_id)
                    planned.append(int(outer.conn.execute(with_plan).scalar_one()))

        def fail(_entries: Any) -> list[int]:
            raise RuntimeError("the disk filled up")

        outer = self
        self.funding = Spy()  # type: ignore[assignment]
        self.ledger.post_many = fail  # type: ignore[method-assign]
        return self


def test_the_plan_is_written_in_the_bookings_transaction(
    service: Underwriting, desk: FundingDesk, engine: Engine, catalog: ProductCatalog
) -> None:
    recorded = service.decide(app_for())
    uow = _FailsAfterThePlan(engine)
    uow.planned = []
    with pytest.raises(RuntimeError, match="disk"):
        originate(uow, catalog, recorded.record, desk)
    assert uow.planned == [len(decided_shares(recorded))]  # the rows were inserted...
    assert count(engine, loans) == 0  # ...and rolled back with the loan
    assert count(engine, funding_plans) == 0
    assert count(engine, journal_entries) == 0
    loan = originate(SqlUnitOfWork(engine), catalog, recorded.record, desk)
    assert stored_plan(engine, loan.id) == decided_shares(recorded)


def test_a_plan_that_now_breaks_a_rule_is_allocated_afresh_at_booking(
    service: Underwriting, desk: FundingDesk, engine: Engine, catalog: ProductCatalog
) -> None:
    recorded = service.decide(app_for())
    assert "big-state-bank" in decided_shares(recorded)
    tiny = Quotas(Decimal("1000.00"), Decimal("8000000000.00"))
    change(engine, "big-state-bank", quotas=tiny)  # its daily quota no longer fits its part
    loan = originate(SqlUnitOfWork(engine), catalog, recorded.record, desk)
    booked = stored_plan(engine, loan.id)
    assert booked != decided_shares(recorded)
    assert "big-state-bank" not in booked
    assert sum(booked.values()) == 1
    partners = {f.id: f for f in SqlFunding(engine).all()}
    request = record_request(recorded.record)
    policy = funding_policy(default_pack(), request.day)
    assert check_plan(request, booked, partners, {}, policy) == ()  # the book held nothing else


def test_no_capacity_at_booking_is_a_conflict_and_books_nothing(
    service: Underwriting, desk: FundingDesk, engine: Engine, catalog: ProductCatalog
) -> None:
    recorded = service.decide(app_for())
    for funder in builtin_partners():
        if not funder.is_platform:
            change(engine, funder.id, on_platform_list=False)
    change(engine, "platform", quotas=Quotas(Decimal("100.00"), Decimal("100.00")))
    with pytest.raises(Conflict) as caught:
        originate(SqlUnitOfWork(engine), catalog, recorded.record, desk)
    assert caught.value.message == "no funding capacity within partner limits" == NO_CAPACITY
    assert count(engine, loans) == count(engine, funding_plans) == 0


def test_a_funded_decision_cannot_be_booked_without_the_desk(
    service: Underwriting, engine: Engine, catalog: ProductCatalog
) -> None:
    recorded = service.decide(app_for())
    with pytest.raises(InvariantViolation, match="funding desk"):
        originate(SqlUnitOfWork(engine), catalog, recorded.record)
    assert count(engine, loans) == 0


def test_a_decision_without_funding_books_as_before(
    settings: Settings, engine: Engine, catalog: ProductCatalog
) -> None:
    recorded = underwriting_service(settings, engine).decide(app_for())  # no partners: no desk
    loan = originate(SqlUnitOfWork(engine), catalog, recorded.record)
    assert stored_plan(engine, loan.id) == {}


# -- lendstack funding plan -------------------------------------------------------------------


FACTS = ("--pd", "0.02", "--province", "Guangdong", "--purpose", "travel")


@pytest.fixture
def loan_id(engine: Engine, catalog: ProductCatalog) -> int:
    """A loan booked by hand (no decision), with the sample partners stored."""
    SqlFunding(engine).import_builtin()
    request = LoanRequest(
        "cash-loan-installment", Decimal("12000"), 12, Decimal("0.18"), date(2026, 3, 2)
    )
    return book_loan(SqlUnitOfWork(engine), catalog, request).id


def shares(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--share", pair)]


@pytest.mark.parametrize(
    ("given", "code", "field", "words"),
    [
        (shares("platform=0.3", "big-state-bank=0.6"), 2, "shares", "do not sum to 1"),
        (shares("platform=0.2", "big-state-bank=0.8"), 2, "shares", "2.1"),
        (shares("platform=0.3", "big-state-bank=0.7"), 0, "", ""),
        (shares("platform=0.3", "nobody-bank=0.7"), 3, "funder", "nobody-bank"),
        (shares("platform=0.3", "big-state-bank"), 2, "--share", "FUNDER=SHARE"),
        (shares("platform=0.3", "platform=0.7"), 2, "--share", "twice"),
        (shares("platform=0.3", "big-state-bank=abc"), 2, "--share", "FUNDER=SHARE"),
    ],
)
def test_manual_plan_bad_input_names_the_field_and_writes_nothing(
    cli: Run, engine: Engine, loan_id: int, given: list[str], code: int, field: str, words: str
) -> None:
    result = cli("funding", "plan", str(loan_id), *given, *FACTS)
    assert result.exit_code == code, result.output
    if code:
        assert f"{field}:" in result.output
        assert words in result.output
        assert count(engine, funding_plans) == 0
    else:
        assert stored_plan(engine, loan_id)["big-state-bank"] == Decimal("0.7")


def test_manual_plan_breach_against_the_current_book(
    cli: Run, engine: Engine, loan_id: int
) -> None:
    change(engine, "big-state-bank", quotas=Quotas(Decimal("5000.00"), Decimal("5000.00")))
    result = cli(
        "funding", "plan", str(loan_id), *shares("platform=0.3", "big-state-bank=0.7"), *FACTS
    )
    assert result.exit_code == 2, result.output
    assert "shares:" in result.output
    assert "quota" in result.output
    assert count(engine, funding_plans) == 0


def test_manual_plan_is_recorded_once_and_needs_the_loans_facts(
    cli: Run, engine: Engine, loan_id: int
) -> None:
    plan = shares("platform=0.5", "big-state-bank=0.5")
    missing = cli("funding", "plan", str(loan_id), *plan)
    assert missing.exit_code == 2
    assert "--pd:" in missing.output
    assert cli("funding", "plan", "999", *plan, *FACTS).exit_code == 3
    nowhere = ("--pd", "0.02", "--province", "Atlantis", "--purpose", "travel")
    unknown = cli("funding", "plan", str(loan_id), *plan, *nowhere)
    assert unknown.exit_code == 2
    assert "--province:" in unknown.output
    assert cli("funding", "plan", str(loan_id), *plan, *FACTS).exit_code == 0
    assert stored_plan(engine, loan_id) == {
        "platform": Decimal("0.5"),
        "big-state-bank": Decimal("0.5"),
    }
    again = cli("funding", "plan", str(loan_id), *plan, *FACTS)
    assert again.exit_code == 4
    assert "already has a funding plan" in again.output
    assert count(engine, funding_plans) == 2


def test_manual_plan_reads_the_facts_of_the_loans_decision(
    cli: Run, settings: Settings, engine: Engine, catalog: ProductCatalog
) -> None:
    recorded = underwriting_service(settings, engine).decide(app_for())  # before any partner
    loan = originate(SqlUnitOfWork(engine), catalog, recorded.record)
    SqlFunding(engine).import_builtin()
    result = cli("funding", "plan", str(loan.id), *shares("platform=0.3", "westlake-city-bank=0.7"))
    assert result.exit_code == 2  # a Zhejiang bank, a Guangdong borrower (the decision says)
    assert "2.4" in result.output
    ok = cli("funding", "plan", str(loan.id), *shares("platform=0.3", "big-state-bank=0.7"))
    assert ok.exit_code == 0, ok.output
    assert sum(stored_plan(engine, loan.id).values()) == 1

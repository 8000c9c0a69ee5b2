"""A granted decision made ready to book (`origination.bookable`), as the simulator's side
process makes it with the decision, books exactly what its stored record books: the funding
request its plan is re-checked for is the record's, it pickles to the same values, and a
day's batch booked from bookables sent through a pipe writes the same books.

Runs on SQLite and, when LENDSTACK_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import base64
import os
import pickle
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, text

from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.underwriting.application import Application
from lendstack.underwriting.decision import GRANTED
from lendstack.underwriting.funding_desk import record_request
from lendstack.underwriting.origination import Bookable, book_bookables, bookable, originate_many
from lendstack.underwriting.population import PopulationConfig, generate_population
from lendstack.wiring import booking_desk, underwriting_service

BOOKS = ("loans", "installments", "journal_entries", "journal_lines", "funding_plans",
         "funder_flows", "loan_profiles")  # fmt: skip
_CLOCKS = {"created_at", "recorded_at", "updated_at"}


@pytest.fixture(scope="module")
def applications() -> list[Application]:
    rows = generate_population(PopulationConfig(seed=31, n=160)).applications()
    return [Application.model_validate(row) for row in rows]


@pytest.fixture
def settings() -> Settings:
    return Settings(pii_key=base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def granted(
    settings: Settings, engine: Engine, applications: list[Application]
) -> list[Mapping[str, Any]]:
    """The granted decisions' stored records, decided with the sample partners' plans."""
    SqlFunding(engine).import_builtin()
    service = underwriting_service(settings, engine)
    records = []
    for app in applications:
        recorded = service.decide(app)
        if recorded.outcome in GRANTED:
            records.append(service.get(recorded.decision_id).record)
    assert len(records) > 40
    return records


def _piped(b: Bookable) -> Bookable:
    return pickle.loads(pickle.dumps(b))  # type: ignore[no-any-return]


def test_a_bookable_re_checks_its_plan_for_the_records_request(
    granted: list[Mapping[str, Any]], catalog: ProductCatalog
) -> None:
    planned = 0
    for record in granted:
        ready = bookable(catalog, record)
        assert repr(_piped(ready)) == repr(ready)
        if ready.plan is None:
            continue
        planned += 1
        expected = replace(
            record_request(record), guarantee_fee_allowed=bool(ready.plan.guarantee_fee_rate)
        )
        assert ready.funding_request(ready.plan) == expected
        assert repr(ready.funding_request(ready.plan)) == repr(expected)
    assert planned > 40


def _books(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with engine.connect() as conn:
        for table in BOOKS:
            result = conn.execute(text(f"SELECT * FROM {table}"))
            keep = [i for i, name in enumerate(result.keys()) if name not in _CLOCKS]
            out[table] = sorted((tuple(row[i] for i in keep) for row in result), key=repr)
    return out


def test_a_batch_of_piped_bookables_books_what_its_records_book(
    settings: Settings,
    engine: Engine,
    second_engine: Engine,
    granted: list[Mapping[str, Any]],
    catalog: ProductCatalog,
) -> None:
    """One day's batch (the records re-dated to the first one's day), both ways."""
    SqlFunding(second_engine).import_builtin()
    day = granted[0]["application"]["application_date"]
    records = [{**r, "application": {**r["application"], "application_date": day}} for r in granted]
    desk = booking_desk(settings, engine)
    with desk.batch() as checks:
        uow = SqlUnitOfWork(engine, plan_policy=desk.policy_on)
        by_record = originate_many(uow, catalog, records, checks)
    other = booking_desk(settings, second_engine)
    with other.batch() as checks:
        uow = SqlUnitOfWork(second_engine, plan_policy=other.policy_on)
        piped = [_piped(bookable(catalog, r)) for r in records]
        by_bookable = book_bookables(uow, catalog, piped, checks)
    assert [repr(r) for r in by_bookable] == [repr(r) for r in by_record]
    assert sum(not isinstance(r, Exception) for r in by_record) > 40
    assert _books(second_engine) == _books(engine)

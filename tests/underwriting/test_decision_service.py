"""The decision service over a real database: record, idempotency, exposure, review, replay.

Runs on SQLite and, when LENDSTACK_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from example_app import application as app_for
from lendstack.core.errors import Conflict
from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage import schema
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.underwriting.origination import originate
from lendstack.underwriting.rerun import backtest, replay
from lendstack.underwriting.service import Underwriting
from lendstack.wiring import build_engine, underwriting_service


@pytest.fixture
def settings(engine: Engine) -> Settings:
    return Settings(pii_key=base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def service(settings: Settings, engine: Engine) -> Underwriting:
    return underwriting_service(settings, engine)


def log_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.decision_log)).scalar_one())


def test_a_decision_is_recorded_with_pins_and_without_plain_pii(
    service: Underwriting, engine: Engine
) -> None:
    recorded = service.decide(app_for())
    assert recorded.outcome == "APPROVE"
    with engine.connect() as conn:
        stored = conn.execute(select(schema.decision_log.c.record_json)).scalar_one()
    for secret in ("张伟", "440305199205171235", "13812345678"):
        assert secret not in stored
    record = json.loads(stored)
    assert record["rule_pack"]["sha256"] == service.engine.pack.sha256
    assert record["model"]["sha256"] == service.model_sha256
    assert {r["verdict"] for r in record["decision"]["rule_results"]} >= {"pass"}
    assert service.log.verify().ok  # type: ignore[attr-defined]


def test_same_key_same_body_replays_and_a_changed_body_conflicts(
    service: Underwriting, engine: Engine
) -> None:
    first = service.decide(app_for(), idempotency_key="k-1")
    again = service.decide(app_for(), idempotency_key="k-1")
    assert again.replayed
    assert again.decision_id == first.decision_id
    with pytest.raises(Conflict):
        service.decide(app_for(**{"loan.amount": "21000.00"}), idempotency_key="k-1")
    assert log_rows(engine) == 1


def test_approved_amounts_count_against_the_next_application(service: Underwriting) -> None:
    service.decide(app_for())
    later = (date(2026, 11, 2) + timedelta(days=30)).isoformat()
    second = service.decide(
        app_for(
            application_date=later,
            **{"loan.amount": "190000.00", "loan.term_months": 36},
        )
    )
    limit = second.record["decision"]["limit"]
    assert second.outcome == "COUNTER_OFFER"
    regulatory = next(c for c in limit["candidates"] if c["source"] == "regulatory")
    assert Decimal(regulatory["amount"]) == Decimal("180000")  # 200k cap - 20k approved
    assert regulatory["rule_id"] == second.record["decision"]["bindings"]["amount_cap"]


def test_refer_opens_a_review_that_is_resolved_once(service: Underwriting) -> None:
    recorded = service.decide(app_for(**{"consents.automated_decision": False}))
    assert recorded.outcome == "REFER"
    log: Any = service.log
    assert [r["decision_id"] for r in log.reviews("open")] == [recorded.decision_id]
    at = datetime(2026, 11, 3, tzinfo=UTC)
    note = {"decision_id": recorded.decision_id, "resolution": "APPROVE"}
    log.resolve_review(recorded.decision_id, "APPROVE", "staff-7", "checked", at, note)
    assert log.reviews("open") == []
    with pytest.raises(Conflict):
        log.resolve_review(recorded.decision_id, "DECLINE", "staff-8", "", at, note)
    assert log.verify().ok


def _decide_some(service: Underwriting) -> None:
    for day, changes in enumerate(
        [
            {},
            {"loan.amount": "150000.00"},
            {"loan.purpose": "speculation"},
            {
                "platform.on_time_share": 0.85,
                "bureau.inquiries_3m": 4,
                "bureau.inquiries_6m": 6,
                "bureau.inquiries_12m": 8,
            },
            {"consents.automated_decision": False},
        ]
    ):
        when = (date(2026, 10, 1) + timedelta(days=10 * day)).isoformat()
        service.decide(app_for(application_date=when, **changes))


def test_replay_finds_no_difference(service: Underwriting, settings: Settings) -> None:
    _decide_some(service)
    log: Any = service.log
    report = replay(
        log,
        service.vault,
        service.engine,
        service.model_sha256,
        date(2026, 1, 1),
        date(2026, 12, 31),
    )
    assert report.checked == 5
    assert report.ok, report.as_json()


def test_replay_notices_a_changed_engine(service: Underwriting, settings: Settings) -> None:
    _decide_some(service)
    log: Any = service.log
    changed_policy = service.engine.policy
    stricter = type(changed_policy.limits)(
        changed_policy.limits.affordability_share / 4,
        changed_policy.limits.step,
        changed_policy.limits.pd_curve,
    )
    from dataclasses import replace

    engine = replace(service.engine, policy=replace(changed_policy, limits=stricter))
    report = replay(
        log, service.vault, engine, service.model_sha256, date(2026, 1, 1), date(2026, 12, 31)
    )
    assert not report.ok
    assert any("limit" in d.fields for d in report.differences)


def test_backtest_against_a_tighter_pack(service: Underwriting, settings: Settings) -> None:
    _decide_some(service)
    challenger, _ = build_engine(settings, pack="cn-2026-tight")
    log: Any = service.log
    tally = backtest(
        log, service.vault, lambda _r: challenger, date(2026, 1, 1), date(2026, 12, 31)
    )
    report = tally.as_json()
    assert report["applications"] == 5
    assert report["swap_out"] >= 1  # the 21% loan no longer fits under 20%
    assert report["approval_rate"]["change"] < 0
    fires = {r["rule_id"]: r for r in report["rule_fires"]}
    assert any(r["challenger"] > r["baseline"] for r in fires.values())


def test_an_approved_offer_books_exactly_once(
    service: Underwriting, engine: Engine, catalog: ProductCatalog
) -> None:
    recorded = service.decide(app_for())
    offer = recorded.record["decision"]["offer"]
    loan = originate(SqlUnitOfWork(engine), catalog, recorded.record)
    again = originate(SqlUnitOfWork(engine), catalog, recorded.record)
    assert again.id == loan.id
    assert loan.contract.principal == Decimal(offer["amount"])
    assert loan.contract.annual_rate == Decimal(offer["annual_interest_rate"])
    booked = [(i.due_date.isoformat(), i.principal + i.interest + i.fee) for i in loan.installments]
    disclosed = [(i["due_date"], Decimal(i["total"])) for i in offer["schedule"]]
    assert booked == disclosed  # the borrower is charged exactly what was disclosed


def test_a_decline_cannot_be_booked(
    service: Underwriting, engine: Engine, catalog: ProductCatalog
) -> None:
    recorded = service.decide(app_for(**{"loan.purpose": "securities"}))
    with pytest.raises(Conflict):
        originate(SqlUnitOfWork(engine), catalog, recorded.record)

"""A flagged borrower's next application declines with policy reason P12, and replays.

The flag reaches the engine through the service's history port (`SqlUseOfFunds`), and the
record keeps it under `history.funds_misuse`, so replay re-decides with the same input even
after the flag table has changed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete

from example_app import payload
from lendstack.risk.surveillance import MerchantCategory, Transaction, default_pack
from lendstack.servicing import ProductCatalog
from lendstack.storage import schema
from lendstack.storage.decisions import prepare_entry
from lendstack.storage.use_of_funds import SqlUseOfFunds
from lendstack.underwriting.batch import BatchJob, decide_rows
from lendstack.underwriting.rerun import replay
from risk.monitoring_book import (
    DAY,
    Applicant,
    book,
    decide,
    pii_settings,
    resident_id,
    service_for,
)

PERSON = Applicant(True, date(1990, 1, 1), False)
OTHER = Applicant(False, date(1988, 5, 5), False)
LATER = DAY + timedelta(days=60)  # outside the 7-day duplicate window


def _flag(engine: Engine, loan_id: int, days: int = 4) -> None:
    at = datetime(DAY.year, DAY.month, DAY.day, 15, tzinfo=UTC) + timedelta(days=days)
    feed = [Transaction("gold-1", loan_id, at, Decimal("5000.00"), MerchantCategory.GOLD_TRADING)]
    assert SqlUseOfFunds(engine, default_pack()).ingest(feed, "api").flags


def _codes(record: Any) -> list[str]:
    return [r["code"] for r in record["decision"]["reasons"]]


def test_flagged_borrower_is_declined_with_p12_and_the_decision_replays(
    engine: Engine, catalog: ProductCatalog
) -> None:
    settings = pii_settings()
    service = service_for(settings, engine)
    first = decide(service, 1, PERSON)
    assert first.outcome == "APPROVE"
    loan_id = book(engine, catalog, first)
    _flag(engine, loan_id)

    again = decide(service, 1, PERSON, LATER)
    assert again.outcome == "DECLINE"
    assert "P12" in _codes(again.record)
    p12 = next(r for r in again.record["decision"]["reasons"] if r["code"] == "P12")
    assert p12["source"] == "policy"
    assert f"loan-{loan_id}" in p12["text"]
    assert again.record["history"]["funds_misuse"] == [f"loan-{loan_id}"]

    other = decide(service, 2, OTHER, LATER)  # another borrower is untouched
    assert other.outcome == "APPROVE"
    assert "funds_misuse" not in other.record["history"]

    # replay uses the recorded flag, not today's table: clear the table, replay still matches
    with engine.begin() as conn:
        conn.execute(delete(schema.funds_misuse_flags))
    report = replay(
        service.log,  # type: ignore[arg-type]
        service.vault,
        service.engine,
        service.model_sha256,
        DAY,
        LATER,
    )
    assert report.checked == 3
    assert report.ok, report.as_json()


def test_a_flag_raised_after_the_application_date_does_not_count(
    engine: Engine, catalog: ProductCatalog
) -> None:
    service = service_for(pii_settings(), engine)
    first = decide(service, 1, PERSON)
    loan_id = book(engine, catalog, first)
    _flag(engine, loan_id, days=80)  # the misuse happens on day 80
    early = decide(service, 1, PERSON, DAY + timedelta(days=30))
    assert "P12" not in _codes(early.record)
    late = decide(service, 1, PERSON, DAY + timedelta(days=81))
    assert "P12" in _codes(late.record)


def test_batch_deciding_reads_the_flags_once_and_dates_them_like_one_decision(
    engine: Engine, catalog: ProductCatalog
) -> None:
    """The batch path reads a chunk's flags in one query (`misuse_flags_many`) and keeps
    each row's flags dated on or before its application: the same P12 as `decide`."""
    service = service_for(pii_settings(), engine)
    loan_id = book(engine, catalog, decide(service, 1, PERSON))
    _flag(engine, loan_id, days=80)
    rows = [
        _row(1, PERSON, DAY + timedelta(days=30)),  # before the misuse
        _row(2, OTHER, LATER),
        _row(1, PERSON, DAY + timedelta(days=81)),  # after it
    ]
    job = BatchJob(service, prepare_entry, lambda: (service, prepare_entry))
    results = list(decide_rows(rows, job))
    flags = [(r.line.get("reasons") or []) for r in results]
    assert "P12" not in flags[0]
    assert "P12" not in flags[1]
    assert "P12" in flags[2]
    record = service.get(results[2].line["decision_id"]).record
    assert record["history"]["funds_misuse"] == [f"loan-{loan_id}"]


def _row(index: int, a: Applicant, on: date) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "applicant.resident_id": resident_id(index, a),
        "applicant.province": a.province,
        "application_date": on.isoformat(),
    }
    return payload(**changes)

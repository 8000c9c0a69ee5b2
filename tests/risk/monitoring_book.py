"""A small logged-and-booked population for the model-monitoring and use-of-funds tests.

Real decisions through the underwriting service (PII sealed), real bookings via `originate`,
and hand-written loan-month panel rows whose outcomes the tests choose, so every expected
figure is known without running the code under test.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, insert

from example_app import application as app_for
from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage import schema
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.underwriting.identity import make_resident_id
from lendstack.underwriting.origination import originate
from lendstack.underwriting.service import Recorded, Underwriting
from lendstack.wiring import underwriting_service

DAY = date(2026, 11, 2)


def pii_settings() -> Settings:
    return Settings(pii_key=base64.b64encode(os.urandom(32)).decode())


@dataclass(frozen=True, slots=True)
class Applicant:
    male: bool
    born: date
    forbidden: bool
    """Declared a forbidden purpose (securities): the rule pack declines it."""
    province: str = "Guangdong"


def resident_id(index: int, a: Applicant) -> str:
    sequence = (index * 2 + (1 if a.male else 0)) % 1000  # odd 3rd digit = male
    return make_resident_id("440305", a.born, sequence)


def decide(service: Underwriting, index: int, a: Applicant, on: date = DAY) -> Recorded:
    changes: dict[str, Any] = {
        "applicant.resident_id": resident_id(index, a),
        "applicant.province": a.province,
        "application_date": on.isoformat(),
    }
    if a.forbidden:
        changes["loan.purpose"] = "securities"
    return service.decide(app_for(**changes))


def book(engine: Engine, catalog: ProductCatalog, recorded: Recorded) -> int:
    return originate(SqlUnitOfWork(engine), catalog, recorded.record).id


def month_end(year: int, month: int) -> date:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def panel(engine: Engine, loan_id: int, months: int, bad_at: int | None) -> None:
    """Month-end rows for months on book 1..`months`; 95 DPD from `bad_at` on."""
    rows = []
    for mob in range(1, months + 1):
        y, m = divmod(DAY.month - 1 + mob, 12)
        bad = bad_at is not None and mob >= bad_at
        rows.append(
            {
                "loan_id": loan_id,
                "month_end": month_end(DAY.year + y, m + 1),
                "origination_month": date(DAY.year, DAY.month, 1),
                "months_on_book": mob,
                "state": "M3" if bad else "M0",
                "dpd": 95 if bad else 0,
                "principal_fen": 100,
                "risk_class": "normal",
                "product_id": "p",
                "funder": "platform",
                "province": "Guangdong",
                "channel": "app",
                "first_payment_default": False,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(schema.loan_month_ends), rows)


def service_for(settings: Settings, engine: Engine) -> Underwriting:
    return underwriting_service(settings, engine)

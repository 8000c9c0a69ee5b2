"""Shared test data for the audit-log tests (a module, so tests can import it)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from lendstack.underwriting.identity import make_resident_id

AT = datetime(2026, 11, 28, 9, 30, 0, 123456, tzinfo=UTC)
DAY = date(2026, 11, 28)
RESIDENT_ID = make_resident_id("110105", date(1990, 3, 7), 123)
NAME = "王小明"
MOBILE = "13812345678"


def application(name: str = NAME, resident_id: str = RESIDENT_ID) -> dict[str, Any]:
    return {
        "applicant": {
            "name": name,
            "resident_id": resident_id,
            "mobile": MOBILE,
            "province": "Beijing",
            "city": "Beijing",
        },
        "loan": {"amount": "5000.00", "term_months": 12},
        "channel": "app",
        "application_date": DAY.isoformat(),
    }

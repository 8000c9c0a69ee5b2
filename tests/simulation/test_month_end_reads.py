"""What a run's month-ends keep between them (`MonthEndReads`): the loan-month panel read one
month at a time is the panel read whole, also when a reversed payoff restates earlier rows."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from lendstack.servicing.services import reverse_payment
from lendstack.simulation import metrics
from lendstack.simulation.metrics import MonthEndReads
from lendstack.storage.analytics import read_panel
from lendstack.storage.repositories import SqlUnitOfWork
from risk.panel_book import REVERSAL, build_book, catalog_with_fast_charge_off

JAN, FEB, MAR, APR = date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)


def test_the_panel_read_month_by_month_is_the_panel_read_whole(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[date | None, date | None]] = []

    def spy(engine: Engine, through: date | None = None, since: date | None = None) -> Any:
        calls.append((through, since))
        return read_panel(engine, through, since)

    monkeypatch.setattr(metrics, "read_panel", spy)
    book = build_book(engine, catalog_with_fast_charge_off(tmp_path / "products"), MAR)
    reads = MonthEndReads()
    for month_end in (JAN, FEB, MAR):
        assert reads.read_panel(engine, month_end).equals(read_panel(engine, month_end))
    assert calls == [(JAN, None), (FEB, JAN + timedelta(days=1)), (MAR, FEB + timedelta(days=1))]
    # The February payoff is reversed in April: the close restates its February PO row (and
    # fills March), so the kept rows are stale and the panel is read whole again.
    book.close(REVERSAL - timedelta(days=1))
    reverse_payment(SqlUnitOfWork(engine), book.reversed_payment, REVERSAL)
    book.close(APR)
    calls.clear()
    panel = reads.read_panel(engine, APR)
    assert panel.equals(read_panel(engine, APR))
    assert calls == [(APR, MAR + timedelta(days=1)), (APR, None)]
    restated = panel.filter(panel["loan_id"] == book.ids["reversed"])
    assert restated["state"].to_list() == ["M0", "M1", "M2", "M3"]
    # no row after the last read: the panel is the one kept
    calls.clear()
    may = date(2026, 5, 31)
    assert reads.read_panel(engine, may).equals(panel)
    assert panel.equals(read_panel(engine, may))
    assert calls == [(may, APR + timedelta(days=1))]


def test_a_bank_near_its_concentration_limit_raises_a_partner_headroom_alert(
    engine: Engine, tmp_path: Path
) -> None:
    """A month-end's alerts include each bank's concentration headroom (1 − its use of the
    rule-2.2 limit): 96% used is critical (at most 5% left), 50% is no alert."""
    build_book(engine, catalog_with_fast_charge_off(tmp_path / "products"), MAR)
    headroom = metrics.headroom_of({"bank-a": 0.96, "bank-b": 0.5, "bank-c": 0.92})
    assert headroom == {"bank-a": 0.04, "bank-b": 0.5, "bank-c": 0.08}
    thresholds = metrics.default_thresholds()
    found = metrics._alerts(engine, MAR, {}, thresholds, None, headroom)
    assert "partner_headroom:critical" in found
    assert "partner_headroom:warn" in found  # bank-c: 8% left
    assert not any(a.startswith("partner_headroom") for a in
                   metrics._alerts(engine, MAR, {}, thresholds, None, {"bank-b": 0.5}))  # fmt: skip

"""Stored early-warning alerts (`risk_alerts`) and `lendstack risk alerts`.

Storage: recording the same alerts twice keeps one row per alert id, and a re-run that raises
an alert's severity rewrites the row (keeping when it was first raised). The command runs on
an exported synthetic panel with a planted default spike (the book of test_alerts.py), so the
vintage alert is known to fire, critical, at 2025-02-28. Runs on SQLite and, when configured,
on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cli_runner import Run
from lendstack.cli.risk_analytics import partner_headroom
from lendstack.funding import builtin_partners
from lendstack.risk.alerts import Alert, Metric, Severity
from lendstack.risk.synthetic_panel import PanelSpec, Spike, generate_panel
from lendstack.storage.alerts import SqlAlerts, approval_rates
from lendstack.storage.decisions import SqlDecisionLog
from lendstack.storage.funding import SqlFunding
from lendstack.storage.schema import risk_alerts

# One worker builds the module's shared fixture (xdist would build it on each).
pytestmark = pytest.mark.xdist_group("alerts-panel")

SPIKE = date(2024, 11, 1)
MEASURABLE = date(2025, 2, 28)
LAST = date(2025, 6, 30)
BOOK = PanelSpec(cohorts=18, months=18, loans_per_cohort=4_000, seed=3, spikes=(Spike(SPIKE, 3.0),))
VINTAGE_ID = f"vintage_mob3:{MEASURABLE}"


def alert(severity: Severity = Severity.WARN, value: float = 1.6, **kw: object) -> Alert:
    fields: dict[str, object] = {
        "metric": Metric.VINTAGE_MOB3, "severity": severity, "value": value,
        "threshold": 1.5 if severity is Severity.WARN else 2.0, "period": MEASURABLE,
        "cohorts": (SPIKE,), "loan_ids": (3, 5, 8), "loan_count": 3,
    }  # fmt: skip
    fields.update(kw)
    return Alert(**fields)  # type: ignore[arg-type]


def rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(risk_alerts)).scalar_one())


# --- storage -----------------------------------------------------------------------------


def test_recording_twice_keeps_one_row_per_alert(engine: Engine) -> None:
    store = SqlAlerts(engine)
    headroom = Alert(
        Metric.PARTNER_HEADROOM, Severity.CRITICAL, 0.04, 0.05, MEASURABLE, subject="big-bank"
    )
    first = store.record([alert(), headroom])
    assert set(first.new) == {VINTAGE_ID, f"partner_headroom:{MEASURABLE}:big-bank"}
    again = store.record([alert(), headroom])
    assert again.new == ()
    assert again.raised == ()
    assert set(again.unchanged) == set(first.new)
    assert rows(engine) == 2
    stored = {a.id: a for a in store.list()}
    assert stored[VINTAGE_ID].alert == alert().as_json()
    assert stored[VINTAGE_ID].period == MEASURABLE
    with engine.connect() as conn:
        row = conn.execute(select(risk_alerts).where(risk_alerts.c.id == VINTAGE_ID)).one()
    assert float(row.measured) == 1.6
    assert float(row.threshold) == 1.5
    assert row.cohorts == '["2024-11-01"]'
    assert row.loans == '{"ids": [3, 5, 8], "count": 3}'


def test_a_raised_severity_updates_the_row_and_a_milder_one_does_not(engine: Engine) -> None:
    store = SqlAlerts(engine)
    store.record([alert()])
    (before,) = store.list()
    raised = store.record([alert(Severity.CRITICAL, 2.4)])
    assert raised.raised == (VINTAGE_ID,)
    (after,) = store.list()
    assert after.severity == "critical"
    assert after.alert["value"] == 2.4
    assert after.alert["threshold"] == 2.0
    assert after.first_raised_at == before.first_raised_at
    assert after.updated_at >= before.updated_at
    milder = store.record([alert()])
    assert milder.unchanged == (VINTAGE_ID,)
    assert store.list()[0].severity == "critical"
    assert rows(engine) == 1


def test_list_filters_by_period_and_severity(engine: Engine) -> None:
    store = SqlAlerts(engine)
    store.record([alert(), alert(Severity.CRITICAL, 2.2, period=LAST)])
    assert [a.id for a in store.list()] == [VINTAGE_ID, f"vintage_mob3:{LAST}"]
    assert [a.id for a in store.list(since=date(2025, 3, 1))] == [f"vintage_mob3:{LAST}"]
    assert [a.id for a in store.list(severity="critical")] == [f"vintage_mob3:{LAST}"]
    assert len(store.list(severity="warn")) == 2


# --- the command -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spiked_panel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("panel") / "spiked.parquet"
    generate_panel(BOOK).write_parquet(path)
    return path


def test_the_spike_is_raised_stored_and_not_duplicated(cli: Run, spiked_panel: Path) -> None:
    argv = ("risk", "alerts", "--panel", str(spiked_panel), "--month-end", str(MEASURABLE))
    done = cli(*argv, "--format", "json")
    assert done.exit_code == 0, done.output
    data = done.json()
    assert data["month_end"] == str(MEASURABLE)
    by_id = {a["id"]: a for a in data["alerts"]}
    vintage = by_id[VINTAGE_ID]
    assert vintage["severity"] == "critical"
    assert vintage["cohorts"] == [str(SPIKE)]
    assert vintage["loan_count"] > 0
    assert VINTAGE_ID in data["recorded"]["new"]

    again = cli(*argv, "--format", "json").json()
    assert again["recorded"]["new"] == []
    assert set(again["recorded"]["unchanged"]) == set(by_id)

    listed = cli("risk", "alerts", "--list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    assert [a["id"] for a in listed.json()["alerts"]].count(VINTAGE_ID) == 1
    assert len(listed.json()["alerts"]) == len(by_id)
    table = cli("risk", "alerts", "--list", "--severity", "critical")
    assert table.exit_code == 0
    assert VINTAGE_ID in table.stdout


def test_the_default_month_end_is_the_panels_last(cli: Run, spiked_panel: Path) -> None:
    done = cli("risk", "alerts", "--panel", str(spiked_panel), "--format", "json")
    assert done.exit_code == 0, done.output
    assert done.json()["month_end"] == str(LAST)
    assert all(a["period"] == str(LAST) for a in done.json()["alerts"])


def test_bad_thresholds_exit_2_and_store_nothing(
    cli: Run, engine: Engine, spiked_panel: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[vintage]\nwarn_ratio = "high"\n', encoding="utf-8")
    done = cli("risk", "alerts", "--panel", str(spiked_panel), "--thresholds", str(bad))
    assert done.exit_code == 2
    assert "thresholds.vintage.warn_ratio" in done.output
    assert rows(engine) == 0


def test_no_month_end_rows_is_a_clear_error(cli: Run, engine: Engine, spiked_panel: Path) -> None:
    empty = cli("risk", "alerts")
    assert empty.exit_code == 3
    assert "date" in empty.output
    assert "month-end" in empty.output
    missing = cli("risk", "alerts", "--panel", str(spiked_panel), "--month-end", "2026-01-31")
    assert missing.exit_code == 3
    assert "month_end" in missing.output
    not_last = cli("risk", "alerts", "--panel", str(spiked_panel), "--month-end", "2025-02-27")
    assert not_last.exit_code == 2
    assert "month_end" in not_last.output
    assert rows(engine) == 0


def test_partner_headroom_comes_from_funding(
    cli: Run, engine: Engine, spiked_panel: Path, tmp_path: Path
) -> None:
    funding = SqlFunding(engine)
    for partner in builtin_partners():
        if partner.id in ("platform", "big-state-bank"):
            funding.add(partner)
    # No loans yet: the bank's whole tier-1 room is unused; the platform has no limit.
    assert partner_headroom(engine, MEASURABLE) == {"big-state-bank": 1.0}
    strict = tmp_path / "strict.toml"
    strict.write_text("[partner_headroom]\nwarn = 1.0\ncritical = 1.0\n", encoding="utf-8")
    argv = ("--panel", str(spiked_panel), "--month-end", str(MEASURABLE), "--format", "json")
    done = cli("risk", "alerts", "--thresholds", str(strict), *argv)
    assert done.exit_code == 0, done.output
    (room,) = [a for a in done.json()["alerts"] if a["metric"] == "partner_headroom"]
    assert room["id"] == f"partner_headroom:{MEASURABLE}:big-state-bank"
    assert room["subject"] == "big-state-bank"
    assert room["severity"] == "critical"


# -- approval rates from the decision log ------------------------------------------------------


def test_monthly_approval_rates_come_from_the_decision_log(engine: Engine) -> None:
    log = SqlDecisionLog(engine)
    rows = [  # (application date, kind, outcome)
        (date(2026, 1, 5), "decision", "APPROVE"),
        (date(2026, 1, 20), "decision", "DECLINE"),
        (date(2026, 1, 21), "decision", "COUNTER_OFFER"),
        (date(2026, 1, 21), "decision", "REFER"),
        (date(2026, 1, 22), "review", "APPROVE"),  # a review resolution is not a decision
        (date(2026, 2, 3), "decision", "DECLINE"),
        (date(2026, 3, 1), "decision", "APPROVE"),  # after `through`
    ]
    for i, (day, kind, outcome) in enumerate(rows):
        log.append(kind, f"d-{i}", "app", day, outcome, "b", None, None, None, {"i": i},
                   datetime(2026, 3, 2, tzinfo=UTC))  # fmt: skip
    assert approval_rates(engine, date(2026, 2, 28)) == {
        date(2026, 1, 1): 2 / 4,
        date(2026, 2, 1): 0.0,
    }

"""Stored early-warning alerts: `risk_alerts`, one row per alert id (docs/early-warning.md).

`SqlAlerts.record(alerts)` is idempotent: an alert's `id` is stable across re-runs of a
month-end (metric, period and, for headroom, the partner), so recording the same evaluation
again inserts nothing. A row keeps the severest version seen: when a re-run raises an alert's
severity (warn → critical, say after a late close changed the panel, or with stricter
thresholds) the row is rewritten with the new figures and `updated_at`; a re-run at the same
or a milder severity leaves it as it was. `first_raised_at` is when the id was first stored.
All of it happens in one transaction, so a failed record writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from lendstack.core.errors import ValidationError
from lendstack.risk.alerts import Alert, Severity
from lendstack.storage.calendar import as_date
from lendstack.storage.repositories import now
from lendstack.storage.schema import decision_log, risk_alerts

_RANK = {Severity.WARN.value: 1, Severity.CRITICAL.value: 2}


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """A stored alert: the alert's JSON as recorded, and when it was first and last stored."""

    id: str
    severity: str
    period: date
    first_raised_at: datetime
    updated_at: datetime
    alert: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            **self.alert,
            "first_raised_at": self.first_raised_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `record` did, by alert id: stored for the first time, severity raised, or kept."""

    new: tuple[str, ...]
    raised: tuple[str, ...]
    unchanged: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "new": list(self.new),
            "raised": list(self.raised),
            "unchanged": list(self.unchanged),
        }


def _row(alert: Alert) -> dict[str, Any]:
    data = alert.as_json()
    return {
        "id": alert.id,
        "metric": alert.metric.value,
        "severity": alert.severity.value,
        "period": alert.period,
        "subject": alert.subject,
        "measured": repr(float(alert.value)),
        "threshold": repr(float(alert.threshold)),
        "cohorts": json.dumps(data["cohorts"]),
        "loans": json.dumps({"ids": data["loan_ids"], "count": alert.loan_count}),
        "alert_json": json.dumps(data, sort_keys=True),
    }


def _aware(value: Any) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class SqlAlerts:
    """The risk_alerts table. Each call is its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, alerts: Iterable[Alert]) -> Recorded:
        """Store new alerts, raise the severity of stored ones that rose; see the module doc."""
        rows: dict[str, dict[str, Any]] = {}
        for alert in alerts:
            row = _row(alert)
            kept = rows.get(alert.id)
            if kept is not None and _RANK[kept["severity"]] >= _RANK[row["severity"]]:
                continue
            rows[alert.id] = row
        try:
            return self._record(rows)
        except IntegrityError:  # a concurrent record stored one of the ids first: go again
            return self._record(rows)

    def _record(self, rows: dict[str, dict[str, Any]]) -> Recorded:
        new: list[str] = []
        raised: list[str] = []
        unchanged: list[str] = []
        stamp = now()
        with self.engine.begin() as conn:
            stored = _severities(conn, list(rows))
            fresh = [
                {**row, "first_raised_at": stamp, "updated_at": stamp}
                for alert_id, row in rows.items()
                if stored.get(alert_id) is None
            ]
            if fresh:  # the new alerts in one statement (a month-end raises dozens)
                conn.execute(insert(risk_alerts), fresh)
            for alert_id, row in rows.items():
                before = stored.get(alert_id)
                if before is None:
                    new.append(alert_id)
                elif _RANK[row["severity"]] > _RANK.get(before, 0):
                    changes = {k: v for k, v in row.items() if k != "id"}
                    conn.execute(
                        update(risk_alerts)
                        .where(risk_alerts.c.id == alert_id)
                        .values(**changes, updated_at=stamp)
                    )
                    raised.append(alert_id)
                else:
                    unchanged.append(alert_id)
        return Recorded(tuple(new), tuple(raised), tuple(unchanged))

    def get(self, ids: Iterable[str]) -> tuple[StoredAlert, ...]:
        """The stored alerts with these ids, in period then id order."""
        wanted = list(ids)
        if not wanted:
            return ()
        query = select(risk_alerts).where(risk_alerts.c.id.in_(wanted))
        return self._fetch(query)

    def list(
        self, since: date | None = None, severity: str | None = None
    ) -> tuple[StoredAlert, ...]:
        """Stored alerts with period on or after `since`, at `severity` or worse (`warn` is all).

        An unknown severity is a `ValidationError` naming `severity`.
        """
        query = select(risk_alerts)
        if since is not None:
            query = query.where(risk_alerts.c.period >= since)
        if severity is not None:
            if severity not in _RANK:
                raise ValidationError(
                    f"must be one of {sorted(_RANK)}, got {severity!r}", field="severity"
                )
            worse = [s for s, rank in _RANK.items() if rank >= _RANK[severity]]
            query = query.where(risk_alerts.c.severity.in_(worse))
        return self._fetch(query)

    def _fetch(self, query: Any) -> tuple[StoredAlert, ...]:
        with self.engine.connect() as conn:
            result = conn.execute(query.order_by(risk_alerts.c.period, risk_alerts.c.id))
            return tuple(
                StoredAlert(
                    row.id,
                    row.severity,
                    as_date(row.period) or date.min,
                    _aware(row.first_raised_at),
                    _aware(row.updated_at),
                    json.loads(row.alert_json),
                )
                for row in result
            )


GRANTED_OUTCOMES = ("APPROVE", "COUNTER_OFFER")


def approval_rates(engine: Engine, through: date) -> dict[date, float]:
    """Each month's approval rate from the decision log, for the "approvals so easy" alert:
    granted (APPROVE or COUNTER_OFFER) over all decisions by application date, keyed by the
    month's first day, up to `through`. Review resolutions are not decisions and are left
    out. Counted per day in SQL (portable) and summed per month here; months without
    decisions are absent, so the alert skips them."""
    granted = func.sum(case((decision_log.c.outcome.in_(GRANTED_OUTCOMES), 1), else_=0))
    query = (
        select(decision_log.c.application_date, func.count(), granted)
        .where(decision_log.c.kind == "decision", decision_log.c.application_date <= through)
        .group_by(decision_log.c.application_date)
    )
    totals: dict[date, list[int]] = {}
    with engine.connect() as conn:
        for day, count, approved in conn.execute(query):
            month = as_date(day).replace(day=1)
            acc = totals.setdefault(month, [0, 0])
            acc[0] += int(count)
            acc[1] += int(approved or 0)
    return {month: approved / count for month, (count, approved) in sorted(totals.items())}


def _severities(conn: Connection, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    query = select(risk_alerts.c.id, risk_alerts.c.severity).where(risk_alerts.c.id.in_(ids))
    return {row.id: row.severity for row in conn.execute(query)}


__all__ = ["Recorded", "SqlAlerts", "StoredAlert"]

"""The close's `month_end` step: the loan-month panel of `lendstack.risk.panel`, from the book.

Every close records the loans whose installment 1 has just reached 30+ DPD
(`first_payment_defaults`): one statement over the loans already 30+ DPD, read through the
(status, dpd) index. That is the panel's first-payment-default flag, taken on the day it
happens, so a first installment paid 35 days late and cured before the month-end still counts.

On the last day of a month the step also writes `loan_month_ends`, set-based, in the close's
transaction (a killed close leaves none of it):
- one row per loan on the books at the month-end (status active, disbursed by then), with its
  DPD, outstanding principal and risk class as the day's close left them;
- one last row for each loan that left the books during the month (`closed_on` in the month):
  `PO` for a payoff (principal 0, DPD 0, class normal: nothing is owed), `CO` otherwise
  (charged off, and in future written off or sold), with the DPD and class it was charged off
  at and the *principal* written off: the unpaid principal of its schedule, which a
  charge-off leaves untouched (`loans.charged_off_fen` also holds interest, fees and penalty).

The state is the DPD's bucket, M0 … M5 and M6+ (ceil(dpd / 30) capped at 6: the servicing
buckets with M6 and M7+ folded together). Origination month and months on book come from a
CASE over the month starts the book spans, compared with the loan's disbursement date: only
date comparisons with bound dates, so the SQL is the same on SQLite and PostgreSQL. The
dimensions come from `loan_profiles` (written at booking), the lead funder from the profile or
else the funding plan's largest share, else `platform`; loans with no profile say `unknown`.

A payoff reversed after its month-end row was written would leave rows after a `PO` row. At
the next month-end that row is restated as an on-book row (and any month-end the loan missed
while it looked paid off is filled in): DPD from the loan's oldest unpaid due date as it is
now, principal = unpaid principal now + principal paid since that month-end, class from the
default profile. Reversed payoffs are rare, so this runs loan by loan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, text

from lendstack.core.errors import InvariantViolation
from lendstack.risk.panel import BUCKET_WIDTH, BUCKETS, State, bucket_index, month_end_after
from lendstack.servicing.domain.delinquency import RiskClass, default_profile
from lendstack.storage.calendar import as_date
from lendstack.storage.mapping import to_day

PLATFORM = "platform"
"""The panel's funder for a loan with no funding plan: the platform funds it alone."""
UNKNOWN = "unknown"
"""The panel's province and channel for a loan booked without a decision."""
FPD_DPD = 30

COLUMNS = (
    "loan_id, month_end, origination_month, months_on_book, state, dpd, principal_fen,"
    " risk_class, product_id, funder, province, channel, first_payment_default"
)
UNPAID_PRINCIPAL = (
    "(SELECT CAST(COALESCE(SUM(i.principal_fen - i.paid_principal_fen), 0) AS BIGINT)"
    " FROM installments i WHERE i.loan_id = l.id AND i.version = l.schedule_version)"
)
LEAD_FROM_PLAN = (
    "(SELECT p.funder_id FROM funding_plans p WHERE p.loan_id = l.id"
    " ORDER BY CAST(p.share AS NUMERIC) DESC, p.funder_id LIMIT 1)"
)
DIMENSIONS = (
    f"l.product_id, COALESCE(f.lead_funder_id, {LEAD_FROM_PLAN}, '{PLATFORM}'),"
    f" COALESCE(f.province, '{UNKNOWN}'), COALESCE(f.channel, '{UNKNOWN}'),"
    " EXISTS (SELECT 1 FROM first_payment_defaults x WHERE x.loan_id = l.id)"
)
FIRST_DUE = (
    "(SELECT i.due_day FROM installments i WHERE i.loan_id = l.id"
    " AND i.version = l.schedule_version AND i.number = 1)"
)
PROFILED = "loans l LEFT JOIN loan_profiles f ON f.loan_id = l.id"
ON_BOOKS = "l.status = 'active' AND l.disbursement_date <= :d"
LEFT = "l.closed_on >= :first AND l.closed_on <= :d AND l.status <> 'active'"
PAID_OFF = "l.status = 'paid_off'"


def is_month_end(day: date) -> bool:
    return (day + timedelta(days=1)).day == 1


def close_month_end(conn: Connection, day: date) -> int:
    """The step: first-payment defaults every day, the panel's rows on a month-end."""
    rows = record_first_payment_defaults(conn, day)
    if not is_month_end(day):
        return rows
    first = day.replace(day=1)
    rows += restate_reversed_payoffs(conn, first, day)
    months = _month_starts(conn, first, day)
    params = {"d": day, "first": first, **{f"m{k}": m for k, m in enumerate(months)}}
    origination, mob = _by_month(months, lambda k: f":m{k}"), _by_month(months, str)
    on_books = (
        f"SELECT l.id, :d, {origination}, {mob}, {state_of('l.dpd')}, l.dpd, l.bal_principal,"
        f" l.risk_class, {DIMENSIONS} FROM {PROFILED} WHERE {ON_BOOKS}"
    )
    exits = (
        f"SELECT l.id, :d, {origination}, {mob},"
        f" CASE WHEN {PAID_OFF} THEN '{State.PAID_OFF.value}' ELSE '{State.CHARGED_OFF.value}' END,"
        f" CASE WHEN {PAID_OFF} THEN 0 ELSE l.dpd END,"
        f" CASE WHEN {PAID_OFF} THEN 0 ELSE {UNPAID_PRINCIPAL} END,"
        f" CASE WHEN {PAID_OFF} THEN '{RiskClass.NORMAL.value}' ELSE l.risk_class END,"
        f" {DIMENSIONS} FROM {PROFILED} WHERE {LEFT}"
    )
    # OR FAIL on SQLite: no statement journal of the panel index pages the rows land on (see
    # `storage.cob._update`; a failure ends the close's transaction either way).
    into = "INSERT OR FAIL INTO" if conn.dialect.name == "sqlite" else "INSERT INTO"
    for select in (on_books, exits):
        insert = f"{into} loan_month_ends ({COLUMNS}) {select}"
        rows += int(conn.execute(text(insert), params).rowcount)
    return rows


def record_first_payment_defaults(conn: Connection, day: date) -> int:
    """Loans whose oldest unpaid installment is installment 1 and is 30+ DPD, first time.

    `dpd` and `oldest_due` are the aging step's (grace included), so this is exactly "installment
    1 has been 30+ DPD". Only loans already 30+ DPD are read (the status/dpd index).
    """
    result = conn.execute(
        text(
            "INSERT INTO first_payment_defaults (loan_id, business_date)"
            " SELECT l.id, :day FROM loans l JOIN installments i ON i.loan_id = l.id"
            " AND i.version = l.schedule_version AND i.number = 1"
            f" WHERE l.status = 'active' AND l.dpd >= {FPD_DPD} AND l.oldest_due = i.due_day"
            " AND NOT EXISTS (SELECT 1 FROM first_payment_defaults x WHERE x.loan_id = l.id)"
        ),
        {"day": day},
    )
    return int(result.rowcount)


def state_of(dpd: str) -> str:
    """The panel state of a DPD expression: M0 at 0, Mk for 30k−29 … 30k, M6+ beyond 150."""
    arms = " ".join(
        f"WHEN {dpd} <= {BUCKET_WIDTH * k} THEN '{label}'" for k, label in enumerate(BUCKETS[:-1])
    )
    return f"(CASE {arms} ELSE '{BUCKETS[-1]}' END)"


def _by_month(months: list[date], then: Callable[[int], str]) -> str:
    """CASE over month starts, newest first: `then(k)` for a loan disbursed in month k back."""
    arms = " ".join(f"WHEN l.disbursement_date >= :m{k} THEN {then(k)}" for k in range(len(months)))
    return f"(CASE {arms} END)"


def _month_starts(conn: Connection, first: date, day: date) -> list[date]:
    """First days of the months from this one back to the earliest disbursement on the panel."""
    earliest = [first]
    for where in (ON_BOOKS, LEFT):
        found = conn.execute(
            text(f"SELECT MIN(l.disbursement_date) FROM loans l WHERE {where}"),
            {"d": day, "first": first},
        ).scalar()
        if (value := as_date(found)) is not None:
            earliest.append(value)
    oldest = min(earliest)
    count = (first.year - oldest.year) * 12 + first.month - oldest.month + 1
    return [_months_before(first, k) for k in range(count)]


def _months_before(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


# --- reversed payoffs -------------------------------------------------------------------


def restate_reversed_payoffs(conn: Connection, first: date, day: date) -> int:
    """Turn `PO` rows of loans back on the books into on-book rows; fill the months missed.

    The payoff rows are read through their partial index (0019_close_speed), by loan and
    month-end (the order the loans are restated in), not through every month-end row of every
    loan on the books.
    """
    stale = conn.execute(
        text(
            f"SELECT r.loan_id, r.month_end, r.origination_month, r.months_on_book"
            f" FROM loan_month_ends r WHERE r.state = '{State.PAID_OFF.value}'"
            " AND r.month_end < :first AND r.loan_id IN ("
            " SELECT l.id FROM loans l WHERE l.status = 'active' UNION ALL"
            f" SELECT l.id FROM loans l WHERE {LEFT}) ORDER BY r.loan_id, r.month_end"
        ),
        {"first": first, "d": day},
    ).all()
    written = 0
    for loan_id, month_end, origination, mob in stale:
        ends = _month_ends(_a_date(month_end), first)
        written += _restate(conn, loan_id, ends, _a_date(origination), mob)
    return written


def _a_date(value: Any) -> date:
    day = as_date(value)
    if day is None:
        raise InvariantViolation("a loan_month_ends date is null")
    return day


def _month_ends(start: date, first: date) -> list[date]:
    """Month-ends from `start` up to the one before `first`."""
    ends, current = [], start
    while current < first:
        ends.append(current)
        current = month_end_after(current.replace(day=1), 1)
    return ends


def _restate(conn: Connection, loan_id: int, ends: list[date], origination: date, mob: int) -> int:
    loan = conn.execute(
        text(
            f"SELECT l.oldest_due, l.grace_days, {UNPAID_PRINCIPAL}, {FIRST_DUE}"
            " FROM loans l WHERE l.id = :lid"
        ),
        {"lid": loan_id},
    ).one()
    for offset, month_end in enumerate(ends):
        values = {
            "lid": loan_id,
            "me": month_end,
            "po": ends[0],
            "origination": origination,
            "mob": mob + offset,
            **_state_then(conn, loan_id, month_end, loan),
        }
        if offset == 0:
            conn.execute(text(_RESTATE), values)
        else:
            conn.execute(text(_FILL), values)
    return len(ends)


def _state_then(conn: Connection, loan_id: int, month_end: date, loan: Any) -> dict[str, Any]:
    """The loan at an earlier month-end, from what it owes now and what it has paid since."""
    oldest_due, grace_days, unpaid, first_due = loan
    me = to_day(month_end)
    late = oldest_due is not None and oldest_due + grace_days < me
    dpd = me - oldest_due if late else 0
    first_late = dpd >= FPD_DPD and oldest_due == first_due
    paid = conn.execute(
        text(
            "SELECT applied FROM payments WHERE loan_id = :lid AND status = 'posted'"
            " AND value_date > :me"
        ),
        {"lid": loan_id, "me": month_end},
    ).scalars()
    since = sum(int(json.loads(body).get("principal", 0)) for body in paid)
    return {
        "state": BUCKETS[bucket_index(dpd)],
        "dpd": dpd,
        "principal": int(unpaid) + since,
        "risk_class": default_profile().classify(dpd).value,
        "fpd": first_late,
    }


_RESTATE = (
    "UPDATE loan_month_ends SET state = :state, dpd = :dpd, principal_fen = :principal,"
    " risk_class = :risk_class, first_payment_default = (first_payment_default OR :fpd)"
    " WHERE loan_id = :lid AND month_end = :me"
)
_FILL = (
    f"INSERT INTO loan_month_ends ({COLUMNS})"
    " SELECT r.loan_id, :me, :origination, :mob, :state, :dpd, :principal, :risk_class,"
    " r.product_id, r.funder, r.province, r.channel, (r.first_payment_default OR :fpd)"
    " FROM loan_month_ends r WHERE r.loan_id = :lid AND r.month_end = :po"
)

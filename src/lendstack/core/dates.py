"""Calendar arithmetic for monthly loan schedules.

Due dates are always computed from the *anchor* (the disbursement date), never from the previous
due date: stepping 31 Jan → 29 Feb → 29 Mar would drift, anchoring gives 31 Jan → 29 Feb → 31 Mar.
No clock lives here; business dates come from arguments.
"""

from __future__ import annotations

import calendar
from datetime import date

from lendstack.core.errors import ValidationError

_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def last_day_of_month(year: int, month: int) -> int:
    """Number of days in the month (28–31); a table lookup, as schedules call it per period."""
    if month == 2 and calendar.isleap(year):
        return 29
    return _MONTH_DAYS[month - 1]


def is_month_end(d: date) -> bool:
    return d.day == last_day_of_month(d.year, d.month)


def add_months(anchor: date, months: int) -> date:
    """`anchor` moved by whole months, the day clamped to the target month's end.

    add_months(2024-01-31, 1) == 2024-02-29 and add_months(2024-01-31, 2) == 2024-03-31,
    because the day is taken from the anchor each time, not from the previous result.
    """
    index = anchor.year * 12 + (anchor.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    if not 1 <= year <= 9999:
        raise ValidationError(f"{anchor} + {months} months leaves the calendar", field="months")
    return date(year, month, min(anchor.day, last_day_of_month(year, month)))


def months_between(start: date, end: date) -> int:
    """Whole calendar months from `start` to `end`, ignoring the day of month."""
    return (end.year - start.year) * 12 + (end.month - start.month)


def first_period_after(anchor: date, after: date) -> int:
    """The smallest k ≥ 1 with add_months(anchor, k) > after.

    Anchored dates are strictly increasing in k, so we can start from the month difference and
    step forward at most once or twice instead of walking from the anchor.
    """
    k = max(1, months_between(anchor, after))
    while k > 1 and add_months(anchor, k - 1) > after:
        k -= 1
    while add_months(anchor, k) <= after:
        k += 1
    return k


def due_dates(anchor: date, count: int, after: date | None = None) -> tuple[date, ...]:
    """`count` anchored monthly dates strictly after `after` (default: the anchor itself).

    A loan rescheduled mid-period passes its original anchor and the restart date as `after`,
    so the tail keeps the original due dates and its first period may be a stub.
    """
    if count < 0:
        raise ValidationError(f"must be >= 0, got {count}", field="count")
    start = first_period_after(anchor, anchor if after is None else after)
    return tuple(add_months(anchor, start + i) for i in range(count))


def periods_between(anchor: date, after: date, end: date) -> int:
    """How many anchored dates d satisfy after < d <= end."""
    if end <= after:
        return 0
    first = first_period_after(anchor, after)
    last = first_period_after(anchor, end) - 1
    return max(0, last - first + 1)

"""Day-count conventions: how many days a period has, and how long a year is.

The issue forbids a hard-coded 365: every product names its convention, and everything that turns
an annual rate into money for a span of days goes through here. Fractions are exact `Decimal`
ratios; `simple_interest` multiplies before it divides so that no intermediate rounding leaks in.

30/360 is the US (NASD/SIA "bond basis with end-of-month rule") variant:

* if the start is the last day of February, D1 = 30;
* if the start and end are both the last day of February, D2 = 30;
* if D1 is 31, D1 = 30;
* if D2 is 31 and D1 (after the rules above) is 30 or 31, D2 = 30;
* days = 360·(Y2 − Y1) + 30·(M2 − M1) + (D2 − D1).

We chose it over plain ISDA bond basis because lendstack's due dates are month-end anchored
(31 Jan → 29 Feb → 31 Mar): with the February rule, 29 Feb → 31 Mar counts a full 30 days.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from lendstack.core.dates import last_day_of_month


class DayCount(StrEnum):
    """The conventions a product may choose; the value is the name printed in documents."""

    ACT_365F = "ACT/365F"
    ACT_360 = "ACT/360"
    THIRTY_360 = "30/360"


_YEAR_DAYS = {DayCount.ACT_365F: 365, DayCount.ACT_360: 360, DayCount.THIRTY_360: 360}


def year_days(dc: DayCount) -> int:
    """The denominator of the convention; daily penalty interest is `rate / year_days(dc)`."""
    return _YEAR_DAYS[dc]


def _is_last_of_february(d: date) -> bool:
    return d.month == 2 and d.day == last_day_of_month(d.year, 2)


def _thirty_360_days(start: date, end: date) -> int:
    d1, d2 = start.day, end.day
    if _is_last_of_february(start):
        if _is_last_of_february(end):
            d2 = 30
        d1 = 30
    if d1 == 31:
        d1 = 30
    if d2 == 31 and d1 >= 30:
        d2 = 30
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def day_count_days(dc: DayCount, start: date, end: date) -> int:
    """Days in [start, end) under the convention: the numerator of the year fraction.

    Negative when `end` precedes `start`, so that fractions stay additive.
    """
    if dc == DayCount.THIRTY_360:
        if end < start:
            return -_thirty_360_days(end, start)
        return _thirty_360_days(start, end)
    return (end - start).days


def year_fraction(dc: DayCount, start: date, end: date) -> Decimal:
    """Length of [start, end) in years under the convention, as an exact-as-possible Decimal."""
    return Decimal(day_count_days(dc, start, end)) / Decimal(year_days(dc))


def simple_interest(
    amount: Decimal, annual_rate: Decimal, dc: DayCount, start: date, end: date
) -> Decimal:
    """Unrounded simple interest on `amount` for [start, end).

    Multiplies first and divides once, so the only inexactness is the final division;
    callers round the result to the fen with the product's rounding mode.
    """
    days = day_count_days(dc, start, end)
    return amount * annual_rate * Decimal(days) / Decimal(year_days(dc))

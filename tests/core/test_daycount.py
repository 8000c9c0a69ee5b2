"""Day counts: ACT/365F, ACT/360 and US 30/360 with the February end-of-month rule."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.daycount import (
    DayCount,
    day_count_days,
    simple_interest,
    year_days,
    year_fraction,
)

dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))


def test_year_days_are_the_convention_denominators() -> None:
    assert [year_days(dc) for dc in DayCount] == [365, 360, 360]


def test_actual_conventions_count_calendar_days() -> None:
    start, end = date(2024, 1, 1), date(2025, 1, 1)
    assert year_fraction(DayCount.ACT_365F, start, end) == Decimal(366) / Decimal(365)
    assert year_fraction(DayCount.ACT_360, start, end) == Decimal(366) / Decimal(360)


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (date(2024, 1, 15), date(2024, 2, 15), 30),
        (date(2024, 1, 31), date(2024, 2, 29), 29),
        (date(2024, 2, 29), date(2024, 3, 31), 30),  # February end counts as the 30th
        (date(2023, 2, 28), date(2023, 3, 31), 30),
        (date(2024, 2, 28), date(2024, 3, 28), 30),  # 28 Feb 2024 is not month end
        (date(2024, 2, 29), date(2025, 2, 28), 360),  # both February ends
        (date(2024, 1, 30), date(2024, 3, 31), 60),
        (date(2024, 3, 31), date(2024, 4, 30), 30),
        (date(2023, 12, 31), date(2024, 1, 31), 30),
        (date(2024, 1, 1), date(2025, 1, 1), 360),
        (date(2024, 5, 15), date(2024, 5, 15), 0),
    ],
)
def test_thirty_360_us_rules(start: date, end: date, days: int) -> None:
    assert day_count_days(DayCount.THIRTY_360, start, end) == days


@given(dates, dates)
def test_reversed_periods_are_negative(a: date, b: date) -> None:
    for dc in DayCount:
        assert day_count_days(dc, a, b) == -day_count_days(dc, b, a)


@given(dates, st.integers(0, 4000), st.integers(0, 4000))
def test_actual_fractions_add_up(start: date, d1: int, d2: int) -> None:
    mid, end = start + timedelta(days=d1), start + timedelta(days=d1 + d2)
    for dc in (DayCount.ACT_365F, DayCount.ACT_360):
        total = day_count_days(dc, start, mid) + day_count_days(dc, mid, end)
        assert total == day_count_days(dc, start, end)


@given(dates, st.integers(1, 400))
def test_thirty_360_full_years_are_360(start: date, years: int) -> None:
    if start.day <= 27:  # 28 Feb can be a month end, which the February rule moves
        end = start.replace(year=min(start.year + years, 9999))
        expected = 360 * (end.year - start.year)
        assert day_count_days(DayCount.THIRTY_360, start, end) == expected


def test_simple_interest_divides_once() -> None:
    # 10,000 at 18% for 31 days ACT/365F: 152.876712328767… exactly, no intermediate rounding.
    got = simple_interest(
        Decimal(10000), Decimal("0.18"), DayCount.ACT_365F, date(2024, 1, 1), date(2024, 2, 1)
    )
    assert got == Decimal(10000) * Decimal("0.18") * 31 / 365
    assert round(got, 2) == Decimal("152.88")


def test_daycount_accepts_its_string_value() -> None:
    assert year_days(DayCount("30/360")) == 360
    assert DayCount.THIRTY_360 == "30/360"

"""Anchored monthly dates with month-end clamping."""

import itertools
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.dates import (
    add_months,
    due_dates,
    first_period_after,
    is_month_end,
    last_day_of_month,
    months_between,
    periods_between,
)
from lendstack.core.errors import ValidationError

anchors = st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31))


def test_end_of_month_rule_follows_the_anchor() -> None:
    anchor = date(2024, 1, 31)
    assert add_months(anchor, 1) == date(2024, 2, 29)
    assert add_months(anchor, 2) == date(2024, 3, 31)
    assert add_months(anchor, 3) == date(2024, 4, 30)
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert due_dates(anchor, 3) == (date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30))


def test_add_months_wraps_years_and_goes_backwards() -> None:
    assert add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    assert add_months(date(2024, 1, 15), -13) == date(2022, 12, 15)
    assert add_months(date(2024, 1, 15), 0) == date(2024, 1, 15)


def test_add_months_outside_the_calendar_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        add_months(date(9999, 12, 1), 1)


def test_due_dates_after_a_restart_keep_the_original_grid() -> None:
    anchor = date(2024, 1, 31)
    assert due_dates(anchor, 2, after=date(2024, 4, 10)) == (date(2024, 4, 30), date(2024, 5, 31))
    # Strictly after: a restart on a due date starts at the next one.
    assert due_dates(anchor, 1, after=date(2024, 4, 30)) == (date(2024, 5, 31),)
    assert due_dates(anchor, 0) == ()
    with pytest.raises(ValidationError):
        due_dates(anchor, -1)


def test_month_helpers() -> None:
    assert last_day_of_month(2024, 2) == 29
    assert last_day_of_month(2100, 2) == 28
    assert is_month_end(date(2024, 2, 29))
    assert not is_month_end(date(2024, 2, 28))
    assert months_between(date(2023, 12, 31), date(2024, 1, 1)) == 1


@given(anchors, st.integers(0, 400))
def test_add_months_clamps_to_the_anchor_day(anchor: date, months: int) -> None:
    d = add_months(anchor, months)
    assert months_between(anchor, d) == months
    assert d.day == min(anchor.day, last_day_of_month(d.year, d.month))


@given(anchors, st.integers(1, 120), st.integers(-40, 4000))
def test_due_dates_are_increasing_monthly_and_after(anchor: date, count: int, shift: int) -> None:
    after = date.fromordinal(anchor.toordinal() + shift)
    dates = due_dates(anchor, count, after=after)
    assert len(dates) == count
    assert dates[0] > after
    k = first_period_after(anchor, after)
    assert k == 1 or add_months(anchor, k - 1) <= after
    assert dates == tuple(add_months(anchor, k + i) for i in range(count))
    assert all(a < b for a, b in itertools.pairwise(dates))


@given(anchors, st.integers(0, 3000), st.integers(0, 3000))
def test_periods_between_counts_grid_dates(anchor: date, a: int, b: int) -> None:
    after = date.fromordinal(anchor.toordinal() + a)
    end = date.fromordinal(after.toordinal() + b)
    expected = sum(1 for k in range(1, 250) if after < add_months(anchor, k) <= end)
    assert periods_between(anchor, after, end) == expected

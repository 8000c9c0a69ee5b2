"""Close of business: the ordered steps that close one business date, and their orchestration.

A business date closes atomically: the store runs every step and records each as done in
one transaction. A run killed part-way leaves nothing of that date behind, so running it
again produces exactly the ledger of an uninterrupted run; a closed date run again changes
nothing. The steps themselves are set-based SQL in `lendstack.storage.cob`; their cost per
loan does not depend on the loan's age.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Protocol

from lendstack.core.errors import Conflict


class CobStep(StrEnum):
    ACCRUAL = "accrual"
    BILLING = "billing"
    CREDIT = "credit"  # billed dues settled from borrower credit balances
    PENALTY = "penalty"
    AGING = "aging"
    CLASSIFICATION = "classification"
    NON_ACCRUAL = "non_accrual"
    CHARGE_OFF = "charge_off"
    WRITE_OFF = "write_off"  # charged-off loans past the product's write-off days (核销)
    FUNDING = "funding"  # funder sub-ledgers: charge-offs, guarantee payouts, the day's GL entry
    MONTH_END = "month_end"  # first-payment defaults daily; the loan-month panel on month-ends
    COLLECTIONS = "collections"  # promises to pay due (or paid) marked kept or broken
    SNAPSHOT = "snapshot"


STEPS: tuple[CobStep, ...] = tuple(CobStep)

Progress = Callable[[date, CobStep], None]


class CloseStore(Protocol):
    def last_closed(self) -> date | None: ...
    def first_activity(self) -> date | None: ...
    def close(
        self, day: date, steps: tuple[CobStep, ...], progress: Progress | None
    ) -> tuple[tuple[CobStep, int], ...]:
        """Run `steps` in order and mark `day` closed, all in one transaction (a store may
        leave the snapshot to the next, `storage.close_store.SqlCloseStore(read_aside=True)`)."""
        ...


@dataclass(frozen=True, slots=True)
class DayClosed:
    day: date
    rows: tuple[tuple[CobStep, int], ...]
    skipped: bool = False


def next_open(store: CloseStore) -> date | None:
    last = store.last_closed()
    return None if last is None else last + timedelta(days=1)


def _check_date(store: CloseStore, day: date) -> bool:
    """True if `day` is already closed; raises if it is out of order."""
    last = store.last_closed()
    if last is not None and day < last:
        raise Conflict(f"{day} is earlier than the last closed business date {last}", field="date")
    if last is not None and day == last:
        return True
    expected = None if last is None else last + timedelta(days=1)  # next_open, read once
    if expected is not None and day != expected:
        raise Conflict(
            f"{day} skips business dates; the next to close is {expected} (use --through)",
            field="date",
        )
    # Only a book never closed needs its first date (a read of the whole loan table).
    first = store.first_activity() if expected is None else None
    if first is not None and day > first:
        raise Conflict(
            f"{day} skips business dates; the book starts on {first} (use --through)", field="date"
        )
    return False


def close_day(store: CloseStore, day: date, progress: Progress | None = None) -> DayClosed:
    """Close one business date, or do nothing if it is already closed."""
    if _check_date(store, day):
        return DayClosed(day, (), skipped=True)
    return DayClosed(day, store.close(day, STEPS, progress))


def dates_through(store: CloseStore, through: date) -> list[date]:
    """The business dates `close_through` would close, oldest first."""
    start = next_open(store) or store.first_activity() or through
    if through < start - timedelta(days=1):
        last = store.last_closed()
        raise Conflict(
            f"{through} is earlier than the last closed business date {last}", field="date"
        )
    return [start + timedelta(days=n) for n in range((through - start).days + 1)]


def close_through(
    store: CloseStore, through: date, progress: Progress | None = None
) -> list[DayClosed]:
    return [close_day(store, day, progress) for day in dates_through(store, through)]

"""Ports the servicing services need; `lendstack.storage` implements them.

Services depend on these Protocols only, so they never import SQLAlchemy, and tests can swap
the storage in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import TracebackType
from typing import Protocol, Self

from lendstack.core.records import quick_init
from lendstack.servicing.domain.bills import Bill, PaidBill
from lendstack.servicing.domain.ledger import JournalEntry
from lendstack.servicing.domain.loan import LoanState
from lendstack.servicing.domain.payments import Applied, InstallmentPart
from lendstack.servicing.domain.settlement import Waived


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class StoredPayment:
    id: int
    loan_id: int
    kind: str
    value_date: date
    amount: Decimal
    idempotency_key: str | None
    request_hash: str
    status: str
    applied: Applied
    parts: tuple[InstallmentPart, ...]
    entry_id: int
    schedule_version_before: int
    mode: str | None = None
    accrued_interest: Decimal = Decimal("0.00")
    accrued_fee: Decimal = Decimal("0.00")


class Loans(Protocol):
    def add(self, loan: LoanState, reference: str | None) -> int: ...
    def add_many(self, loans: Sequence[tuple[LoanState, str | None]]) -> list[int]: ...
    def get(self, loan_id: int, *, for_update: bool = False) -> LoanState: ...
    def get_many(
        self, loan_ids: Collection[int], *, for_update: bool = False
    ) -> dict[int, LoanState]: ...
    def for_payment(
        self, loan_ids: Collection[int], whole: Collection[int] = ()
    ) -> dict[int, LoanState]: ...
    def bills(self, loan_ids: Collection[int]) -> dict[int, Bill]: ...
    def save(self, loan: LoanState) -> None: ...
    def save_many(self, loans: Sequence[LoanState]) -> None: ...
    def save_bills(self, paid: Sequence[PaidBill]) -> None: ...
    def restore_schedule(self, loan: LoanState, version: int) -> LoanState: ...
    def by_reference(self, reference: str) -> LoanState | None: ...
    def by_references(self, references: Collection[str]) -> dict[str, LoanState]: ...


class Payments(Protocol):
    def by_key(self, key: str) -> StoredPayment | None: ...
    def by_keys(self, keys: Collection[str]) -> dict[str, StoredPayment]: ...
    def get(self, payment_id: int) -> StoredPayment: ...
    def add(self, payment: StoredPayment) -> int: ...
    def add_many(self, payments: Sequence[StoredPayment]) -> list[int]: ...
    def later_than(self, payment: StoredPayment) -> Sequence[StoredPayment]: ...
    def mark_reversed(self, payment_id: int, reversal_entry_id: int) -> None: ...


class Ledger(Protocol):
    def post(self, entry: JournalEntry) -> int: ...
    def post_many(self, entries: Sequence[JournalEntry]) -> list[int]: ...
    def get(self, entry_id: int) -> JournalEntry: ...


class Calendar(Protocol):
    def last_closed(self) -> date | None: ...


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """A new loan's co-lending plan as booking records it."""

    shares: Mapping[str, Decimal]
    """Funder id -> share; the shares sum to exactly 1."""
    guarantee_fee_rates: Mapping[str, Decimal] = field(default_factory=dict)
    """Funder id -> the annual guarantee fee priced into the loan for its share (none: 0)."""


class FundingPlans(Protocol):
    """A booked loan's co-lending shares, written inside the booking's transaction."""

    def record(self, loan_id: int, plan: PlanTerms) -> None: ...
    def record_many(self, plans: Sequence[tuple[int, PlanTerms]]) -> None: ...


@dataclass(frozen=True, slots=True)
class LoanProfile:
    """The analytics dimensions of a loan, fixed at booking: where it came from and how risky
    it looked. The portfolio panel (`lendstack.risk.panel`) groups by them; a loan booked
    without a decision has no profile and its dimensions read "unknown".
    """

    channel: str
    """The app the application came from."""
    province: str
    """The borrower's province, as `lendstack.core.regions` spells it."""
    purpose: str
    decision_id: str | None = None
    pd_origination: float | None = None
    """The credit model's PD at decision time (a score, so a float)."""
    lead_funder_id: str | None = None
    """The funder with the largest share of the funding plan; `book_loan` fills it in."""


def lead_funder(shares: Mapping[str, Decimal]) -> str | None:
    """The funder holding the largest share; a tie goes to the id first in sort order."""
    ranked = sorted(shares.items(), key=lambda item: (-item[1], item[0]))
    return ranked[0][0] if ranked else None


class LoanProfiles(Protocol):
    """A booked loan's profile, written inside the booking's transaction."""

    def record(self, loan_id: int, profile: LoanProfile) -> None: ...
    def record_many(self, profiles: Sequence[tuple[int, LoanProfile]]) -> None: ...


class LoanSettlements(Protocol):
    """Negotiated settlements (not the funders' settlement files), recorded in the
    settlement's transaction."""

    def record(
        self, loan_id: int, payment_id: int, on: date, payoff: Decimal, amount: Decimal,
        waived: Waived,
    ) -> None: ...  # fmt: skip
    def get(self, loan_id: int) -> tuple[Decimal, Waived] | None:
        """(payoff, what was forgiven) of the loan's settlement, if it was settled."""
        ...


class UnitOfWork(Protocol):
    """One transaction: everything commits together or nothing is written.

    The repositories are read-only properties, so an adapter may hold narrower types (a
    `SqlCalendar` is a `Calendar`) and still be a `UnitOfWork` to the type checker.
    """

    @property
    def loans(self) -> Loans: ...
    @property
    def payments(self) -> Payments: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def calendar(self) -> Calendar: ...
    @property
    def funding(self) -> FundingPlans: ...
    @property
    def profiles(self) -> LoanProfiles: ...
    @property
    def loan_settlements(self) -> LoanSettlements: ...

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...

"""Loan lifecycle: the states a loan passes through and the transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum

from lendstack.core.errors import Conflict


class LoanStatus(StrEnum):
    APPROVED = "approved"
    ACTIVE = "active"
    PAID_OFF = "paid_off"
    CHARGED_OFF = "charged_off"
    WRITTEN_OFF = "written_off"
    SOLD = "sold"

    @property
    def is_open(self) -> bool:
        """Open loans still accrue, bill and age; closed ones only take recoveries."""
        return self in (LoanStatus.APPROVED, LoanStatus.ACTIVE)


_ALLOWED: dict[LoanStatus, frozenset[LoanStatus]] = {
    LoanStatus.APPROVED: frozenset({LoanStatus.ACTIVE}),
    LoanStatus.ACTIVE: frozenset({LoanStatus.PAID_OFF, LoanStatus.CHARGED_OFF, LoanStatus.SOLD}),
    LoanStatus.CHARGED_OFF: frozenset({LoanStatus.WRITTEN_OFF, LoanStatus.SOLD}),
    LoanStatus.PAID_OFF: frozenset({LoanStatus.ACTIVE}),  # a reversed payoff reopens the loan
    LoanStatus.WRITTEN_OFF: frozenset({LoanStatus.SOLD}),
    LoanStatus.SOLD: frozenset(),
}


def can_transition(current: LoanStatus, target: LoanStatus) -> bool:
    return target in _ALLOWED[current]


def transition(current: LoanStatus, target: LoanStatus) -> LoanStatus:
    """Validate a status change; an illegal one is a conflict with stored state."""
    if current == target:
        return current
    if not can_transition(current, target):
        raise Conflict(f"a loan cannot go from {current} to {target}", field="status")
    return target

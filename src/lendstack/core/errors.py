"""One error tree for the whole platform.

Entry points translate these at the boundary: the CLI maps them to exit codes, the HTTP API to
problem+json statuses. A decline is a value, never one of these; these mean the request itself
cannot be carried out, or an invariant would break.
"""

from __future__ import annotations


class LendstackError(Exception):
    """Base of every error lendstack raises on purpose."""

    exit_code = 1
    http_status = 500
    title = "Internal error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ValidationError(LendstackError):
    """Input is malformed or out of range; `field` names the culprit."""

    exit_code = 2
    http_status = 422
    title = "Invalid input"


class NotFound(LendstackError):
    """A referenced entity (loan, product, payment) does not exist."""

    exit_code = 3
    http_status = 404
    title = "Not found"


class Conflict(LendstackError):
    """The request contradicts stored state: a reused idempotency key, a closed date."""

    exit_code = 4
    http_status = 409
    title = "Conflict"


class InvariantViolation(LendstackError):
    """A broken accounting or lifecycle invariant; this is a bug, never user error."""

    exit_code = 70
    http_status = 500
    title = "Invariant violated"


class CurrencyMismatch(InvariantViolation):
    """Arithmetic across two currencies."""


class UnbalancedEntry(InvariantViolation):
    """A journal entry whose debits and credits differ."""

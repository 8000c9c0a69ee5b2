"""Parsing CLI arguments into domain values, with errors that name the field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from lendstack.core.errors import ValidationError
from lendstack.core.money import parse_amount

__all__ = ["parse_amount", "parse_date", "parse_rate"]


def parse_date(text: str, field: str = "date") -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationError(f"{text!r} is not a date (YYYY-MM-DD)", field=field) from None


def parse_rate(text: str | None, field: str) -> Decimal | None:
    """An annual rate or fee rate as a decimal fraction, e.g. 0.18 for 18%."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationError(f"{text!r} is not a number", field=field) from None
    if not value.is_finite() or not 0 <= value < 1:
        raise ValidationError(f"must be a fraction in [0, 1), e.g. 0.18; got {text}", field=field)
    return value

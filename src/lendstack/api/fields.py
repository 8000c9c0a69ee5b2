"""Strict request field types shared by routers: money and dates.

Pydantic's lax defaults would take `true` as 1, `1.005` as money and `0` as 1970-01-01. Money
here is a decimal string or a JSON number with at most two decimals; `true` is not a number.
Messages never repeat the submitted value, which may be personal data.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema

from lendstack.core.money import FEN

MAX_AMOUNT = Decimal("1000000000000")  # 10^12 CNY; also keeps JSON floats exact (< 15 digits)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError('must be a decimal string such as "1000.00" or a number')
    try:
        # repr() of a float is its shortest round-trip form, i.e. the digits the client wrote.
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ValueError('must be a decimal string such as "1000.00" or a number') from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return number


def parse_amount(value: Any) -> Decimal:
    """A positive amount of money with at most two decimals, quantised to the fen."""
    number = _decimal(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    if number >= MAX_AMOUNT:
        raise ValueError(f"must be less than {MAX_AMOUNT}")
    if number != number.quantize(FEN):
        raise ValueError("must have at most 2 decimals")
    return number.quantize(FEN)


def parse_date(value: Any) -> date:
    """A calendar date written YYYY-MM-DD; timestamps and other formats are refused."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a valid calendar date") from None


Amount = Annotated[
    Decimal,
    PlainValidator(parse_amount),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"},
                {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01},
            ],
            "description": "CNY, > 0, at most 2 decimals; a decimal string is preferred.",
            "examples": ["1000.00"],
        }
    ),
]

IsoDate = Annotated[
    date,
    PlainValidator(parse_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-01-15"]}),
]

__all__ = ["Amount", "IsoDate", "parse_amount", "parse_date"]

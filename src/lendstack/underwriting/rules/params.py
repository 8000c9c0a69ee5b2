"""Parameter schemas per rule kind: raw TOML values in, exact typed values out.

Parsing happens once, when a rule is built, so evaluation never converts strings and a pack
with a bad limit fails at load time with the rule id and field named, not mid-decision.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from lendstack.underwriting.rules.model import REPAYMENT_METHODS, RuleKind

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_FRACTION = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ParamError(ValueError):
    """A parameter value is unusable; the rule that owns it adds its id to the message."""

    def __init__(self, problem: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.field = field


def _decimal(value: Any) -> Decimal:
    """Packs are read with TOML floats as Decimal; a float passed in code goes through repr
    so `0.24` stays 0.24."""
    if isinstance(value, bool):
        raise ParamError(f"must be a number, got boolean {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ParamError(f"must be a decimal number, got {value!r}") from None
    else:
        raise ParamError(f"must be a number, got {type(value).__name__} {value!r}")
    if not result.is_finite():
        raise ParamError(f"must be a finite number, got {value!r}")
    return result


def money(value: Any) -> Decimal:
    """A CNY amount: non-negative, at most fen precision."""
    result = _decimal(value)
    if result < 0 or result.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ParamError(
            f"must be a non-negative CNY amount with at most 2 decimals, got {value!r}"
        )
    return result


def unit_ratio(value: Any) -> Decimal:
    """A rate or ratio between 0 and 1 inclusive (0.24 means 24 %)."""
    result = _decimal(value)
    if not 0 <= result <= 1:
        raise ParamError(f"must be between 0 and 1 (0.24 means 24%), got {value!r}")
    return result


def positive_ratio(value: Any) -> Decimal:
    """A ratio above 0 and at most 1 (a minimum share of 0 would allow any number of funders)."""
    result = unit_ratio(value)
    if result == 0:
        raise ParamError(f"must be above 0 and at most 1, got {value!r}")
    return result


def share(value: Any) -> Fraction:
    """An exact fraction: "1/3" keeps a third exact; "0.3333" or 0.3333 are read as decimals."""
    if isinstance(value, Fraction):
        result = value
    elif isinstance(value, str) and (match := _FRACTION.match(value)):
        numerator, denominator = int(match[1]), int(match[2])
        if denominator == 0:
            raise ParamError(f"has a zero denominator: {value!r}")
        result = Fraction(numerator, denominator)
    else:
        result = Fraction(_decimal(value))
    if not 0 < result <= 1:
        raise ParamError(f"must be a share above 0 and at most 1, got {value!r}")
    return result


def _integer(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(f"must be a whole number, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ParamError(f"must be between {low} and {high}, got {value!r}")
    return value


def months(value: Any) -> int:
    return _integer(value, 1, 1200)


def count(value: Any) -> int:
    return _integer(value, 0, 10_000)


def age(value: Any) -> int:
    return _integer(value, 0, 150)


def names(value: Any) -> tuple[str, ...]:
    """A non-empty list of lower-case identifiers without repeats, kept in file order."""
    if isinstance(value, str) or not isinstance(value, list | tuple | frozenset | set):
        raise ParamError(f"must be a list of names, got {type(value).__name__} {value!r}")
    items = tuple(value)
    if not items:
        raise ParamError("must list at least one name")
    for item in items:
        if not isinstance(item, str) or not _NAME.match(item):
            raise ParamError(f"must hold lower-case names like 'securities', got {item!r}")
    if len(set(items)) != len(items):
        raise ParamError(f"lists a name twice: {list(items)}")
    return items


def methods(value: Any) -> tuple[str, ...]:
    """Repayment methods, as servicing names them."""
    items = names(value)
    unknown = [m for m in items if m not in REPAYMENT_METHODS]
    if unknown:
        raise ParamError(f"has unknown repayment methods {unknown}; use {list(REPAYMENT_METHODS)}")
    return items


Parser = Callable[[Any], Any]

SCHEMAS: Mapping[RuleKind, Mapping[str, Parser]] = MappingProxyType(
    {
        RuleKind.CREDIT_LINE_MAX: {"max": money},
        RuleKind.INCOME_SHARE_MAX: {"share": share},
        RuleKind.APR_MAX: {"max": unit_ratio},
        RuleKind.BULLET_TERM_MAX: {"max": months, "methods": methods},
        RuleKind.TERM_MAX: {"max": months},
        RuleKind.FORBIDDEN_PURPOSES: {"purposes": names},
        RuleKind.NO_STUDENTS: {},
        RuleKind.REQUIRED_CONSENTS: {"consents": names},
        RuleKind.AGE_RANGE: {"min": age, "max": age},
        RuleKind.ACTIVE_LENDERS_MAX: {"max": count},
        RuleKind.DTI_MAX: {"max": unit_ratio},
        RuleKind.COLENDING_OWN_SHARE_MIN: {"min": unit_ratio},
        RuleKind.COLENDING_SHARE_MIN: {"min": positive_ratio},
        RuleKind.COLENDING_TIER1_MAX: {"max": unit_ratio},
        RuleKind.COLENDING_TOTAL_LOANS_MAX: {"max": unit_ratio},
    }
)
"""Every kind's parameters; all are required and no others are allowed (typos fail loudly)."""


def parse_params(kind: RuleKind, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Typed parameters for `kind`; raises ParamError naming the first bad field."""
    schema = SCHEMAS[kind]
    for key in raw:
        if key not in schema:
            allowed = ", ".join(schema) or "none"
            raise ParamError(f"is not a parameter of {kind} (allowed: {allowed})", f"params.{key}")
    typed: dict[str, Any] = {}
    for key, parser in schema.items():
        if key not in raw:
            raise ParamError(f"is required for {kind}", f"params.{key}")
        try:
            typed[key] = parser(raw[key])
        except ParamError as exc:
            raise ParamError(exc.problem, f"params.{key}") from None
    if kind is RuleKind.AGE_RANGE and typed["min"] > typed["max"]:
        raise ParamError(f"must not be below params.min ({typed['min']})", "params.max")
    return typed


def format_param(value: Any) -> str:
    """Display text for a typed parameter: exact, and stable for diffs and the CLI."""
    if isinstance(value, Fraction):
        as_decimal = Decimal(value.numerator) / Decimal(value.denominator)
        if Fraction(as_decimal) == value:
            return str(as_decimal)
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)

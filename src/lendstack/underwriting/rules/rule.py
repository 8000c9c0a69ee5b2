"""A single regulatory rule: validated when built, evaluated without ever raising.

A Rule normalises and checks its own fields in `__post_init__` (the way a journal entry is
balanced when it is built), so every Rule in memory is usable: its params are already typed
and its check function is already chosen. Evaluation then costs one call and one comparison.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from lendstack.core.errors import ValidationError
from lendstack.underwriting.rules.checks import CHECKS, Check
from lendstack.underwriting.rules.model import (
    LENDER_TYPES,
    Confidence,
    Facts,
    RuleKind,
    RuleResult,
    RuleStatus,
    Source,
    Verdict,
)
from lendstack.underwriting.rules.params import ParamError, format_param, parse_params

RULE_ID = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")
"""Dotted upper-case ids, e.g. CN.PRICING.MAX_COMPREHENSIVE_APR.BANK."""

E = TypeVar("E", bound=StrEnum)


def _enum(rule_id: str, name: str, enum: type[E], value: Any) -> E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise _invalid(rule_id, name, f"must be one of {allowed}; got {value!r}") from None


def _invalid(rule_id: str, name: str, problem: str) -> ValidationError:
    """The one error shape for bad rules: the message names the rule id and the field."""
    return ValidationError(f"rule {rule_id}: {name} {problem}", field=name)


def _plain_date(rule_id: str, name: str, value: Any) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise _invalid(rule_id, name, f"must be a date like 2025-10-01, got {value!r}")
    return value


def check_lender_type(value: Any, name: str = "lender_type") -> str:
    """Reject lender types no rule can name, so a typo cannot silently select nothing."""
    if value not in LENDER_TYPES:
        allowed = ", ".join(LENDER_TYPES)
        raise ValidationError(f"unknown lender type {value!r}; use one of {allowed}", field=name)
    return str(value)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a pack. `params` holds typed values (Decimal, int, Fraction, tuples).

    `applies_to` lists the lender types the rule governs; empty means all of them.
    """

    id: str
    kind: RuleKind
    description: str
    params: Mapping[str, Any] = field(hash=False)
    effective_from: date
    effective_to: date | None
    status: RuleStatus
    enabled: bool
    applies_to: tuple[str, ...]
    source: Source
    confidence: Confidence
    _check: Check = field(init=False, repr=False, compare=False, hash=False)
    _disabled: RuleResult = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        rid = self.id
        if not isinstance(rid, str) or not RULE_ID.match(rid):
            raise _invalid(str(rid), "id", "must be dotted upper case like CN.PRICING.APR_MAX")
        kind = _enum(rid, "kind", RuleKind, self.kind)
        _set(self, "kind", kind)
        _set(self, "status", _enum(rid, "status", RuleStatus, self.status))
        _set(self, "confidence", _enum(rid, "confidence", Confidence, self.confidence))
        if not isinstance(self.description, str) or not self.description.strip():
            raise _invalid(rid, "description", "must be a non-empty string")
        _set(self, "params", MappingProxyType(self._typed_params(kind)))
        self._check_dates()
        if not isinstance(self.enabled, bool):
            raise _invalid(rid, "enabled", f"must be true or false, got {self.enabled!r}")
        _set(self, "applies_to", self._lender_types())
        if not isinstance(self.source, Source):
            raise _invalid(rid, "source", f"must be a Source, got {self.source!r}")
        _set(self, "_check", CHECKS[kind])
        disabled = RuleResult(rid, kind, Verdict.DISABLED, None, None, f"{rid} is disabled")
        _set(self, "_disabled", disabled)

    def _typed_params(self, kind: RuleKind) -> dict[str, Any]:
        if not isinstance(self.params, Mapping):
            raise _invalid(self.id, "params", f"must be a table, got {self.params!r}")
        try:
            return parse_params(kind, self.params)
        except ParamError as exc:
            raise _invalid(self.id, exc.field or "params", exc.problem) from None

    def _check_dates(self) -> None:
        start = _plain_date(self.id, "effective_from", self.effective_from)
        if self.effective_to is not None:
            end = _plain_date(self.id, "effective_to", self.effective_to)
            if end < start:
                raise _invalid(self.id, "effective_to", f"{end} is before effective_from {start}")

    def _lender_types(self) -> tuple[str, ...]:
        raw = self.applies_to
        if isinstance(raw, str) or not isinstance(raw, list | tuple):
            raise _invalid(self.id, "applies_to", f"must be a list of lender types, got {raw!r}")
        for value in raw:
            if value not in LENDER_TYPES:
                allowed = ", ".join(LENDER_TYPES)
                raise _invalid(self.id, "applies_to", f"has {value!r}; use {allowed}")
        if len(set(raw)) != len(raw):
            raise _invalid(self.id, "applies_to", f"repeats a lender type: {list(raw)}")
        return tuple(raw)

    def in_force(self, on: date) -> bool:
        """Both ends inclusive: a rule effective to 2025-09-30 still applies that day."""
        end = self.effective_to
        return self.effective_from <= on and (end is None or on <= end)

    def covers(self, lender_type: str) -> bool:
        """An empty `applies_to` means every lender type."""
        return not self.applies_to or lender_type in self.applies_to

    def applies(self, on: date, lender_type: str) -> bool:
        """Whether the rule governs a loan made on `on` by this type of lender."""
        return self.in_force(on) and self.covers(lender_type)

    def evaluate(self, facts: Facts) -> RuleResult:
        """Check the facts. Never raises: a rule that cannot decide reports ERROR (fail closed)."""
        if not self.enabled:
            return self._disabled
        try:
            return self._check(self, facts)
        except Exception as exc:
            message = f"{self.id} could not be checked: {type(exc).__name__}: {exc}"
            return RuleResult(self.id, self.kind, Verdict.ERROR, None, None, message)

    def params_text(self) -> str:
        """Parameters as `key=value` text, for tables and diffs."""
        return "; ".join(f"{k}={format_param(v)}" for k, v in self.params.items())


def _set(rule: Rule, name: str, value: Any) -> None:
    """Frozen dataclasses normalise their own fields only through object.__setattr__."""
    object.__setattr__(rule, name, value)

"""What changed between two packs, rule by rule and field by field.

Used to review a new regime before it goes live and to explain why a backtest under an old
pack decides differently. Parameters compare by value (200000 equals 200000.00), so only
changes that alter a decision or its citation show up.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lendstack.underwriting.rules.pack import RulePack
from lendstack.underwriting.rules.params import format_param
from lendstack.underwriting.rules.rule import Rule


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of one rule, old → new, as display text (None when absent)."""

    field: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class RuleChange:
    rule_id: str
    change: ChangeKind
    fields: tuple[FieldChange, ...] = ()


_PLAIN_FIELDS = (
    "description",
    "effective_from",
    "effective_to",
    "status",
    "enabled",
    "applies_to",
    "confidence",
)
_SOURCE_FIELDS = ("body", "document", "doc_no", "date", "section")


def _show(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return format_param(value)


def _params(old: Rule, new: Rule) -> list[FieldChange]:
    changes = []
    for key in sorted(set(old.params) | set(new.params)):
        before, after = old.params.get(key), new.params.get(key)
        if before != after:
            changes.append(FieldChange(f"params.{key}", _show(before), _show(after)))
    return changes


def _fields(old: Any, new: Any, names: tuple[str, ...], prefix: str = "") -> list[FieldChange]:
    return [
        FieldChange(prefix + name, _show(getattr(old, name)), _show(getattr(new, name)))
        for name in names
        if getattr(old, name) != getattr(new, name)
    ]


def rule_changes(old: Rule, new: Rule) -> tuple[FieldChange, ...]:
    """The fields that differ between two versions of a rule: kind, params, the rest, source."""
    return (
        *_fields(old, new, ("kind",)),
        *_params(old, new),
        *_fields(old, new, _PLAIN_FIELDS),
        *_fields(old.source, new.source, _SOURCE_FIELDS, "source."),
    )


def diff_packs(a: RulePack, b: RulePack) -> tuple[RuleChange, ...]:
    """Rules added in `b`, removed from `a`, and changed between them, sorted by rule id."""
    old = {r.id: r for r in a.rules}
    new = {r.id: r for r in b.rules}
    result = []
    for rule_id in sorted(old.keys() | new.keys()):
        if rule_id not in new:
            result.append(RuleChange(rule_id, ChangeKind.REMOVED))
        elif rule_id not in old:
            result.append(RuleChange(rule_id, ChangeKind.ADDED))
        elif fields := rule_changes(old[rule_id], new[rule_id]):
            result.append(RuleChange(rule_id, ChangeKind.CHANGED, fields))
    return tuple(result)

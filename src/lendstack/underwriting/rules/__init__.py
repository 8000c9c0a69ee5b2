"""Versioned regulatory rule packs for underwriting: a pure core.

A pack is a TOML file per regime (`packs/cn-2025-10.toml`, ...). `RulePack.select(on,
lender_type)` gives the RuleSet that governs a loan; it evaluates Facts into RuleResults and
reports the strictest caps (`Binding`) together with the rule that set each one. This package
imports only the standard library and `lendstack.core`.
"""

from lendstack.underwriting.rules.diff import ChangeKind, FieldChange, RuleChange, diff_packs
from lendstack.underwriting.rules.model import (
    FUNDING_KINDS,
    LENDER_TYPES,
    PRICED_KINDS,
    REPAYMENT_METHODS,
    SCREEN_KINDS,
    Binding,
    Confidence,
    Facts,
    RuleKind,
    RuleResult,
    RuleStatus,
    Source,
    Verdict,
)
from lendstack.underwriting.rules.pack import (
    RulePack,
    builtin_packs,
    default_pack,
    load_pack,
    parse_pack,
)
from lendstack.underwriting.rules.params import format_param
from lendstack.underwriting.rules.rule import Rule
from lendstack.underwriting.rules.ruleset import RuleSet

__all__ = [
    "FUNDING_KINDS",
    "LENDER_TYPES",
    "PRICED_KINDS",
    "REPAYMENT_METHODS",
    "SCREEN_KINDS",
    "Binding",
    "ChangeKind",
    "Confidence",
    "Facts",
    "FieldChange",
    "Rule",
    "RuleChange",
    "RuleKind",
    "RulePack",
    "RuleResult",
    "RuleSet",
    "RuleStatus",
    "Source",
    "Verdict",
    "builtin_packs",
    "default_pack",
    "diff_packs",
    "format_param",
    "load_pack",
    "parse_pack",
]

"""Builders for rule-pack tests: small TOML packs written from dicts, and Facts with defaults."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from lendstack.underwriting.rules import Facts, RulePack, parse_pack

SOURCE = {"body": "TEST", "document": "test document", "section": "REGULATION.md 0"}
DAY = date(2026, 1, 15)


def toml_value(value: Any) -> str:
    """Just enough TOML for test packs: scalars, dates, lists and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int | date):
        return value.isoformat() if isinstance(value, date) else str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def rule_table(rule_id: str = "T.APR.A", kind: str = "apr_max", **fields: Any) -> dict[str, Any]:
    """A valid [[rules]] table; pass a field as None to leave it out."""
    table: dict[str, Any] = {
        "id": rule_id,
        "kind": kind,
        "description": f"test rule {rule_id}",
        "params": {"max": "0.24"},
        "effective_from": date(2020, 1, 1),
        "status": "final",
        "confidence": "C",
        "source": dict(SOURCE),
    }
    table.update(fields)
    return {k: v for k, v in table.items() if v is not None}


def pack_toml(rules: list[dict[str, Any]], **header: Any) -> str:
    head = {
        "id": "test-pack",
        "version": "1.0.0",
        "title": "test pack",
        "description": "a pack written by a test",
        **header,
    }
    lines = [f"{k} = {toml_value(v)}" for k, v in head.items() if v is not None]
    for table in rules:
        lines.append("\n[[rules]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def build_pack(rules: list[dict[str, Any]], **header: Any) -> RulePack:
    return parse_pack(pack_toml(rules, **header), "test.toml")


BASE_FACTS = Facts(
    application_date=DAY,
    lender_type="bank",
    age=30,
    purpose="travel",
    is_student=False,
    consents=frozenset({"bureau_query", "data_sharing"}),
    active_lenders=2,
    monthly_income=Decimal("10000.00"),
    monthly_obligations=Decimal("3000.00"),
    existing_balance=Decimal("0.00"),
    amount=Decimal("10000.00"),
    term_months=12,
    repayment_method="equal-installment",
    apr_irr=Decimal("0.18"),
    monthly_installment=Decimal("900.00"),
)


@pytest.fixture
def facts() -> Callable[..., Facts]:
    """facts(amount=Decimal("1")) -> BASE_FACTS with those fields replaced."""
    return lambda **changes: dataclasses.replace(BASE_FACTS, **changes)


@pytest.fixture
def rule() -> Callable[..., dict[str, Any]]:
    return rule_table


@pytest.fixture
def pack() -> Callable[..., RulePack]:
    return build_pack


@pytest.fixture
def toml() -> Callable[..., str]:
    return pack_toml

"""Shared rendering helpers: rich consoles, JSON output and output formats."""

from __future__ import annotations

import json
from decimal import Decimal
from enum import StrEnum
from typing import Any

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(payload: Any) -> None:
    """Machine output: plain JSON on stdout, money and rates as decimal strings."""
    print(json.dumps(payload, default=_default, ensure_ascii=False, indent=2))

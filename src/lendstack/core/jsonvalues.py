"""How domain values become JSON at every edge: money and rates as decimal strings, dates as ISO.

A float never appears: `json.dumps(..., default=json_default)` writes a Decimal as its exact
string, so 0.1 stays "0.1" and 1234.50 stays "1234.50".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")

"""JSON bodies: money and rates as decimal strings, dates as ISO strings.

The shapes mirror `lendstack loan show --format json` and friends field for field, so a tool
can switch between the CLI and the API without a translation layer (a test holds them equal).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi.responses import JSONResponse

from lendstack.servicing.views import loan_json, payment_json, payoff_json


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


class DecimalJSONResponse(JSONResponse):
    """Renders domain dicts directly: no pydantic round trip, no float anywhere."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, default=_default, ensure_ascii=False, separators=(",", ":")
        ).encode()


__all__ = ["DecimalJSONResponse", "loan_json", "payment_json", "payoff_json"]

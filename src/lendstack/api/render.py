"""JSON bodies: money and rates as decimal strings, dates as ISO strings.

The shapes mirror `lendstack loan show --format json` and friends field for field, so a tool
can switch between the CLI and the API without a translation layer (a test holds them equal).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

from lendstack.core.jsonvalues import json_default
from lendstack.servicing.views import loan_json, payment_json, payoff_json


class DecimalJSONResponse(JSONResponse):
    """Renders domain dicts directly: no pydantic round trip, no float anywhere."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, default=json_default, ensure_ascii=False, separators=(",", ":")
        ).encode()


__all__ = ["DecimalJSONResponse", "loan_json", "payment_json", "payoff_json"]

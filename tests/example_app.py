"""The shipped example application, and variations of it by dotted path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from lendstack.underwriting.application import Application

EXAMPLE_FILE = Path(__file__).parents[1] / "examples" / "application.json"
EXAMPLE: dict[str, Any] = json.loads(EXAMPLE_FILE.read_text(encoding="utf-8"))


def payload(**changes: Any) -> dict[str, Any]:
    """The example as JSON with changes, e.g. payload(**{"loan.amount": "5000.00"})."""
    out = copy.deepcopy(EXAMPLE)
    for path, value in changes.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return out


def application(**changes: Any) -> Application:
    return Application.model_validate(payload(**changes))

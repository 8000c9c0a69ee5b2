"""The database backends the storage tests run on (imported by name, like `cli_runner`).

`conftest` cannot be imported by name: each test directory with its own conftest.py makes
the name mean whichever was loaded last.
"""

from __future__ import annotations

import os

import pytest

PG_URL = os.environ.get("LENDSTACK_TEST_DATABASE_URL")
BACKENDS = (
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)] if PG_URL else ["sqlite"]
)

"""Run the real `lendstack` entry point in-process against a test database.

Errors reach the root handler, so tests see the same messages and exit codes a user does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from lendstack.cli.main import main


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    output: str
    """stdout followed by stderr: where messages naming a field appear."""

    def json(self) -> Any:
        return json.loads(self.stdout)


Run = Callable[..., Result]


def runner(database_url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    def _run(*args: str) -> Result:
        try:
            main(["--database", database_url, *args])
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        out = capsys.readouterr()
        return Result(code, out.out, out.out + out.err)

    return _run

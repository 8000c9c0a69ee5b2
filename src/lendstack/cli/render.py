"""Shared rendering helpers: rich consoles, JSON output and output formats."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lendstack.core.jsonvalues import json_default

console = Console()
err_console = Console(stderr=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def print_json(payload: Any) -> None:
    """Machine output: plain JSON on stdout, money and rates as decimal strings."""
    print(json.dumps(payload, default=json_default, ensure_ascii=False, indent=2))


def progress_bar(
    counter: str = "{task.completed}/{task.total}",
    *,
    label: str = "[bold]{task.description}",
    disable: bool = False,
) -> Progress:
    """The house progress bar on stderr: label, bar, counter and elapsed time; it disappears
    when done, so machine output on stdout stays clean."""
    return Progress(
        TextColumn(label), BarColumn(), TextColumn(counter), TimeElapsedColumn(),
        console=err_console, disable=disable, transient=True,
    )  # fmt: skip

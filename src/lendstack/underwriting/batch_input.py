"""Reading applications in bulk: JSON Lines, CSV or Parquet, streamed row by row.

JSON Lines hold one nested application per line, as the API takes it. CSV and Parquet are
flat, so their columns use dotted names (`applicant.monthly_income`, `loan.amount`, ...)
that unflatten into the nested shape; `examples/applications.csv` shows the header.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticError

from lendstack.core.errors import ValidationError
from lendstack.underwriting.application import Application

_BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False}


def unflatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """{'a.b': 1, 'c': 2} -> {'a': {'b': 1}, 'c': 2}; empty CSV cells are left out."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or value == "":
            continue
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _csv_value(key: str, value: str) -> Any:
    """CSV cells are text; booleans need reading here, pydantic parses the rest."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf in _BOOLEAN_FIELDS and value.strip().lower() in _BOOLEAN_TEXT:
        return _BOOLEAN_TEXT[value.strip().lower()]
    return value


_BOOLEAN_FIELDS = frozenset({"is_student", "bureau_query", "automated_decision", "data_sharing"})


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Raw nested rows from `path`, by extension."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _jsonl(path)
    elif suffix == ".json":
        yield json.loads(path.read_text(encoding="utf-8"))
    elif suffix == ".csv":
        yield from _csv(path)
    elif suffix == ".parquet":
        yield from _parquet(path)
    else:
        raise ValidationError(f"{path.name}: use .jsonl, .json, .csv or .parquet", field="file")


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValidationError(
                        f"line {number}: not JSON ({exc.msg})", field="file"
                    ) from None


def _csv(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield unflatten({k: _csv_value(k, v) for k, v in row.items() if k})


def _parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            yield unflatten({k: _parquet_value(v) for k, v in row.items()})


def _parquet_value(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def parse(row: Mapping[str, Any]) -> Application | list[dict[str, str]]:
    """The application, or the list of field errors (dotted location and message)."""
    try:
        return Application.model_validate(row)
    except PydanticError as exc:
        return field_errors(exc)


def field_errors(exc: PydanticError) -> list[dict[str, str]]:
    """Each bad field by dotted path; the input value is never echoed (it may be PII)."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "application", "message": err["msg"]}
        for err in exc.errors()
    ]

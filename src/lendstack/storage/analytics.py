"""The loan-month panel out of the database: a typed polars frame, or a Parquet file.

`loan_month_ends` holds exactly the columns of `lendstack.risk.panel.PANEL_SCHEMA`, so the
export is one `SELECT … ORDER BY loan_id, month_end` (sorted input makes the roll-rate sort
cheap). Rows are fetched in chunks through a server-side cursor and typed as they arrive;
state and risk class travel as text and become the panel's enums in `validate_panel`, which
also checks every invariant (`check_values=True`) before anything is written. The file is
written beside its target and renamed over it, so a reader never sees half a file and a
failed export leaves the old one in place.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, func, select

from lendstack.core.errors import NotFound, ValidationError
from lendstack.risk.panel import PANEL_SCHEMA, validate_panel
from lendstack.storage.schema import loan_month_ends

CHUNK_ROWS = 200_000
"""Rows fetched and typed at a time: bounds the Python objects alive during an export."""

_RAW_SCHEMA = pl.Schema(
    {
        name: pl.String() if isinstance(dtype, pl.Enum) else dtype
        for name, dtype in PANEL_SCHEMA.items()
    }
)
_COLUMNS = [loan_month_ends.c[name] for name in PANEL_SCHEMA]


@dataclass(frozen=True, slots=True)
class Exported:
    path: Path
    rows: int
    loans: int
    first_month_end: date
    last_month_end: date


def read_panel(
    engine: Engine, through: date | None = None, since: date | None = None
) -> pl.DataFrame:
    """Every month-end row up to `through` (default all) and from `since` (default the first),
    validated, in the panel's dtypes.

    No month-end closed yet is `NotFound` naming `date`: there is no panel to read.
    """
    query = select(*_COLUMNS).order_by(loan_month_ends.c.loan_id, loan_month_ends.c.month_end)
    if through is not None:
        query = query.where(loan_month_ends.c.month_end <= through)
    if since is not None:
        query = query.where(loan_month_ends.c.month_end >= since)
    frames = []
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query)
        for chunk in result.partitions():
            frames.append(pl.DataFrame(chunk, schema=_RAW_SCHEMA, orient="row"))
    if not frames:
        raise NotFound(_no_rows(engine, through), field="date")
    return validate_panel(pl.concat(frames), check_values=True).collect()


def _no_rows(engine: Engine, through: date | None) -> str:
    with engine.connect() as conn:
        first = conn.execute(select(func.min(loan_month_ends.c.month_end))).scalar()
    if first is None:
        return (
            "no month-end has been closed yet: close of business writes the panel when it "
            "closes the last day of a month (lendstack cob run --through YYYY-MM-DD)"
        )
    return f"no month-end rows on or before {through}; the first month-end is {first}"


def export_panel(engine: Engine, path: Path, through: date | None = None) -> Exported:
    """Write the panel to Parquet (zstd) atomically; returns what was written."""
    panel = read_panel(engine, through)
    write_parquet(panel, path)
    ends = panel["month_end"]
    return Exported(
        path, panel.height, panel["loan_id"].n_unique(), _day(ends.min()), _day(ends.max())
    )


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(temporary, compression="zstd")
        os.replace(temporary, path)
    except OSError as exc:
        raise ValidationError(f"cannot write {path}: {exc}", field="out") from exc
    finally:
        temporary.unlink(missing_ok=True)


def _day(value: object) -> date:
    if not isinstance(value, date):
        raise NotFound("the panel has no rows", field="date")
    return value

"""Reading a training table and turning its outcome column into 0/1.

Risk teams hand over whatever their warehouse exports: CSV with commas or semicolons, TSV,
Parquet or an Excel sheet. Reading is the one place where formats differ, so every format
ends here as a pandas DataFrame, and every failure becomes a `ValidationError` (exit code 2)
that names the file, never a pandas traceback.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lendstack.core.errors import ValidationError

_EXCEL = {".xlsx", ".xlsm", ".xls"}
_PARQUET = {".parquet", ".pq"}
_TRUE_WORDS = {"1", "true", "yes", "y", "t"}
_FALSE_WORDS = {"0", "false", "no", "n", "f"}


def file_sha256(path: Path) -> str:
    """Hex digest of a file, streamed, so model metadata can prove which data trained it."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sniff_delimiter(path: Path) -> str:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as handle:
        sample = handle.read(64 * 1024)
    if not sample.strip():
        raise ValidationError(f"{path} is empty", field="data")
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return "\t" if sample.count("\t") > sample.count(",") else ","


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return pd.read_parquet(path)
    if suffix in _EXCEL:
        return pd.read_excel(path)
    return pd.read_csv(path, sep=_sniff_delimiter(path), encoding="utf-8-sig")


def load_table(path: str | Path) -> pd.DataFrame:
    """Read CSV/TSV (delimiter sniffed), Parquet or Excel; refuse empty or unreadable files."""
    source = Path(path)
    if not source.is_file():
        raise ValidationError(f"{source} does not exist or is not a file", field="data")
    if source.stat().st_size == 0:
        raise ValidationError(f"{source} is empty", field="data")
    try:
        frame = _read(source)
    except ValidationError:
        raise
    except Exception as exc:  # every reader raises its own types; the user needs one message
        raise ValidationError(f"cannot read {source}: {exc}", field="data") from exc
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValidationError(f"{source} has no data rows", field="data")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


@dataclass(frozen=True, slots=True)
class Target:
    """The outcome as 0/1 plus how it was read, so scoring can explain what "default" meant."""

    y: np.ndarray
    column: str
    positive_label: str


def _as_label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _auto_positive(labels: list[str], column: str) -> str:
    lowered = {label.lower() for label in labels}
    if lowered <= _TRUE_WORDS | _FALSE_WORDS and len(lowered & _TRUE_WORDS) == 1:
        return next(label for label in labels if label.lower() in _TRUE_WORDS)
    raise ValidationError(
        f"target {column!r} has labels {sorted(labels)}; say which means default with --positive",
        field="target",
    )


def encode_target(frame: pd.DataFrame, column: str, positive: str | None = None) -> Target:
    """Map the outcome to 1 = default; rows with a missing outcome are an error, not a guess."""
    if column not in frame.columns:
        raise ValidationError(
            f"target column {column!r} not found; columns are {list(frame.columns)[:20]}",
            field="target",
        )
    raw = frame[column]
    if raw.isna().any():
        raise ValidationError(
            f"target {column!r} has {int(raw.isna().sum())} missing values", field="target"
        )
    labels = sorted({_as_label(v) for v in raw.tolist()})
    if len(labels) < 2:
        raise ValidationError(
            f"target {column!r} has one class only ({labels}); a PD model needs both outcomes",
            field="target",
        )
    if positive is None:
        if len(labels) > 2:
            raise ValidationError(
                f"target {column!r} has {len(labels)} values {labels[:10]}; "
                "pass --positive to name the default label",
                field="target",
            )
        positive = _auto_positive(labels, column)
    if positive not in labels:
        raise ValidationError(
            f"--positive {positive!r} is not a value of {column!r} ({labels[:10]})",
            field="positive",
        )
    y = np.fromiter((_as_label(v) == positive for v in raw.tolist()), dtype=np.int8, count=len(raw))
    if y.min() == y.max():
        raise ValidationError(f"target {column!r} has one class only", field="target")
    return Target(y=y.astype(np.float64), column=column, positive_label=positive)

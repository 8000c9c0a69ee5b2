"""Writing a loan tape: CSV for people, Parquet for analytics, both from the same columns.

Money leaves as yuan with two places, exactly: both files carry `decimal128(18, 2)` built
straight from the fen integers (a decimal's unscaled value *is* the fen), so no float ever
carries a balance into a buyer's model; the CSV prints it as "123.45". Both files are written
by Arrow from one table. Missing values are empty in the CSV and null in Parquet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lendstack.collections.npl_tape import FIELDS, Kind
from lendstack.core.errors import ValidationError

_ARROW = {Kind.INT: pa.int64(), Kind.TEXT: pa.string(), Kind.DATE: pa.date32()}
MONEY = pa.decimal128(18, 2)


@dataclass(frozen=True, slots=True)
class TapeFiles:
    csv: Path
    parquet: Path
    sha256_csv: str
    rows: int


def _money_array(values: Sequence[int]) -> pa.Array:
    fen = np.asarray(values, dtype=np.int64)
    words = np.empty((len(fen), 2), dtype=np.int64)
    words[:, 0] = fen
    words[:, 1] = fen >> 63  # sign extension to 128 bits, little-endian
    buffer = pa.py_buffer(words.tobytes())
    return pa.Array.from_buffers(MONEY, len(fen), [None, buffer])


def _array(values: Any, kind: Kind) -> pa.Array:
    if kind is Kind.FEN:
        return _money_array(values)
    arr = np.asarray(values)
    if kind is Kind.DATE and arr.dtype.kind == "M":
        return pa.array(arr.astype("datetime64[D]"), type=pa.date32(), mask=np.isnat(arr))
    return pa.array(arr if arr.dtype.kind != "O" else arr.tolist(), type=_ARROW[kind])


def arrow_table(columns: Mapping[str, Sequence[Any]]) -> pa.Table:
    arrays = [_array(columns[f.name], f.kind) for f in FIELDS]
    return pa.Table.from_arrays(arrays, names=[f.name for f in FIELDS])


def write_tape(columns: Mapping[str, Sequence[Any]], out_dir: Path, stem: str) -> TapeFiles:
    """`<stem>.csv` and `<stem>.parquet` in `out_dir` (created if needed)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        csv_path, parquet_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.parquet"
        table = arrow_table(columns)
        pacsv.write_csv(table, csv_path)
        pq.write_table(table, parquet_path)
    except OSError as exc:
        raise ValidationError(f"cannot write the tape to {out_dir}: {exc}", field="out") from exc
    digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    return TapeFiles(csv_path, parquet_path, digest, len(columns["loan_id"]))


__all__ = ["MONEY", "TapeFiles", "arrow_table", "write_tape"]

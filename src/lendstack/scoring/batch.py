"""Batch scoring of a table, and the writer that puts results next to the caller's keys."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from lendstack.core.errors import ValidationError
from lendstack.scoring.explain import TOP_REASONS
from lendstack.scoring.features import DropReason
from lendstack.scoring.model import CreditModel


def score_frame(model: CreditModel, frame: pd.DataFrame, reasons: bool = False) -> pd.DataFrame:
    """PD, points and scorecard points per row; id-like columns are carried through for joins."""
    spec = model.spec
    X = spec.encode_frame(frame)
    scores = model.score_matrix(X)
    keys = [d.name for d in spec.dropped if d.reason is DropReason.ID_LIKE and d.name in frame]
    out = frame[keys].copy() if keys else pd.DataFrame(index=frame.index)
    out["pd"] = scores.pd
    out["points"] = np.round(scores.points, 2)
    out["scorecard_points"] = np.round(scores.scorecard_points, 2)
    if reasons:
        found = model.reasons_matrix(X)
        for k in range(TOP_REASONS):
            out[f"reason_{k + 1}"] = [r[k].text if len(r) > k else "" for r in found]
    return out.reset_index(drop=True)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """CSV or Parquet by extension, written to a temporary file and renamed into place."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet", ".pq"}:
        raise ValidationError("--out must end in .csv or .parquet", field="out")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Which columns become model features, how they are encoded, and what to call them.

The feature spec is learned once from the training table and saved as JSON. Everything
downstream (LightGBM, the scorecard, the logistic baseline, reason codes, drift) works on the
single float matrix it produces: numbers stay numbers, categories become their index in a
sorted list, and anything missing or unseen becomes NaN. One encoding, one place, so a
single-row score at decision time cannot drift from what training saw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from lendstack.core.errors import ValidationError


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class DropReason(StrEnum):
    ID_LIKE = "id-like (a different value on every row)"
    ALL_MISSING = "entirely missing"
    CONSTANT = "constant"
    EXCLUDED = "excluded by --exclude"
    PROTECTED = "protected attribute (kept for fairness only)"
    DATETIME = "date/time column (derive numeric features from it first)"


@dataclass(frozen=True, slots=True)
class Feature:
    """One model input; `code` is the stable reason code, `label` its human text."""

    name: str
    kind: FeatureKind
    code: str
    label: str
    categories: tuple[str, ...] = ()
    unit: str = ""


@dataclass(frozen=True, slots=True)
class DroppedColumn:
    name: str
    reason: DropReason


def normalise_category(value: Any) -> str | None:
    """One spelling per category whatever the reader did: 1, 1.0 and "1" are the same level."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text if text else None


def _parse_number(value: Any) -> float:
    if value is None or value is pd.NA or (isinstance(value, str) and not value.strip()):
        return math.nan
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """The learned encoding: features in model order plus the columns left out and why."""

    features: tuple[Feature, ...]
    dropped: tuple[DroppedColumn, ...] = ()
    protected: tuple[str, ...] = ()
    _lookup: tuple[dict[str, int], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        lookups = tuple({c: i for i, c in enumerate(f.categories)} for f in self.features)
        object.__setattr__(self, "_lookup", lookups)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def categorical_indices(self) -> tuple[int, ...]:
        return tuple(i for i, f in enumerate(self.features) if f.kind is FeatureKind.CATEGORICAL)

    def encode_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode a table column by column; a feature absent from the table is all-missing."""
        out = np.full((len(frame), len(self.features)), np.nan, dtype=np.float64)
        for j, feat in enumerate(self.features):
            if feat.name not in frame.columns:
                continue
            column = frame[feat.name]
            if feat.kind is FeatureKind.NUMERIC:
                out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(
                    np.float64, na_value=np.nan
                )
            else:
                lookup = self._lookup[j]
                codes = [lookup.get(normalise_category(v), -1) for v in column.tolist()]  # type: ignore[arg-type]
                values = np.asarray(codes, dtype=np.float64)
                values[values < 0] = np.nan
                out[:, j] = values
        return out

    def encode_row(self, row: Mapping[str, Any]) -> np.ndarray:
        """Encode one applicant from a plain mapping, without pandas (the decision-time path)."""
        out = np.empty(len(self.features), dtype=np.float64)
        for j, feat in enumerate(self.features):
            value = row.get(feat.name)
            if feat.kind is FeatureKind.NUMERIC:
                out[j] = _parse_number(value)
            else:
                key = normalise_category(value)
                out[j] = self._lookup[j].get(key, math.nan) if key is not None else math.nan
        return out

    def encode_rows(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """`encode_row` of every row, stacked: the same values, without a call per value
        for the common cases (a float for a number, text for a category)."""
        out = np.empty((len(rows), len(self.features)), dtype=np.float64)
        plan = [
            (j, feat.name, feat.kind is FeatureKind.NUMERIC, self._lookup[j])
            for j, feat in enumerate(self.features)
        ]
        for i, row in enumerate(rows):
            target = out[i]
            for j, name, numeric, lookup in plan:
                value = row.get(name)
                if numeric:
                    target[j] = value if type(value) is float else _parse_number(value)
                    continue
                key = (value.strip() or None) if type(value) is str else normalise_category(value)
                target[j] = lookup.get(key, math.nan) if key is not None else math.nan
        return out

    def display_value(self, j: int, value: float) -> str:
        """Turn an encoded value back into what the applicant's record said, for reason text."""
        if math.isnan(value):
            return "missing"
        feat = self.features[j]
        if feat.kind is FeatureKind.CATEGORICAL:
            return feat.categories[int(value)]
        return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _is_id_like(column: pd.Series, non_null: pd.Series) -> bool:
    """Unique on every row and either text or a run of integers (a row number, an account id).

    Continuous amounts can also be unique on small tables, so numbers only count as ids when
    they are integers packed into a range about as wide as the table.
    """
    if len(non_null) < len(column) or non_null.nunique() < len(column) or len(column) < 3:
        return False
    if not pd.api.types.is_numeric_dtype(column):
        return True
    values = non_null.to_numpy(np.float64)
    if not np.all(np.mod(values, 1.0) == 0.0):
        return False
    return bool(values.max() - values.min() < 1.5 * len(values))


def _drop_reason(column: pd.Series) -> DropReason | None:
    if pd.api.types.is_datetime64_any_dtype(column):
        return DropReason.DATETIME
    non_null = column.dropna()
    if non_null.empty:
        return DropReason.ALL_MISSING
    if non_null.nunique() <= 1:
        return DropReason.CONSTANT
    if _is_id_like(column, non_null):
        return DropReason.ID_LIKE
    return None


def _kind(column: pd.Series) -> FeatureKind:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return FeatureKind.NUMERIC
    return FeatureKind.CATEGORICAL


def _categories(column: pd.Series) -> tuple[str, ...]:
    levels = {normalise_category(v) for v in column.dropna().tolist()}
    return tuple(sorted(level for level in levels if level is not None))


def infer_spec(
    frame: pd.DataFrame,
    target: str,
    exclude: Sequence[str] = (),
    protected: Sequence[str] = (),
    labels: Mapping[str, Any] | None = None,
) -> FeatureSpec:
    """Choose features from a training table; drops are reported, never raised."""
    for name in (*exclude, *protected):
        if name not in frame.columns:
            raise ValidationError(f"column {name!r} not in the data", field="columns")
    labels = labels or {}
    features: list[Feature] = []
    dropped: list[DroppedColumn] = []
    for name in frame.columns:
        if name == target:
            continue
        reason = _manual_reason(name, exclude, protected) or _drop_reason(frame[name])
        if reason is not None:
            dropped.append(DroppedColumn(name, reason))
            continue
        kind = _kind(frame[name])
        cats = _categories(frame[name]) if kind is FeatureKind.CATEGORICAL else ()
        code = f"R{len(features) + 1:02d}"
        label, unit = _label(labels.get(name), name)
        features.append(Feature(name, kind, code, label, cats, unit))
    if not features:
        raise ValidationError("no usable feature columns remain after dropping", field="data")
    return FeatureSpec(tuple(features), tuple(dropped), tuple(protected))


def _label(entry: Any, name: str) -> tuple[str, str]:
    """A label file maps a column to text, or to {"label": text, "unit": "months late"}."""
    if isinstance(entry, Mapping):
        return str(entry.get("label", name)), str(entry.get("unit", ""))
    return (str(entry), "") if entry else (name, "")


def _manual_reason(
    name: str, exclude: Sequence[str], protected: Sequence[str]
) -> DropReason | None:
    if name in protected:
        return DropReason.PROTECTED
    if name in exclude:
        return DropReason.EXCLUDED
    return None


def spec_to_dict(spec: FeatureSpec) -> dict[str, Any]:
    return {
        "features": [
            {
                "name": f.name,
                "kind": f.kind.value,
                "code": f.code,
                "label": f.label,
                "categories": list(f.categories),
                "unit": f.unit,
            }
            for f in spec.features
        ],
        "dropped": [{"name": d.name, "reason": d.reason.name} for d in spec.dropped],
        "protected": list(spec.protected),
    }


def spec_from_dict(data: Mapping[str, Any]) -> FeatureSpec:
    features = tuple(
        Feature(
            f["name"],
            FeatureKind(f["kind"]),
            f["code"],
            f["label"],
            tuple(f["categories"]),
            f.get("unit", ""),
        )
        for f in data["features"]
    )
    dropped = tuple(DroppedColumn(d["name"], DropReason[d["reason"]]) for d in data["dropped"])
    return FeatureSpec(features, dropped, tuple(data["protected"]))

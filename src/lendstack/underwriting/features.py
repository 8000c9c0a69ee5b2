"""From application to model row, declared in a data file (the feature map).

Training and decision time must compute every model input the same way, or the model scores
something it never saw. So the mapping is data, not code: a TOML file lists each model
feature with either a dotted path into the `Application` schema or one name from a small
whitelist of derived values, plus the label and unit that become its adverse-action reason
text. The training table (`lendstack applicants generate`) and the decision engine both go
through `FeatureMap.row`, and a model directory carries its map as `feature_map.toml`.

Each feature is compiled at load time into one small getter, so a row costs a few µs and
never touches pandas. PII fields (name, resident ID, mobile) are refused outright.
"""

from __future__ import annotations

import operator
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum, StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lendstack.core.errors import ValidationError
from lendstack.underwriting.application import PII_FIELDS, Application
from lendstack.underwriting.outcomes import INCOME_FLOOR, monthly_installment

FEATURE_MAP_FILE = "feature_map.toml"
"""Name of the feature map inside a model directory."""
DEFAULT_FEATURE_MAP = "default_model_features.toml"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RESERVED = frozenset({"defaulted"})
"""The training target's column name; a feature may not shadow it."""

Value = float | str
Getter = Callable[[Application], Value]


class Derived(StrEnum):
    """The whitelist of computed inputs. Ratios divide by max(income, 100 CNY)."""

    AGE = "age"
    """Completed years on the application date, from the resident ID."""
    OBLIGATIONS_TO_INCOME = "obligations_to_income"
    UNSECURED_BALANCE_TO_INCOME = "unsecured_balance_to_income"
    REQUESTED_AMOUNT_TO_INCOME = "requested_amount_to_income"
    INSTALLMENT_BURDEN = "installment_burden"
    """(obligations + the new loan's level installment at the reference APR) / income."""


@dataclass(frozen=True, slots=True)
class MappedFeature:
    """One model column: where it comes from, its kind and its reason text."""

    name: str
    source: str
    """Dotted path into the application, or the derived name when `derived` is true."""
    derived: bool
    categorical: bool
    label: str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class FeatureMap:
    features: tuple[MappedFeature, ...]
    reference_apr: float
    _getters: tuple[Getter, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        getters = tuple(_compile(f, self.reference_apr) for f in self.features)
        object.__setattr__(self, "_getters", getters)

    @classmethod
    def load(cls, path: str | Path) -> FeatureMap:
        """Read and check a feature-map file (or a model directory holding one)."""
        file = Path(path)
        if file.is_dir():
            file = file / FEATURE_MAP_FILE
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValidationError(
                f"cannot read feature map {file}: {exc}", field="feature_map"
            ) from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureMap:
        if data.get("format") != 1:
            raise ValidationError("unsupported or missing format (expected 1)", field="format")
        apr = data.get("reference_apr")
        if not isinstance(apr, float | int) or isinstance(apr, bool) or not 0 < apr < 1:
            raise ValidationError("must be a number in (0, 1)", field="reference_apr")
        entries = data.get("feature")
        if not isinstance(entries, list) or not entries:
            raise ValidationError("needs at least one [[feature]]", field="feature")
        features = tuple(_parse_feature(e, i) for i, e in enumerate(entries))
        _check_unique(features)
        return cls(features, float(apr))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def row(self, app: Application) -> dict[str, Value]:
        """The model row for one application: floats for numbers, strings for categories."""
        return {f.name: get(app) for f, get in zip(self.features, self._getters, strict=True)}

    def rows(self, apps: Iterable[Application]) -> list[dict[str, Value]]:
        return [self.row(app) for app in apps]

    def columns(self, apps: Iterable[Application]) -> dict[str, list[Value]]:
        """Column-wise batch form (name -> values), ready for a DataFrame or a CSV writer."""
        out: dict[str, list[Value]] = {f.name: [] for f in self.features}
        appenders = [
            (out[f.name].append, get) for f, get in zip(self.features, self._getters, strict=True)
        ]
        for app in apps:
            for append, get in appenders:
                append(get(app))
        return out

    def labels(self) -> dict[str, dict[str, str]]:
        """The `--labels` JSON for `lendstack model train`: reason text and unit per feature."""
        return {f.name: {"label": f.label, "unit": f.unit} for f in self.features}

    def check_model(self, model_features: Iterable[tuple[str, bool]]) -> None:
        """Refuse a map that does not produce what the model expects (name, categorical?)."""
        kinds = {f.name: f.categorical for f in self.features}
        for name, categorical in model_features:
            if name not in kinds:
                raise ValidationError(
                    f"model feature {name!r} is not in the feature map", field=name
                )
            if kinds[name] != categorical:
                raise ValidationError("kind differs between model and feature map", field=name)


def default_model_dir() -> Path:
    """The shipped default credit model (with its `feature_map.toml`), as a filesystem path."""
    return Path(str(resources.files("lendstack.underwriting").joinpath("default_model")))


def default_feature_map_path() -> Path:
    return Path(str(resources.files("lendstack.underwriting").joinpath(DEFAULT_FEATURE_MAP)))


def _parse_feature(entry: Any, index: int) -> MappedFeature:
    if not isinstance(entry, dict):
        raise ValidationError("must be a table", field=f"feature[{index}]")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
        raise ValidationError(f"bad or reserved name {name!r}", field=f"feature[{index}]")
    unknown = set(entry) - {"name", "source", "derived", "label", "unit"}
    if unknown:
        raise ValidationError(f"unknown keys {sorted(unknown)}", field=name)
    if ("source" in entry) == ("derived" in entry):
        raise ValidationError("needs exactly one of source or derived", field=name)
    label, unit = entry.get("label", name), entry.get("unit", "")
    if not isinstance(label, str) or not isinstance(unit, str) or not label.strip():
        raise ValidationError("label and unit must be text", field=name)
    if "derived" in entry:
        try:
            derived = Derived(entry["derived"])
        except ValueError:
            known = ", ".join(d.value for d in Derived)
            raise ValidationError(
                f"unknown derived value {entry['derived']!r} (known: {known})", field=name
            ) from None
        return MappedFeature(name, derived.value, True, False, label, unit)
    categorical = _categorical_leaf(name, entry["source"])
    return MappedFeature(name, entry["source"], False, categorical, label, unit)


def _categorical_leaf(name: str, path: Any) -> bool:
    """Walk the schema along `path`; a leaf must exist, hold a scalar and not be PII."""
    if not isinstance(path, str) or not path:
        raise ValidationError("source must be a dotted path", field=name)
    model: type[BaseModel] = Application
    parts = path.split(".")
    for depth, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            raise ValidationError(f"unknown path {path!r} in the application", field=name)
        kind = info.annotation
        last = depth == len(parts) - 1
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if last:
                raise ValidationError(f"{path!r} is a group, not a value", field=name)
            model = kind
        elif not last:
            raise ValidationError(f"unknown path {path!r} in the application", field=name)
    if parts[0] == "applicant" and parts[-1] in PII_FIELDS:
        raise ValidationError(f"{path!r} is personal data and may not feed the model", field=name)
    return isinstance(kind, type) and issubclass(kind, str | Enum) and not issubclass(kind, bool)


def _compile(feature: MappedFeature, apr: float) -> Getter:
    if feature.derived:
        return _DERIVED[Derived(feature.source)](apr)
    fetch = operator.attrgetter(feature.source)
    if feature.categorical:
        return lambda app: _text(fetch(app))
    return lambda app: float(fetch(app))


def _text(value: Any) -> str:
    return value.value if isinstance(value, Enum) else str(value)


def _income(app: Application) -> float:
    return max(float(app.applicant.monthly_income), INCOME_FLOOR)


def _per_income(pick: Callable[[Application], Decimal | float]) -> Callable[[float], Getter]:
    return lambda _apr: lambda app: float(pick(app)) / _income(app)


def _burden(apr: float) -> Getter:
    def burden(app: Application) -> float:
        new = float(monthly_installment(float(app.loan.amount), app.loan.term_months, apr))
        return (float(app.applicant.monthly_obligations) + new) / _income(app)

    return burden


_DERIVED: dict[Derived, Callable[[float], Getter]] = {
    Derived.AGE: lambda _apr: lambda app: float(app.age),
    Derived.OBLIGATIONS_TO_INCOME: _per_income(lambda a: a.applicant.monthly_obligations),
    Derived.UNSECURED_BALANCE_TO_INCOME: _per_income(lambda a: a.bureau.unsecured_balance),
    Derived.REQUESTED_AMOUNT_TO_INCOME: _per_income(lambda a: a.loan.amount),
    Derived.INSTALLMENT_BURDEN: _burden,
}


def _check_unique(features: tuple[MappedFeature, ...]) -> None:
    seen: set[str] = set()
    for f in features:
        if f.name in seen:
            raise ValidationError("feature named twice", field=f.name)
        seen.add(f.name)

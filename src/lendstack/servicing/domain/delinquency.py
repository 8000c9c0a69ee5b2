"""Delinquency: M-buckets by days past due, and the five-category risk classification.

Both are thresholds on DPD and both must also run inside SQL (the COB is set-based), so each
exposes its thresholds as plain tuples of ints besides the Python functions.

Classification follows the Measures for Risk Classification of Financial Assets of Commercial
Banks (CBIRC + PBOC Order 2023 No. 1, effective 2023-07-01): any overdue → 关注, > 90 DPD → 次级,
> 270 → 可疑, > 360 → 损失. Profiles are versioned TOML files so that a lender can run its own
(stricter) bands and an old profile stays reproducible.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic import ValidationError as PydanticError

from lendstack.core.errors import NotFound, ValidationError

DEFAULT_PROFILE_ID = "cn-2023"


def _non_negative_dpd(dpd: int) -> int:
    if isinstance(dpd, bool) or not isinstance(dpd, int) or dpd < 0:
        raise ValidationError(f"must be a non-negative integer, got {dpd!r}", field="dpd")
    return dpd


class Bucket(NamedTuple):
    """One delinquency bucket: DPD in [min_dpd, max_dpd]; `max_dpd` None means unbounded."""

    label: str
    min_dpd: int
    max_dpd: int | None


@dataclass(frozen=True, slots=True)
class BucketScheme:
    """M0 (current), M1 = 1..width DPD, M2 = width+1..2·width, …, and M{last}+ beyond.

    The default (30, 7) gives M0, M1 (1–30), …, M6 (151–180) and M7+ (181+).
    """

    width: int = 30
    last: int = 7

    def __post_init__(self) -> None:
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValidationError(f"must be a positive integer, got {self.width!r}", field="width")
        if isinstance(self.last, bool) or not isinstance(self.last, int) or self.last < 1:
            raise ValidationError(f"must be a positive integer, got {self.last!r}", field="last")

    def index_of(self, dpd: int) -> int:
        """0 for current, else ceil(dpd / width) capped at `last`."""
        days = _non_negative_dpd(dpd)
        return min(-(-days // self.width), self.last)

    def label_of_index(self, index: int) -> str:
        return f"M{index}+" if index >= self.last else f"M{index}"

    def bucket_of(self, dpd: int) -> str:
        return self.label_of_index(self.index_of(dpd))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.label_of_index(i) for i in range(self.last + 1))

    @property
    def lower_bounds(self) -> tuple[int, ...]:
        """Inclusive minimum DPD of M1..M{last}+ (SQL: count of bounds <= dpd = index)."""
        return tuple((i - 1) * self.width + 1 for i in range(1, self.last + 1))

    @property
    def buckets(self) -> tuple[Bucket, ...]:
        rows = [Bucket(self.label_of_index(0), 0, 0)]
        for i, low in enumerate(self.lower_bounds, start=1):
            high = None if i == self.last else low + self.width - 1
            rows.append(Bucket(self.label_of_index(i), low, high))
        return tuple(rows)


DEFAULT_BUCKETS = BucketScheme()


def bucket_of(dpd: int, width: int = 30, last: int = 7) -> str:
    """The bucket label ("M0", "M1", …, "M7+") of `dpd` days past due."""
    return BucketScheme(width, last).bucket_of(dpd)


class RiskClass(StrEnum):
    """The five regulatory categories, in increasing severity."""

    NORMAL = "normal"
    SPECIAL_MENTION = "special_mention"
    SUBSTANDARD = "substandard"
    DOUBTFUL = "doubtful"
    LOSS = "loss"

    @property
    def chinese(self) -> str:
        return _CHINESE[self]

    @property
    def severity(self) -> int:
        """0 (正常) … 4 (损失); lets SQL store and compare classes as small ints."""
        return list(RiskClass).index(self)

    @property
    def is_non_performing(self) -> bool:
        """次级, 可疑 and 损失 are the non-performing loans (不良贷款) of the NPL ratio."""
        return self.severity >= RiskClass.SUBSTANDARD.severity


_CHINESE = {
    RiskClass.NORMAL: "正常",
    RiskClass.SPECIAL_MENTION: "关注",
    RiskClass.SUBSTANDARD: "次级",
    RiskClass.DOUBTFUL: "可疑",
    RiskClass.LOSS: "损失",
}


@dataclass(frozen=True, slots=True)
class ClassificationProfile:
    """A versioned DPD → RiskClass mapping.

    `thresholds` are (min_dpd_exclusive, class) pairs in increasing order: a loan with
    dpd > t takes the class of the largest such t, and NORMAL below the first.
    """

    id: str
    version: int
    effective_from: date
    thresholds: tuple[tuple[int, RiskClass], ...]
    source: str

    def __post_init__(self) -> None:
        if not self.thresholds:
            raise ValidationError("needs at least one threshold", field="thresholds")
        days = [d for d, _ in self.thresholds]
        classes = [RiskClass(c) for _, c in self.thresholds]
        if any(d < 0 for d in days) or days != sorted(set(days)):
            raise ValidationError("DPD must be >= 0 and strictly increasing", field="thresholds")
        severities = [c.severity for c in classes]
        if RiskClass.NORMAL in classes or severities != sorted(set(severities)):
            raise ValidationError(
                "classes must rise strictly in severity and exclude normal", field="thresholds"
            )

    def classify(self, dpd: int) -> RiskClass:
        days = _non_negative_dpd(dpd)
        result = RiskClass.NORMAL
        for over, risk_class in self.thresholds:
            if days > over:
                result = risk_class
        return result

    @property
    def dpd_thresholds(self) -> tuple[int, ...]:
        """The exclusive DPD bounds, for SQL CASE expressions."""
        return tuple(d for d, _ in self.thresholds)

    @property
    def severity_thresholds(self) -> tuple[tuple[int, int], ...]:
        """(min_dpd_exclusive, severity) pairs: the thresholds as plain ints."""
        return tuple((d, c.severity) for d, c in self.thresholds)


class _ThresholdFile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    over_dpd: StrictInt
    risk_class: RiskClass = Field(alias="class")


class _ProfileFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictStr
    version: StrictInt
    effective_from: date
    source: StrictStr
    thresholds: list[_ThresholdFile]


def _pydantic_problem(exc: PydanticError) -> tuple[str, str]:
    """(field path, message) of the first problem pydantic found, e.g. ("thresholds.1.class", …)."""
    first = exc.errors()[0]
    return ".".join(str(p) for p in first["loc"]) or "file", first["msg"]


def parse_profile(data: dict[str, Any], source: str) -> ClassificationProfile:
    """A profile from already-parsed TOML `data`; errors name `source` and the field."""
    try:
        raw = _ProfileFile.model_validate(data)
        pairs = tuple((t.over_dpd, t.risk_class) for t in raw.thresholds)
        return ClassificationProfile(raw.id, raw.version, raw.effective_from, pairs, raw.source)
    except PydanticError as exc:
        field, message = _pydantic_problem(exc)
        raise ValidationError(f"{source}: {message}", field=field) from exc
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}", field=exc.field) from exc


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{source}: not valid TOML: {exc}", field="file") from exc


def load_profile(path: Path) -> ClassificationProfile:
    """Read a classification profile TOML file (see classification/cn-2023.toml)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFound(f"cannot read classification profile {path}: {exc}") from exc
    return parse_profile(_read_toml(text, str(path)), str(path))


@functools.cache
def _shipped_profiles() -> tuple[ClassificationProfile, ...]:
    folder = resources.files("lendstack") / "servicing" / "classification"
    items = sorted((t for t in folder.iterdir() if t.name.endswith(".toml")), key=lambda t: t.name)
    return tuple(parse_profile(_read_toml(t.read_text("utf-8"), t.name), t.name) for t in items)


def builtin_profiles() -> dict[str, ClassificationProfile]:
    """The profiles shipped in lendstack/servicing/classification, by id (read once)."""
    return {p.id: p for p in _shipped_profiles()}


def get_profile(profile_id: str) -> ClassificationProfile:
    """A built-in profile by id; `NotFound` names the ones that exist."""
    profiles = builtin_profiles()
    if profile_id not in profiles:
        known = ", ".join(sorted(profiles))
        raise NotFound(
            f"no classification profile {profile_id!r} (known: {known})", field="profile"
        )
    return profiles[profile_id]


def default_profile() -> ClassificationProfile:
    """cn-2023: the CBIRC/PBOC 2023 Measures' DPD floors (REGULATION.md §7.1)."""
    return get_profile(DEFAULT_PROFILE_ID)

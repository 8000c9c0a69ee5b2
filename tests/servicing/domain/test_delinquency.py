"""Buckets and the five-category classification, at every boundary."""

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.errors import NotFound, ValidationError
from lendstack.servicing.domain import (
    DEFAULT_BUCKETS,
    BucketScheme,
    ClassificationProfile,
    RiskClass,
    bucket_of,
    builtin_profiles,
    default_profile,
    get_profile,
    load_profile,
)

N, SM, SS, D, L = (
    RiskClass.NORMAL,
    RiskClass.SPECIAL_MENTION,
    RiskClass.SUBSTANDARD,
    RiskClass.DOUBTFUL,
    RiskClass.LOSS,
)


@pytest.mark.parametrize(
    ("dpd", "expected"),
    [
        (0, N),
        (1, SM),
        (30, SM),
        (31, SM),
        (90, SM),
        (91, SS),
        (270, SS),
        (271, D),
        (360, D),
        (361, L),
        (5000, L),
    ],
)
def test_default_classification_boundaries(dpd: int, expected: RiskClass) -> None:
    assert default_profile().classify(dpd) is expected


@pytest.mark.parametrize(
    ("dpd", "label"),
    [(0, "M0"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"), (90, "M3"), (91, "M4"),
     (180, "M6"), (181, "M7+"), (270, "M7+"), (271, "M7+"), (360, "M7+"), (361, "M7+")],
)  # fmt: skip
def test_bucket_boundaries(dpd: int, label: str) -> None:
    assert bucket_of(dpd) == label
    assert DEFAULT_BUCKETS.bucket_of(dpd) == label


def test_bucket_scheme_is_configurable() -> None:
    assert bucket_of(45, width=15, last=4) == "M3"
    assert bucket_of(46, width=15, last=4) == "M4+"
    assert BucketScheme(30, 3).labels == ("M0", "M1", "M2", "M3+")
    assert [b.label for b in DEFAULT_BUCKETS.buckets] == [f"M{i}" for i in range(7)] + ["M7+"]
    assert DEFAULT_BUCKETS.buckets[1] == ("M1", 1, 30)
    assert DEFAULT_BUCKETS.buckets[-1] == ("M7+", 181, None)
    assert DEFAULT_BUCKETS.lower_bounds == (1, 31, 61, 91, 121, 151, 181)


@pytest.mark.parametrize(("width", "last"), [(0, 7), (30, 0), (True, 7)])
def test_bad_bucket_scheme(width: int, last: int) -> None:
    with pytest.raises(ValidationError):
        BucketScheme(width, last)


@pytest.mark.parametrize("dpd", [-1, True, "3"])
def test_dpd_must_be_a_non_negative_int(dpd: int) -> None:
    with pytest.raises(ValidationError) as err:
        bucket_of(dpd)
    assert err.value.field == "dpd"
    with pytest.raises(ValidationError):
        default_profile().classify(dpd)


@given(st.integers(0, 2000), st.integers(1, 90), st.integers(1, 12))
def test_bucket_index_matches_the_sql_bounds(dpd: int, width: int, last: int) -> None:
    scheme = BucketScheme(width, last)
    index = scheme.index_of(dpd)
    assert index == sum(1 for low in scheme.lower_bounds if low <= dpd)
    bucket = scheme.buckets[index]
    assert bucket.min_dpd <= dpd
    assert bucket.max_dpd is None or dpd <= bucket.max_dpd


@given(st.integers(0, 2000), st.integers(0, 2000))
def test_classification_is_monotone(a: int, b: int) -> None:
    p = default_profile()
    low, high = sorted((a, b))
    assert p.classify(low).severity <= p.classify(high).severity
    expected = sum(1 for t in p.dpd_thresholds if high > t)
    assert p.classify(high).severity == expected


def test_risk_class_labels() -> None:
    assert [c.chinese for c in RiskClass] == ["正常", "关注", "次级", "可疑", "损失"]
    assert [c.is_non_performing for c in RiskClass] == [False, False, True, True, True]
    assert [c.severity for c in RiskClass] == [0, 1, 2, 3, 4]


def test_profiles_expose_plain_thresholds() -> None:
    p = default_profile()
    assert p.id == "cn-2023"
    assert p.effective_from == date(2023, 7, 1)
    assert p.dpd_thresholds == (0, 90, 270, 360)
    assert p.severity_thresholds == ((0, 1), (90, 2), (270, 3), (360, 4))
    assert "2023" in p.source


def test_card_profile_is_stricter() -> None:
    card = get_profile("cn-card-2011")
    assert card.classify(121) is D
    assert card.classify(181) is L
    assert set(builtin_profiles()) >= {"cn-2023", "cn-card-2011"}
    with pytest.raises(NotFound):
        get_profile("nope")


GOOD = """
id = "mine"
version = 2
effective_from = 2025-01-01
source = "internal policy"
thresholds = [
  { over_dpd = 0, class = "special_mention" },
  { over_dpd = 60, class = "substandard" },
]
"""


def test_custom_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    p = load_profile(path)
    assert (p.id, p.version) == ("mine", 2)
    assert p.classify(61) is SS
    assert p.classify(10_000) is SS


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("version = 2", 'version = "two"', "version"),
        ('source = "internal policy"\n', "", "source"),
        ('"substandard"', '"awful"', "thresholds.1.class"),
        ("over_dpd = 60", "over_dpd = 0", "thresholds"),
        ('"substandard"', '"special_mention"', "thresholds"),
        ('"special_mention"', '"normal"', "thresholds"),
        ("version = 2", "version = 2\ncolour = 1", "colour"),
        ("effective_from = 2025-01-01", "effective_from = 1", "effective_from"),
        ("thresholds = [", "thresholds = [[", "file"),
    ],
)
def test_malformed_profile_names_file_and_field(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(old, new))
    with pytest.raises(ValidationError) as err:
        load_profile(path)
    assert err.value.field == field
    assert "bad.toml" in str(err.value)


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_profile(tmp_path / "none.toml")


def test_profile_validates_when_built_directly() -> None:
    with pytest.raises(ValidationError):
        ClassificationProfile("x", 1, date(2024, 1, 1), (), "s")
    with pytest.raises(ValidationError):
        ClassificationProfile("x", 1, date(2024, 1, 1), ((10, SS), (5, D)), "s")

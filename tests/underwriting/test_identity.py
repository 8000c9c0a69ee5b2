"""Resident ID (GB 11643-1999) and mobile checks, against the standard's own examples."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.errors import ValidationError
from lendstack.underwriting import identity

# Published examples: the standard's sample number and the widely quoted 1880 example.
KNOWN_VALID = ("11010519491231002X", "440524188001010014")


@pytest.mark.parametrize("resident_id", KNOWN_VALID)
def test_published_examples_pass(resident_id: str) -> None:
    assert identity.normalise_resident_id(resident_id) == resident_id


def test_lower_case_x_is_normalised() -> None:
    assert identity.normalise_resident_id("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    ("resident_id", "fragment"),
    [
        ("110105194912310021", "checksum"),
        ("11010519491231002", "18 characters"),
        ("1101051949123100AX", "18 characters"),
        ("99010519491231002X", "region"),
        ("110105194902300021", "birth date"),
    ],
)
def test_bad_ids_name_the_problem(resident_id: str, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment) as info:
        identity.normalise_resident_id(resident_id)
    assert info.value.field == "resident_id"


@given(
    region=st.sampled_from(sorted(identity.PROVINCE_CODES)),
    born=st.dates(date(1930, 1, 1), date(2010, 12, 31)),
    sequence=st.integers(0, 999),
    position=st.integers(0, 16),
    delta=st.integers(1, 9),
)
def test_any_single_digit_change_fails_the_checksum(
    region: str, born: date, sequence: int, position: int, delta: int
) -> None:
    valid = identity.make_resident_id(region + "0101", born, sequence)
    assert identity.normalise_resident_id(valid) == valid
    digits = list(valid)
    digits[position] = str((int(digits[position]) + delta) % 10)
    mutated = "".join(digits)
    with pytest.raises(ValidationError):
        identity.normalise_resident_id(mutated)


def test_age_counts_completed_years() -> None:
    rid = "11010519491231002X"
    assert identity.age_on(rid, date(2026, 12, 30)) == 76
    assert identity.age_on(rid, date(2026, 12, 31)) == 77


@pytest.mark.parametrize("raw", ["13812345678", "+86 138-1234-5678", "008613812345678"])
def test_mobile_forms(raw: str) -> None:
    assert identity.normalise_mobile(raw) == "13812345678"


@pytest.mark.parametrize("raw", ["12812345678", "1381234567", "138123456789", "abc"])
def test_bad_mobiles(raw: str) -> None:
    with pytest.raises(ValidationError) as info:
        identity.normalise_mobile(raw)
    assert info.value.field == "mobile"


def test_masks_hide_the_middle() -> None:
    assert identity.mask_resident_id("11010519491231002X") == "110**************X"
    assert identity.mask_mobile("13812345678") == "138****5678"
    assert identity.mask_name("张伟") == "张*"

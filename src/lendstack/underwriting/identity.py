"""Identity checks on a mainland resident ID and a mobile number. Pure functions, no I/O.

The 18-character resident identity number (GB 11643-1999) is: 6 digits of region, 8 digits of
birth date (YYYYMMDD), 3 digits of sequence (odd for men, even for women) and one check
character computed with ISO 7064 MOD 11-2, where a value of 10 is written ``X``.
"""

from __future__ import annotations

import re
from datetime import date

from lendstack.core.errors import ValidationError
from lendstack.core.regions import PROVINCE_CODES

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
"""Index = (weighted sum mod 11); the standard's table of check characters."""

_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalise_resident_id(value: str) -> str:
    """The ID in canonical form (upper-case X), or a ValidationError saying what is wrong."""
    text = value.strip().upper()
    if not _ID_SHAPE.match(text):
        raise ValidationError(
            "must be 18 characters: 17 digits and a digit or X", field="resident_id"
        )
    if text[:2] not in PROVINCE_CODES:
        raise ValidationError(f"unknown region code {text[:2]}", field="resident_id")
    birth_date(text)
    expected = check_character(text[:17])
    if text[17] != expected:
        raise ValidationError(
            f"fails the GB 11643-1999 checksum (check character should be {expected})",
            field="resident_id",
        )
    return text


def birth_date(resident_id: str) -> date:
    digits = resident_id[6:14]
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise ValidationError(f"{digits} is not a valid birth date", field="resident_id") from None


def age_on(resident_id: str, on: date) -> int:
    """Completed years of age on `on`."""
    born = birth_date(resident_id)
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def gender_of(resident_id: str) -> str:
    """ "male" or "female": GB 11643-1999 gives men an odd 17th digit (the sequence code)."""
    digit = resident_id[16:17]
    if not digit.isdigit():
        raise ValidationError("has no sequence digit at position 17", field="resident_id")
    return "male" if int(digit) % 2 else "female"


def normalise_mobile(value: str) -> str:
    """An 11-digit mainland mobile number; a +86 / 0086 prefix, spaces and dashes are dropped."""
    text = re.sub(r"[\s-]", "", value)
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if not _MOBILE.match(text):
        raise ValidationError(
            "must be an 11-digit mainland mobile number 1[3-9]xxxxxxxxx", field="mobile"
        )
    return text


def make_resident_id(region: str, born: date, sequence: int) -> str:
    """A checksum-valid synthetic ID; used by the applicant generator, never for real people."""
    if len(region) != 6 or region[:2] not in PROVINCE_CODES or not region.isdigit():
        raise ValidationError(f"bad region code {region!r}", field="region")
    if not 0 <= sequence <= 999:
        raise ValidationError("must be 0..999", field="sequence")
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


def mask_resident_id(resident_id: str) -> str:
    """Shown to staff: region prefix and check character only."""
    return resident_id[:3] + "*" * 14 + resident_id[-1:]


def mask_mobile(mobile: str) -> str:
    return mobile[:3] + "****" + mobile[-4:]


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)

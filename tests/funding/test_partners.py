"""Partner files: the samples load; each kind of bad file names the partner and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lendstack.core.errors import ValidationError
from lendstack.funding import FunderKind, builtin_partners, load_partners, parse_partner_text

GOOD = """
id = "test-bank"
name = "Test Bank"
kind = "city_commercial"
home_region = "Zhejiang"
tier1_net_capital = 1000000.00
total_loans = 9000000.00
on_platform_list = true
funding_cost = 0.031
[appetite]
max_pd = 0.05
[quotas]
daily = 1000.00
total = 50000.00
"""


def test_samples_cover_each_kind_asked_for() -> None:
    kinds = {f.kind for f in builtin_partners()}
    assert {FunderKind.PLATFORM, FunderKind.STATE_OWNED, FunderKind.JOINT_STOCK,
            FunderKind.CITY_COMMERCIAL} <= kinds  # fmt: skip
    city = next(f for f in builtin_partners() if f.kind is FunderKind.CITY_COMMERCIAL)
    assert city.home_region == "Zhejiang"


def test_load_partners_reads_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD, encoding="utf-8")
    (funder,) = load_partners(tmp_path)
    assert funder.id == "test-bank"
    assert str(funder.quotas.daily) == "1000.00"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("daily = 1000.00", 'daily = "lots"', "quotas.daily"),
        ("daily = 1000.00", "daily = -5.00", "quotas.daily"),
        ("total = 50000.00", "total = true", "quotas.total"),
        ("tier1_net_capital = 1000000.00", "tier1_net_capital = -1", "tier1_net_capital"),
        ('kind = "city_commercial"', 'kind = "shadow_bank"', "kind"),
        ('home_region = "Zhejiang"', "", "home_region"),
        ('home_region = "Zhejiang"', 'home_region = "Atlantis"', "home_region"),
        ("funding_cost = 0.031", "funding_cost = 1.5", "funding_cost"),
        ("max_pd = 0.05", "max_pd = 0.05\ncolour = 1", "appetite.colour"),
    ],
)
def test_bad_file_names_partner_and_field(old: str, new: str, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_partner_text(GOOD.replace(old, new), "bad.toml")
    assert err.value.field == field
    assert "test-bank" in err.value.message


def test_a_bank_needs_its_balance_sheet() -> None:
    text = GOOD.replace("tier1_net_capital = 1000000.00\n", "")
    with pytest.raises(ValidationError) as err:
        parse_partner_text(text, "bad.toml")
    assert err.value.field == "tier1_net_capital"


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text(GOOD, encoding="utf-8")
    with pytest.raises(ValidationError, match="twice"):
        load_partners(tmp_path)

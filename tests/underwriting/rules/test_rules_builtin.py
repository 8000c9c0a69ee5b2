"""The shipped packs: integrity (sha256 of the bytes), defaults, and key values from REGULATION.md."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from lendstack.core.errors import NotFound, ValidationError
from lendstack.underwriting.rules import (
    LENDER_TYPES,
    Confidence,
    RuleKind,
    RuleStatus,
    builtin_packs,
    default_pack,
    load_pack,
)

PACK_DIR = Path(str(resources.files("lendstack.underwriting.rules").joinpath("packs")))
DAY = date(2026, 1, 15)


def test_builtin_packs_sorted_and_default_is_newest_final_regime():
    assert [p.id for p in builtin_packs()] == ["cn-2024-07", "cn-2025-10", "cn-2026-tight"]
    assert default_pack().id == "cn-2025-10"
    assert load_pack("cn-2026-tight").status is RuleStatus.GUIDANCE


@pytest.mark.parametrize("pack_id", ["cn-2024-07", "cn-2025-10", "cn-2026-tight"])
def test_sha256_is_of_the_file_bytes_and_text_is_the_file(pack_id):
    raw = (PACK_DIR / f"{pack_id}.toml").read_bytes()
    pack = load_pack(pack_id)
    assert pack.sha256 == hashlib.sha256(raw).hexdigest()
    assert pack.text.encode("utf-8") == raw


def test_load_by_path_matches_builtin(tmp_path):
    raw = (PACK_DIR / "cn-2025-10.toml").read_bytes()
    copy = tmp_path / "copy.toml"
    copy.write_bytes(raw)
    by_path, by_str = load_pack(copy), load_pack(str(copy))
    assert by_path.sha256 == by_str.sha256 == default_pack().sha256
    assert by_path.rules == default_pack().rules


def test_one_changed_byte_changes_the_checksum(tmp_path):
    text = (PACK_DIR / "cn-2025-10.toml").read_text(encoding="utf-8")
    changed = tmp_path / "changed.toml"
    changed.write_text(text.replace('max = "0.20"', 'max = "0.21"'), encoding="utf-8")
    assert load_pack(changed).sha256 != default_pack().sha256


def test_unknown_pack_and_missing_file_are_not_found(tmp_path):
    with pytest.raises(NotFound, match="cn-1999-01"):
        load_pack("cn-1999-01")
    with pytest.raises(NotFound):
        load_pack(tmp_path / "absent.toml")


def test_bad_file_error_names_the_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('id = "x"\n[[rules\n', encoding="utf-8")
    with pytest.raises(ValidationError, match=r"broken\.toml"):
        load_pack(bad)


def test_every_rule_cites_a_source_and_internal_defaults_are_unconfirmed():
    for pack in builtin_packs():
        for rule in pack.rules:
            assert rule.source.body
            assert rule.source.document
            assert rule.source.section
            if rule.id.startswith("CN.POLICY."):
                assert rule.confidence is Confidence.U
                assert "internal" in rule.source.document


def test_credit_line_is_200k_for_every_lender_type_in_force():
    pack = default_pack()
    for lender_type in LENDER_TYPES:
        caps = pack.select(DAY, lender_type).enabled(RuleKind.CREDIT_LINE_MAX)
        assert [r.params["max"] for r in caps] == [Decimal(200000)], lender_type


def test_current_regime_values_and_citations():
    pack = default_pack()
    bank_apr = pack.rule("CN.PRICING.MAX_COMPREHENSIVE_APR.BANK")
    assert bank_apr.params["max"] == Decimal("0.24")
    assert bank_apr.effective_from == date(2025, 10, 1)
    assert bank_apr.source.doc_no == "金规〔2025〕9号"
    cfc = pack.rule("CN.PRICING.MAX_COMPREHENSIVE_APR.CFC_GUIDANCE")
    assert (cfc.params["max"], cfc.status, cfc.confidence) == (
        Decimal("0.20"),
        RuleStatus.GUIDANCE,
        Confidence.S,
    )
    draft = pack.rule("CN.AMOUNT.INCOME_SHARE_MAX.MICROLENDER_DRAFT2020")
    assert (draft.status, draft.enabled, draft.applies_to) == (
        RuleStatus.DRAFT,
        False,
        ("online_microlender",),
    )
    assert draft.source.section == "REGULATION.md 1.7"
    students = pack.rule("CN.BORROWER.NO_STUDENTS.MICROLENDER")
    assert students.applies_to == ("online_microlender",)
    assert pack.rule("CN.TERM.CONSUMER_MAX").params["max"] == 60
    assert pack.rule("CN.TERM.BULLET_MAX.BANK").params["max"] == 12


def test_microlenders_also_ban_loan_repayment():
    pack = default_pack()
    micro = pack.select(DAY, "online_microlender").forbidden_purposes()
    bank = pack.select(DAY, "bank").forbidden_purposes()
    assert "loan_repayment" in micro
    assert "loan_repayment" not in bank
    assert {"house_purchase", "mortgage_repayment", "securities", "asset_management"} <= bank


def test_tight_scenario_binds_from_april_2026():
    tight = load_pack("cn-2026-tight")
    before = tight.select(date(2026, 3, 31), "bank").max_apr()
    after = tight.select(date(2026, 4, 1), "bank").max_apr()
    assert before is not None
    assert before.value == Decimal("0.24")
    assert after is not None
    assert (after.value, after.rule_id) == (Decimal("0.20"), "CN.SCENARIO.APR_MAX.TIGHT2026")

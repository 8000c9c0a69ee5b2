"""Selection by date and lender type, and which rule binds when several apply."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest

from lendstack.core.errors import ValidationError
from lendstack.underwriting.rules import RuleKind, Verdict, default_pack, load_pack

DAY = date(2026, 1, 15)
SHARE_ID = "CN.AMOUNT.INCOME_SHARE_MAX.MICROLENDER_DRAFT2020"


def ids(ruleset):
    return tuple(r.id for r in ruleset.rules)


def test_selection_respects_both_ends_of_the_effective_window(pack, rule):
    p = pack(
        [
            rule("T.APR.OLD", effective_to=date(2026, 3, 31)),
            rule("T.APR.NEW", effective_from=date(2026, 2, 1)),
        ]
    )
    assert ids(p.select(date(2026, 1, 31), "bank")) == ("T.APR.OLD",)
    assert ids(p.select(date(2026, 2, 1), "bank")) == ("T.APR.OLD", "T.APR.NEW")
    assert ids(p.select(date(2026, 3, 31), "bank")) == ("T.APR.OLD", "T.APR.NEW")
    assert ids(p.select(date(2026, 4, 1), "bank")) == ("T.APR.NEW",)
    assert ids(p.select(date(2019, 12, 31), "bank")) == ()


def test_selection_by_lender_type_absent_applies_to_means_all(pack, rule):
    p = pack([rule("T.APR.ALL"), rule("T.APR.CFC", applies_to=["consumer_finance_company"])])
    assert ids(p.select(DAY, "bank")) == ("T.APR.ALL",)
    assert ids(p.select(DAY, "consumer_finance_company")) == ("T.APR.ALL", "T.APR.CFC")


def test_builtin_selection_per_lender_type_is_pinned():
    pack = default_pack()
    micro = ids(pack.select(DAY, "online_microlender"))
    assert micro == (
        "CN.AMOUNT.CREDIT_LINE_MAX.MICROLENDER",
        "CN.AMOUNT.CREDIT_LINE_MAX.MICROLENDER_DRAFT2020",
        SHARE_ID,
        "CN.PRICING.MAX_COMPREHENSIVE_APR.JUDICIAL",
        "CN.PRICING.MAX_COMPREHENSIVE_APR.MICROLENDER",
        "CN.TERM.CONSUMER_MAX",
        "CN.PURPOSE.FORBIDDEN.MICROLENDER",
        "CN.BORROWER.NO_STUDENTS.MICROLENDER",
        "CN.CONSENT.BUREAU_QUERY",
        "CN.CONSENT.DATA_SHARING",
        "CN.POLICY.AGE_RANGE",
        "CN.POLICY.ACTIVE_LENDERS_MAX",
        "CN.POLICY.DTI_MAX",
    )
    bank = ids(pack.select(DAY, "bank"))
    assert "CN.TERM.BULLET_MAX.BANK" in bank
    assert not any("MICROLENDER" in i or i.endswith(".CFC") for i in bank)
    # the 2020 notice's purpose list closed the day before the final measures' start
    assert "CN.PURPOSE.FORBIDDEN.MICROLENDER.NOTICE2020" in ids(
        pack.select(date(2024, 12, 31), "online_microlender")
    )
    assert "CN.PURPOSE.FORBIDDEN.MICROLENDER.NOTICE2020" not in micro


@pytest.mark.parametrize(
    ("on", "lender_type", "value", "rule_id"),
    [
        (DAY, "bank", "0.24", "CN.PRICING.MAX_COMPREHENSIVE_APR.BANK"),
        (DAY, "consumer_finance_company", "0.20", "CN.PRICING.MAX_COMPREHENSIVE_APR.CFC_GUIDANCE"),
        (
            date(2025, 10, 29),
            "consumer_finance_company",
            "0.24",
            "CN.PRICING.MAX_COMPREHENSIVE_APR.JUDICIAL",
        ),
        (DAY, "online_microlender", "0.24", "CN.PRICING.MAX_COMPREHENSIVE_APR.JUDICIAL"),
        (
            date(2028, 1, 1),
            "online_microlender",
            "0.12",
            "CN.PRICING.MAX_COMPREHENSIVE_APR.MICROLENDER_LPR_TARGET",
        ),
    ],
)
def test_strictest_apr_binds_and_names_its_rule(on, lender_type, value, rule_id):
    binding = default_pack().select(on, lender_type).max_apr()
    assert binding is not None
    assert (binding.value, binding.rule_id) == (Decimal(value), rule_id)


def test_cfc_above_guidance_fails_only_the_guidance_rule(facts):
    rs = default_pack().select(DAY, "consumer_finance_company")
    results = {r.rule_id: r for r in rs.evaluate(facts(apr_irr=Decimal("0.2100")))}
    assert results["CN.PRICING.MAX_COMPREHENSIVE_APR.CFC_GUIDANCE"].verdict is Verdict.FAIL
    assert results["CN.PRICING.MAX_COMPREHENSIVE_APR.JUDICIAL"].verdict is Verdict.PASS


def test_ties_go_to_the_smallest_rule_id_whatever_the_file_order(pack, rule):
    for order in (["T.APR.B", "T.APR.A"], ["T.APR.A", "T.APR.B"]):
        p = pack([rule(i) for i in order])
        binding = p.select(DAY, "bank").max_apr()
        assert binding is not None
        assert binding.rule_id == "T.APR.A"


def test_disabled_rules_are_reported_but_never_bind(pack, rule, facts):
    p = pack(
        [
            rule("T.APR.LOOSE", params={"max": "0.24"}),
            rule("T.APR.OFF", params={"max": "0.10"}, enabled=False),
        ]
    )
    rs = p.select(DAY, "bank")
    binding = rs.max_apr()
    assert binding is not None
    assert binding.rule_id == "T.APR.LOOSE"
    verdicts = {r.rule_id: r.verdict for r in rs.evaluate(facts(apr_irr=Decimal("0.20")))}
    assert verdicts == {"T.APR.LOOSE": Verdict.PASS, "T.APR.OFF": Verdict.DISABLED}


def test_draft_one_third_rule_is_disabled_and_does_not_bind(facts):
    rs = default_pack().select(DAY, "online_microlender")
    poor = facts(monthly_income=Decimal("1000.00"), existing_balance=Decimal("1000.00"))
    verdicts = {r.rule_id: r.verdict for r in rs.evaluate(poor)}
    assert verdicts[SHARE_ID] is Verdict.DISABLED
    headroom = rs.amount_headroom(poor)
    assert headroom is not None
    assert (headroom.value, headroom.rule_id) == (
        Decimal("199000.00"),
        "CN.AMOUNT.CREDIT_LINE_MAX.MICROLENDER",
    )


def test_enabling_the_one_third_rule_in_a_pack_file_makes_it_bind(tmp_path, facts):
    text = default_pack().text
    start = text.index(f'id = "{SHARE_ID}"')
    end = text.index("[[rules]]", start)
    block = text[start:end]
    assert "enabled = false" in block
    edited = tmp_path / "enabled.toml"
    edited.write_text(
        text[:start] + block.replace("enabled = false", "enabled = true") + text[end:]
    )
    rs = load_pack(edited).select(DAY, "online_microlender")
    poor = facts(monthly_income=Decimal("1000.00"), existing_balance=Decimal("1000.00"))
    headroom = rs.amount_headroom(poor)
    assert headroom is not None
    # 1/3 x 12 x 1000 = 4000 cap, less 1000 already lent
    assert (headroom.value, headroom.rule_id) == (Decimal("3000.00"), SHARE_ID)
    for amount, verdict in (("3000.00", Verdict.PASS), ("3000.01", Verdict.FAIL)):
        results = {r.rule_id: r for r in rs.evaluate(replace(poor, amount=Decimal(amount)))}
        assert results[SHARE_ID].verdict is verdict, results[SHARE_ID].message


@pytest.mark.parametrize(
    ("lender_type", "method", "months", "rule_id"),
    [
        ("bank", "bullet", 12, "CN.TERM.BULLET_MAX.BANK"),
        ("bank", "interest-first", 12, "CN.TERM.BULLET_MAX.BANK"),
        ("bank", "equal-installment", 60, "CN.TERM.CONSUMER_MAX"),
        ("consumer_finance_company", "bullet", 60, "CN.TERM.CONSUMER_MAX"),
    ],
)
def test_max_term_takes_bullet_rules_only_for_bullet_methods(lender_type, method, months, rule_id):
    binding = default_pack().select(DAY, lender_type).max_term(method)
    assert binding is not None
    assert (binding.value, binding.rule_id) == (Decimal(months), rule_id)


def test_age_range_narrowest_wins(pack, rule):
    p = pack(
        [
            rule("T.AGE.WIDE", kind="age_range", params={"min": 18, "max": 65}),
            rule("T.AGE.NARROW", kind="age_range", params={"min": 22, "max": 55}),
        ]
    )
    rs = p.select(DAY, "bank")
    low, high = rs.min_age(), rs.max_age()
    assert low is not None
    assert high is not None
    assert (low.value, low.rule_id, high.value, high.rule_id) == (
        Decimal(22),
        "T.AGE.NARROW",
        Decimal(55),
        "T.AGE.NARROW",
    )


def test_select_is_cached_and_validates_its_arguments():
    pack = default_pack()
    assert pack.select(DAY, "bank") is pack.select(DAY, "bank")
    with pytest.raises(ValidationError, match="cfc") as err:
        pack.select(DAY, "cfc")
    assert err.value.field == "lender_type"
    with pytest.raises(ValidationError):
        pack.select(datetime(2026, 1, 15, 9, 0), "bank")


def test_kinds_without_rules_bind_nothing(pack, rule, facts):
    rs = pack([rule()]).select(DAY, "bank")
    assert rs.max_term("bullet") is None
    assert rs.amount_headroom(facts()) is None
    assert rs.max_installment(facts()) is None
    assert rs.enabled(RuleKind.DTI_MAX) == ()

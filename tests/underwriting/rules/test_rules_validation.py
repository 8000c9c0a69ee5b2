"""Bad pack files fail at load time with a ValidationError naming the rule id and the field."""

from __future__ import annotations

from datetime import date

import pytest

from lendstack.core.errors import ValidationError
from lendstack.underwriting.rules import parse_pack

RID = "T.BAD.RULE"

# (what is wrong, overrides for the rule table, the field the error must name)
BAD_RULES = [
    ("non-number limit", {"params": {"max": "abc"}}, "params.max"),
    ("boolean limit", {"params": {"max": True}}, "params.max"),
    ("rate given in percent", {"params": {"max": 24}}, "params.max"),
    ("missing parameter", {"params": {}}, "params.max"),
    ("misspelt parameter", {"params": {"max": "0.24", "maxx": "0.2"}}, "params.maxx"),
    ("unknown kind", {"kind": "apr_min"}, "kind"),
    ("unknown status", {"status": "law"}, "status"),
    ("unknown confidence", {"confidence": "X"}, "confidence"),
    ("end before start", {"effective_to": date(2019, 12, 31)}, "effective_to"),
    ("not a date", {"effective_from": "soon"}, "effective_from"),
    ("missing source", {"source": None}, "source"),
    ("source without section", {"source": {"body": "B", "document": "D"}}, "source.section"),
    ("unknown lender type", {"applies_to": ["bank", "p2p"]}, "applies_to"),
    ("empty applies_to", {"applies_to": []}, "applies_to"),
    ("misspelt field", {"efective_to": date(2030, 1, 1)}, "efective_to"),
    ("enabled not a bool", {"enabled": "yes"}, "enabled"),
    ("missing description", {"description": None}, "description"),
    (
        "age range upside down",
        {"kind": "age_range", "params": {"min": 60, "max": 18}},
        "params.max",
    ),
    (
        "unknown repayment method",
        {"kind": "bullet_term_max", "params": {"max": 12, "methods": ["balloon"]}},
        "params.methods",
    ),
    ("share above one", {"kind": "income_share_max", "params": {"share": "4/3"}}, "params.share"),
    (
        "share zero denominator",
        {"kind": "income_share_max", "params": {"share": "1/0"}},
        "params.share",
    ),
    (
        "purposes not a list",
        {"kind": "forbidden_purposes", "params": {"purposes": "securities"}},
        "params.purposes",
    ),
]


@pytest.mark.parametrize(("what", "overrides", "field"), BAD_RULES, ids=[c[0] for c in BAD_RULES])
def test_bad_rule_names_rule_id_and_field(toml, rule, what, overrides, field):
    text = toml([rule("T.GOOD.RULE"), rule(RID, **overrides)])
    with pytest.raises(ValidationError) as err:
        parse_pack(text, "bad.toml")
    assert err.value.field == field, what
    assert RID in err.value.message, err.value.message
    assert field in err.value.message, err.value.message
    assert err.value.message.startswith("bad.toml: ")


def test_duplicate_rule_ids(toml, rule):
    text = toml([rule(RID), rule("T.OTHER"), rule(RID, params={"max": "0.2"})])
    with pytest.raises(ValidationError) as err:
        parse_pack(text, "dup.toml")
    assert err.value.field == "id"
    assert RID in err.value.message
    assert "#1" in err.value.message
    assert "#3" in err.value.message


def test_bad_rule_id_itself(toml, rule):
    with pytest.raises(ValidationError) as err:
        parse_pack(toml([rule("apr cap")]), "bad.toml")
    assert err.value.field == "id"
    assert "apr cap" in err.value.message


def test_rule_without_id_is_named_by_position(toml, rule):
    with pytest.raises(ValidationError) as err:
        parse_pack(toml([rule(), rule(None)]), "bad.toml")
    assert "rule #2" in err.value.message
    assert err.value.field == "id"


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ({"version": None}, "version"),
        ({"version": "v1"}, "version"),
        ({"id": "CN 2025"}, "id"),
        ({"status": "law"}, "status"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_bad_pack_header(toml, rule, header, field):
    with pytest.raises(ValidationError) as err:
        parse_pack(toml([rule()], **header), "hdr.toml")
    assert err.value.field == field


def test_pack_needs_rules_and_valid_toml(toml):
    with pytest.raises(ValidationError, match="rules"):
        parse_pack(toml([]), "empty.toml")
    with pytest.raises(ValidationError, match="not valid TOML"):
        parse_pack("id = \n", "broken.toml")


def test_numbers_parse_exactly(toml, rule):
    from decimal import Decimal
    from fractions import Fraction

    pack = parse_pack(
        toml(
            [
                rule("T.APR.FLOAT", params={"max": 0.24}),
                rule("T.SHARE", kind="income_share_max", params={"share": "1/3"}),
            ]
        ),
        "ok.toml",
    )
    assert pack.rule("T.APR.FLOAT").params["max"] == Decimal("0.24")
    assert pack.rule("T.SHARE").params["share"] == Fraction(1, 3)
    with pytest.raises(TypeError):
        pack.rule("T.SHARE").params["share"] = Fraction(1, 2)  # type: ignore[index]

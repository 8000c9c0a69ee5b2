"""Properties over many amounts, incomes and facts: caps agree with verdicts, nothing escapes."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from lendstack.underwriting.rules import Facts, RuleKind, Verdict, default_pack, parse_pack

DAY = date(2026, 1, 15)
AMOUNT_KINDS = {RuleKind.CREDIT_LINE_MAX, RuleKind.INCOME_SHARE_MAX}

fen = st.integers(min_value=0, max_value=40_000_000).map(lambda n: Decimal(n).scaleb(-2))
income = st.integers(min_value=0, max_value=10_000_000).map(lambda n: Decimal(n).scaleb(-2))

BASE_FACTS = Facts(
    DAY,
    "bank",
    30,
    "travel",
    False,
    frozenset({"bureau_query", "data_sharing"}),
    2,
    Decimal("10000.00"),
    Decimal("3000.00"),
    Decimal("0.00"),
    Decimal("10000.00"),
    12,
    "equal-installment",
    Decimal("0.18"),
    Decimal("900.00"),
)
_SOURCE = 'source = { body = "T", document = "test", section = "none" }'
_RULES = [
    ("T.LINE", "credit_line_max", "{ max = 200000 }"),
    ("T.SHARE", "income_share_max", '{ share = "1/3" }'),
    ("T.SHARE.DEC", "income_share_max", '{ share = "0.3333" }'),
    ("T.DTI", "dti_max", '{ max = "0.55" }'),
]
CAPS = parse_pack(
    'id = "caps"\nversion = "1.0.0"\ntitle = "t"\ndescription = "d"\n'
    + "".join(
        f'[[rules]]\nid = "{rid}"\nkind = "{kind}"\ndescription = "d"\nparams = {params}\n'
        f'effective_from = 2020-01-01\nstatus = "final"\nconfidence = "C"\n{_SOURCE}\n'
        for rid, kind, params in _RULES
    ),
    "caps.toml",
).select(DAY, "bank")


@given(existing=fen, amount=fen, monthly_income=income)
def test_headroom_is_never_negative_and_agrees_with_evaluate(existing, amount, monthly_income):
    facts = dataclasses.replace(
        BASE_FACTS, existing_balance=existing, amount=amount, monthly_income=monthly_income
    )
    headroom = CAPS.amount_headroom(facts)
    assert headroom is not None
    assert headroom.value >= 0
    results = [r for r in CAPS.evaluate(facts) if r.kind in AMOUNT_KINDS]
    passes = all(r.verdict is Verdict.PASS for r in results)
    assert all(r.verdict in (Verdict.PASS, Verdict.FAIL) for r in results)
    cap = min(Decimal(r.limit) for r in results)  # the binding cap itself
    assert passes == (existing + amount <= cap)
    if existing <= cap:
        assert passes == (amount <= headroom.value)
        assert headroom.value == cap - existing


@given(
    obligations=fen,
    installment=fen,
    monthly_income=income.filter(lambda v: v > 0),
)
def test_installment_cap_agrees_with_the_dti_rule(obligations, installment, monthly_income):
    facts = dataclasses.replace(
        BASE_FACTS,
        monthly_obligations=obligations,
        monthly_installment=installment,
        monthly_income=monthly_income,
    )
    cap = CAPS.max_installment(facts)
    assert cap is not None
    assert cap.value >= 0
    (dti,) = [r for r in CAPS.evaluate(facts) if r.kind is RuleKind.DTI_MAX]
    if obligations <= Decimal("0.55") * monthly_income:
        assert (dti.verdict is Verdict.PASS) == (installment <= cap.value)
    else:
        assert dti.verdict is Verdict.FAIL


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.frozensets(st.sampled_from(["bureau_query", "data_sharing"])),
)
FIELDS = [f.name for f in dataclasses.fields(BASE_FACTS)]


@given(
    changes=st.dictionaries(st.sampled_from(FIELDS), junk, max_size=4),
    lender_type=st.sampled_from(["bank", "consumer_finance_company", "online_microlender"]),
)
def test_evaluate_never_raises_whatever_the_facts(changes, lender_type):
    facts = dataclasses.replace(BASE_FACTS, **changes)
    ruleset = default_pack().select(DAY, lender_type)
    results = ruleset.evaluate(facts)
    assert len(results) == len(ruleset.rules)
    assert all(isinstance(r.verdict, Verdict) and r.message for r in results)
    ruleset.screen(facts)
    if not isinstance(changes.get("apr_irr", Decimal(0)), Decimal):  # None, float, text...
        apr = [r for r in results if r.kind is RuleKind.APR_MAX]
        assert all(r.verdict is Verdict.ERROR for r in apr), apr

"""The queue's ranking and the plan's filtering, on a small strategy file with round figures.

Expectations are computed here by hand, in Decimal, from the file's own numbers: expected
recovery = balance × p (rounded half up to the fen) − fixed costs − commission on the gross.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.collections import (
    Book,
    LogFacts,
    Reason,
    default_pack,
    default_strategies,
    parse_strategies,
    plan,
    queue_rows,
    rank,
)
from lendstack.core.errors import ValidationError

FILE = """
id = "t"
version = "1"
balance_bands = [1000]
[probability]
pre_due = [0.90, 0.80]
M1 = [0.50, 0.40]
M2 = [0.30, 0.20]
M3 = [0.10, 0.10]
M4 = [0.10, 0.10]
M5 = [0.10, 0.10]
M6 = [0.10, 0.10]
"M7+" = [0.05, 0.05]

[[strategy]]
id = "pre"
stage = "pre_due"
days_before_due = 2
  [[strategy.action]]
  channel = "sms"
  party = "debtor"
  at = "09:00"
  cost = "0.10"
  message = "due soon"

[[strategy]]
id = "m1"
buckets = ["M1"]
  [[strategy.action]]
  channel = "sms"
  party = "debtor"
  at = "10:00"
  cost = "1.00"
  message = "overdue"

[[strategy]]
id = "m2"
buckets = ["M2"]
  [[strategy.action]]
  channel = "call"
  party = "debtor"
  at = "10:00"
  attempts = 3
  cost = "2.00"
  message = "script"
  [[strategy.action]]
  channel = "call"
  party = "emergency"
  at = "15:00"
  cost = "2.00"
  when = "debtor_unreachable"
  message = "please ask the debtor to call us"

[[strategy]]
id = "agency"
buckets = ["M3", "M4", "M5", "M6", "M7+"]
commission_rate = "0.25"
  [[strategy.action]]
  channel = "agency_call"
  party = "debtor"
  at = "23:00"
  cost = "0.00"
  message = "agency"
"""
SET = parse_strategies(FILE, "t.toml")
PACK = default_pack()


def book(rows: list[tuple[int, int, int, int, int]]) -> Book:
    """rows: (loan_id, dpd, bucket, balance_fen, due_in_days)."""
    data = np.array(rows, dtype=np.int64).reshape(-1, 5)
    return Book(*(np.ascontiguousarray(data[:, i]) for i in range(5)))


def half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected(balance: str, p: str, fixed: str, commission: str = "0") -> Decimal:
    gross = half_up(Decimal(balance) * Decimal(p))
    return gross - Decimal(fixed) - half_up(gross * Decimal(commission))


def test_ranking_by_expected_recovery_with_hand_computed_figures() -> None:
    loans = book(
        [
            (1, 10, 1, 200_000, -1),  # M1, 2000.00 (band 2): 2000 × 0.40 − 1.00 = 799.00
            (2, 45, 2, 300_000, -1),  # M2, 3000.00: 3000 × 0.20 − 3 × 2.00 = 594.00
            (3, 100, 4, 999_99, -1),  # M4, 999.99 (band 1): 99.999 → 100.00; − 25.00 = 75.00
            (4, 0, 0, 50_000, 1),  # pre-due, 500.00: 500 × 0.90 − 0.10 = 449.90
            (5, 0, 0, 50_000, 3),  # not due within 2 days: not in the queue
            (6, 0, 0, 50_000, -1),  # current, nothing due: not in the queue
            (7, 5, 1, 100_000, -1),  # M1, exactly 1000.00 is band 2: 400 − 1 = 399.00
            (8, 200, 7, 100_000, -1),  # M7+: 1000 × 0.05 = 50; − 12.50 = 37.50
        ]
    )
    queue = rank(loans, SET)
    rows = queue_rows(queue, SET, None)
    got = [(r["loan_id"], r["expected_recovery"]) for r in rows]
    assert got == [
        (1, expected("2000.00", "0.40", "1.00")),
        (2, expected("3000.00", "0.20", "6.00")),
        (4, expected("500.00", "0.90", "0.10")),
        (7, expected("1000.00", "0.40", "1.00")),
        (3, expected("999.99", "0.10", "0", "0.25")),
        (8, expected("1000.00", "0.05", "0", "0.25")),
    ]
    assert [r["expected_recovery"] for r in rows] == [
        Decimal("799.00"),
        Decimal("594.00"),
        Decimal("449.90"),
        Decimal("399.00"),
        Decimal("75.00"),
        Decimal("37.50"),
    ]
    assert [r["strategy"] for r in rows] == ["m1", "m2", "pre", "m1", "agency", "agency"]
    assert [int(i) for i in queue.delinquent().loan_id] == [1, 2, 7, 3, 8]


def test_equal_expected_recovery_ranks_lower_loan_id_first() -> None:
    queue = rank(book([(9, 3, 1, 10_000, -1), (4, 3, 1, 10_000, -1), (6, 3, 1, 10_000, -1)]), SET)
    assert [int(i) for i in queue.loan_id] == [4, 6, 9]


@given(
    st.lists(st.tuples(st.integers(1, 400), st.integers(1, 2_000_000_00)), min_size=1, max_size=40)
)
def test_queue_is_sorted_and_each_figure_matches_decimal(rows: list[tuple[int, int]]) -> None:
    scheme = [(i + 1, dpd, min(-(-dpd // 30), 7), bal, -1) for i, (dpd, bal) in enumerate(rows)]
    ranked = queue_rows(rank(book(scheme), SET), SET, None)
    values = [r["expected_recovery"] for r in ranked]
    assert values == sorted(values, reverse=True)
    assert len(ranked) == len(rows)
    for r in ranked:
        balance = r["balance"]
        fixed = {"m1": "1.00", "m2": "6.00", "agency": "0"}[r["strategy"]]
        commission = "0.25" if r["strategy"] == "agency" else "0"
        assert r["expected_recovery"] == expected(
            str(balance), str(r["probability"]), fixed, commission
        )


def test_plan_filters_by_the_log_and_never_drops_a_wanted_attempt() -> None:
    loans = book(
        [
            (1, 40, 2, 500_000, -1),
            (2, 40, 2, 400_000, -1),
            (3, 40, 2, 300_000, -1),
            (4, 10, 1, 100_000, -1),
            (5, 100, 4, 100_000, -1),
        ]
    )
    queue = rank(loans, SET)
    facts = LogFacts(
        debtor_calls_loan=np.array([1, 2], dtype=np.int64),
        debtor_calls_count=np.array([4, 6], dtype=np.int64),  # 4 → 2 of 3 allowed; 6 → none
        emergency_calls_loan=np.zeros(0, dtype=np.int64),
        emergency_calls_count=np.zeros(0, dtype=np.int64),
        unreachable_loan=np.array([2], dtype=np.int64),
    )
    result = plan(queue, SET, PACK, facts)
    planned = {
        (r["loan_id"], r["channel"], r["party"]): r["attempts"] for r in result.planned.to_dicts()
    }
    refused = {
        (r["loan_id"], r["channel"], r["party"], r["reason"]): r["attempts"]
        for r in result.refused.to_dicts()
    }
    assert planned == {
        (1, "call", "debtor"): 2,
        (3, "call", "debtor"): 3,
        (2, "call", "emergency"): 1,  # the debtor of loan 2 is unreachable
        (4, "sms", "debtor"): 1,
    }
    assert refused == {
        (1, "call", "debtor", "MAX_ATTEMPTS"): 1,
        (2, "call", "debtor", "MAX_ATTEMPTS"): 3,
        (5, "agency_call", "debtor", "QUIET_HOURS"): 1,  # the file asks for 23:00
    }
    # conservation: every attempt the strategies wanted is planned or refused
    wanted = (
        3 * 3 + 1 + 1 + 1
    )  # three M2 debtors × 3 calls, loan 2's emergency call, M1 sms, agency
    assert result.planned["attempts"].sum() + result.refused["attempts"].sum() == wanted
    assert result.summary()["refused_attempts_by_reason"] == {"MAX_ATTEMPTS": 4, "QUIET_HOURS": 1}


def test_plan_refuses_an_emergency_action_without_the_condition_and_banned_wording() -> None:
    text = FILE.replace('  when = "debtor_unreachable"\n', "").replace(
        'message = "overdue"', 'message = "pay now or we call the police"'
    )
    strategies = parse_strategies(text, "bad.toml")
    queue = rank(book([(1, 40, 2, 100_000, -1), (2, 10, 1, 100_000, -1)]), strategies)
    result = plan(queue, strategies, PACK, LogFacts.empty())
    reasons = {(r["loan_id"], r["reason"]) for r in result.refused.to_dicts()}
    assert reasons == {(1, Reason.DEBTOR_REACHABLE.value), (2, Reason.BANNED_WORDING.value)}
    assert {r["rule_id"] for r in result.refused.to_dicts()} == {
        "CN.COLLECTION.EMERGENCY_ONLY_IF_UNREACHABLE",
        "CN.COLLECTION.BANNED_WORDING",
    }


def test_an_action_breaking_two_rules_is_one_refused_contact_naming_both() -> None:
    text = FILE.replace('message = "overdue"', 'message = "we will tell your employer"').replace(
        'at = "10:00"\n  cost = "1.00"', 'at = "07:30"\n  cost = "1.00"'
    )
    strategies = parse_strategies(text, "both.toml")
    result = plan(
        rank(book([(1, 10, 1, 100_000, -1)]), strategies), strategies, PACK, LogFacts.empty()
    )
    rows = result.refused.to_dicts()
    assert len(rows) == 1
    assert rows[0]["reason"] == "QUIET_HOURS,BANNED_WORDING"
    assert rows[0]["rule_id"] == "CN.COLLECTION.QUIET_HOURS,CN.COLLECTION.BANNED_WORDING"
    assert rows[0]["attempts"] == 1
    assert result.planned.height == 0


def test_shipped_strategies_cover_every_bucket_and_pass_their_own_rules() -> None:
    shipped = default_strategies()
    assert sorted(r for s in shipped.strategies for r in s.rows) == list(range(8))
    queue = rank(
        book(
            [
                (i, 30 * (i - 1) + 1 if i > 1 else 0, i - 1, 100_000, 1 if i == 1 else -1)
                for i in range(1, 9)
            ]
        ),
        shipped,
    )
    result = plan(queue, shipped, PACK, LogFacts.empty())
    assert result.refused.height == 0
    assert set(result.planned["loan_id"].to_list()) == set(range(1, 9))


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("M1 = [0.50, 0.40]", "M1 = [0.50]", "probability.M1"),
        ("M1 = [0.50, 0.40]", "M1 = [1.50, 0.40]", "probability.M1"),
        ('buckets = ["M2"]', 'buckets = ["M1"]', "m2.buckets"),
        ('buckets = ["M2"]', 'buckets = ["M9"]', "m2.buckets"),
        ("balance_bands = [1000]", "balance_bands = [-5]", "balance_bands"),
        ('channel = "sms"', 'channel = "pigeon"', "strategy.0.action.0.channel"),
    ],
)
def test_bad_strategy_files_name_the_field(old: str, new: str, field: str) -> None:
    with pytest.raises(ValidationError) as bad:
        parse_strategies(FILE.replace(old, new, 1), "bad.toml")
    assert bad.value.field == field

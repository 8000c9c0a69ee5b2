"""The guarantee fee in the pure core: the plan's share-weighted rate, guaranteed banks kept off
a loan whose fee would break the cap, and the fee collected split off to the guarantor."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.errors import InvariantViolation
from lendstack.funding import Allocator, Funder, Guarantee, Rule, guarantee_fee_per_period
from lendstack.funding.subledger import (
    Flow,
    Holding,
    Part,
    guarantee_fee_part,
    payment_parts,
)

from .conftest import funder, platform, request

HOLDINGS = {
    "platform": Holding(300_000, 3_000, Decimal("0.18")),
    "bank": Holding(700_000, 7_000, Decimal("0.034")),
}


def guaranteed(fee_rate: str, cost: str = "0.02") -> Funder:
    return replace(
        funder("bank", cost=cost), guarantee=Guarantee(90, Decimal(fee_rate), Decimal(10**9))
    )


def test_the_plan_carries_each_guaranteed_share_and_the_weighted_rate() -> None:
    plan = Allocator([platform(), guaranteed("0.02"), funder("plain", cost="0.04")]).allocate(
        request(), {}
    )
    by_id = {s.funder_id: s for s in plan.shares}
    assert by_id["bank"].guarantee_fee_rate == Decimal("0.02")
    assert by_id["platform"].guarantee_fee_rate == 0
    assert plan.guarantee_fee_rate == by_id["bank"].share * Decimal("0.02")
    assert plan.guarantee_fee_per_period == (plan.guarantee_fee_rate / 12).quantize(
        Decimal("1e-8"), rounding=ROUND_HALF_UP
    )


def test_guaranteed_banks_are_excluded_when_the_fee_is_not_allowed() -> None:
    allocator = Allocator([platform(), guaranteed("0.02"), funder("plain", cost="0.04")])
    plan = allocator.allocate(request(guarantee_fee_allowed=False), {})
    assert plan.funded
    assert "bank" not in plan.share_map()
    assert plan.guarantee_fee_rate == 0
    alone = Allocator([guaranteed("0.02")]).allocate(request(guarantee_fee_allowed=False), {})
    assert not alone.funded
    assert [e.rule for e in alone.exclusions] == [Rule.GUARANTEE_FEE]


@given(
    fee=st.integers(min_value=0, max_value=10**7),
    guarantee=st.decimals(min_value="0.00000001", max_value="0.01", places=8),
    product=st.decimals(min_value="0", max_value="0.01", places=8),
)
def test_the_guarantors_part_and_the_rest_add_up_to_the_fee(
    fee: int, guarantee: Decimal, product: Decimal
) -> None:
    part = guarantee_fee_part("platform", fee, guarantee + product, guarantee)
    got = 0 if part is None else part.fen
    assert 0 <= got <= fee
    # within half a fen of the exact proportion
    assert abs(Decimal(got) - Decimal(fee) * guarantee / (guarantee + product)) <= Decimal("0.5")
    parts = payment_parts({"fee": fee, "interest": 1234}, HOLDINGS, Decimal("0.18"), part)
    fee_flows = sum(p.fen for p in parts if p.flow in (Flow.FEE, Flow.GUARANTEE_FEE))
    assert fee_flows == fee
    assert sum(p.fen for p in parts if p.flow is Flow.GUARANTEE_FEE) == got


def test_the_whole_fee_is_the_guarantors_when_the_product_charges_none() -> None:
    part = guarantee_fee_part("platform", 2333, Decimal("0.00116667"), Decimal("0.00116667"))
    assert part == Part("platform", Flow.GUARANTEE_FEE, 2333)
    parts = payment_parts({"fee": 2333}, HOLDINGS, Decimal("0.18"), part)
    assert parts == [part]


def test_a_guarantee_rate_above_the_loans_fee_rate_is_a_broken_invariant() -> None:
    with pytest.raises(InvariantViolation):
        guarantee_fee_part("platform", 100, Decimal("0.001"), Decimal("0.002"))


def test_per_period_rate_is_a_twelfth_to_eight_places() -> None:
    assert guarantee_fee_per_period(Decimal("0.014")) == Decimal("0.00116667")
    assert guarantee_fee_per_period(Decimal(0)) == 0

"""Online allocation: scenarios for each rule, and a property over sequences of allocations."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.errors import NotFound, ValidationError
from lendstack.funding import (
    NO_CAPACITY,
    Allocator,
    Exposure,
    Funder,
    FunderKind,
    Policy,
    Rule,
    apply,
    check_plan,
    require_valid_plan,
)

from .conftest import funder, platform, request


def _by_id(funders: list[Funder]) -> dict[str, Funder]:
    return {f.id: f for f in funders}


def test_cheapest_feasible_plan_with_platform_share(panel: list[Funder]) -> None:
    plan = Allocator(panel).allocate(request(), {})
    assert plan.funded
    assert plan.share_map() == {"alpha-bank": Decimal("0.7000"), "platform": Decimal("0.3000")}
    assert sum(plan.amounts().values()) == Decimal("10000.00")
    assert plan.annual_cost == Decimal("7000.00") * Decimal("0.028") + Decimal("3000.00") * Decimal(
        "0.05"
    )


def test_local_bank_only_in_its_home_region(panel: list[Funder]) -> None:
    alloc = Allocator(panel)
    outside = alloc.allocate(request(province="Guangdong"), {})
    inside = alloc.allocate(request(province="Zhejiang"), {})
    assert "west-city" not in outside.share_map()
    assert inside.share_map()["west-city"] == Decimal("0.7000")


def test_bank_at_its_tier1_limit_gets_nothing_more(panel: list[Funder]) -> None:
    at_limit = {"alpha-bank": Exposure(balance=Decimal("250000000.00"))}  # 25% of 1e9
    plan = Allocator(panel).allocate(request(), at_limit)
    assert "alpha-bank" not in plan.share_map()
    assert plan.share_map()["beta-bank"] == Decimal("0.7000")


def test_bank_at_its_total_loans_limit_counts_other_partners(panel: list[Funder]) -> None:
    full = {
        "alpha-bank": Exposure(
            balance=Decimal("1.00"), other_partners_balance=Decimal("4999999999.99")
        )
    }
    assert "alpha-bank" not in Allocator(panel).allocate(request(), full).share_map()


def test_unlisted_bank_gets_nothing() -> None:
    funders = [platform(), funder("cheap", cost="0.01", listed=False), funder("dear", cost="0.04")]
    plan = Allocator(funders).allocate(request(), {})
    assert set(plan.share_map()) == {"platform", "dear"}


def test_partial_capacity_takes_what_fits_above_min_share() -> None:
    funders = [
        platform(),
        funder("cheap", cost="0.01", daily=Decimal("4000.00")),
        funder("dear", cost="0.04"),
    ]
    plan = Allocator(funders).allocate(request(), {})
    assert plan.share_map() == {
        "cheap": Decimal("0.4000"),
        "dear": Decimal("0.3000"),
        "platform": Decimal("0.3000"),
    }


def test_infeasible_is_a_value_with_the_reason() -> None:
    funders = [platform(daily=Decimal("100.00")), funder("bank", max_pd=0.01)]
    plan = Allocator(funders).allocate(request(), {})
    assert not plan.funded
    assert plan.reason == NO_CAPACITY
    rules = {e.funder_id: e.rule for e in plan.exclusions}
    assert rules == {"bank": Rule.MAX_PD, "platform": Rule.DAILY_QUOTA}


@pytest.mark.parametrize(
    ("kw", "rule"),
    [({"province": "Tibet"}, Rule.PROVINCE), ({"product": "x"}, Rule.PRODUCT), ({"term": 36}, Rule.TERM),
     ({"purpose": "gold"}, Rule.PURPOSE), ({"apr": Decimal("0.05")}, Rule.MIN_APR), ({"pd": 0.5}, Rule.MAX_PD)],
)  # fmt: skip
def test_appetite_rules_exclude(kw: dict[str, object], rule: Rule) -> None:
    picky = funder("picky", cost="0.01", provinces=("Guangdong",), products=("cash-loan-installment",),
                   terms=(12,), purposes=("travel",), min_apr=Decimal("0.10"), max_pd=0.1)  # fmt: skip
    alloc = Allocator([platform(), picky], Policy(platform_min_share=Decimal(0)))
    assert "picky" in alloc.allocate(request(), {}).share_map()
    plan = alloc.allocate(request(**kw), {})
    assert "picky" not in plan.share_map()
    policy = Policy(platform_min_share=Decimal(0))
    breaches = check_plan(request(**kw), {"picky": Decimal(1)}, {"picky": picky}, {}, policy)
    assert rule in {b.rule for b in breaches}  # excluded for the named reason, not another


def test_platform_min_share_zero_allows_bank_only_loans() -> None:
    funders = [funder("a", cost="0.02", target_share=Decimal("0.6")), funder("b", cost="0.03")]
    plan = Allocator(funders, Policy(platform_min_share=Decimal(0))).allocate(request(), {})
    assert plan.share_map() == {"a": Decimal("0.6000"), "b": Decimal("0.4000")}


def test_ties_break_by_funder_id() -> None:
    funders = [platform(), funder("zeta", cost="0.03"), funder("eta", cost="0.03")]
    for _ in range(3):
        assert "eta" in Allocator(list(reversed(funders))).allocate(request(), {}).share_map()


def test_manual_plans_are_checked(panel: list[Funder]) -> None:
    req = request()
    with pytest.raises(ValidationError):
        require_valid_plan(
            req,
            {"alpha-bank": Decimal("0.8"), "platform": Decimal("0.2")},
            _by_id(panel),
            {},
            Policy(),
        )
    with pytest.raises(ValidationError):
        require_valid_plan(
            req,
            {"alpha-bank": Decimal("0.5"), "platform": Decimal("0.4")},
            _by_id(panel),
            {},
            Policy(),
        )
    with pytest.raises(NotFound):
        require_valid_plan(req, {"nobody": Decimal("1")}, _by_id(panel), {}, Policy())


# -- property: no rule is breached after any sequence of online allocations ---------------------

PROVINCES = ("Zhejiang", "Guangdong", "Sichuan")


@st.composite
def panels(draw: st.DrawFn) -> list[Funder]:
    n = draw(st.integers(1, 6))
    out = [platform(cost=str(draw(st.sampled_from(["0.04", "0.06"]))),
                    daily=Decimal(draw(st.integers(0, 400_000))))]  # fmt: skip
    for k in range(n):
        kind = draw(
            st.sampled_from([FunderKind.JOINT_STOCK, FunderKind.CITY_COMMERCIAL, FunderKind.RURAL])
        )
        out.append(funder(
            f"b{k}", kind, str(draw(st.sampled_from(["0.02", "0.03", "0.035"]))),
            tier1=str(draw(st.integers(1, 2_000_000))), total_loans=str(draw(st.integers(1, 4_000_000))),
            daily=Decimal(draw(st.integers(0, 300_000))), listed=draw(st.booleans()),
            region=draw(st.sampled_from(PROVINCES)) if kind.is_local else None,
            max_pd=draw(st.sampled_from([0.03, 0.1])), target_share=Decimal(draw(st.sampled_from(["0.3", "0.5", "0.7"]))),
        ))  # fmt: skip
    return out


loans = st.lists(
    st.tuples(st.integers(100_00, 50_000_00), st.sampled_from(PROVINCES), st.floats(0.0, 0.12)),
    min_size=1, max_size=25,
)  # fmt: skip


@given(funders=panels(), stream=loans)
def test_no_rule_breached_after_any_sequence(
    funders: list[Funder], stream: list[tuple[int, str, float]]
) -> None:
    policy = Policy()
    alloc = Allocator(funders, policy)
    by_id = _by_id(funders)
    exposures: dict[str, Exposure] = {}
    for n, (fen, province, pd) in enumerate(stream):
        req = request(f"L{n}", str(Decimal(fen).scaleb(-2)), province=province, pd=pd)
        plan = alloc.allocate(req, exposures)
        if plan.funded:
            shares = plan.share_map()
            assert sum(shares.values()) == 1
            assert check_plan(req, shares, by_id, exposures, policy) == ()
            assert sum(plan.amounts().values()) == req.amount
        exposures = apply(plan, exposures)
    for funder_id, e in exposures.items():
        f = by_id[funder_id]
        assert e.today <= f.quotas.daily
        if not f.is_platform:
            assert e.balance <= f.tier1_net_capital / 4
            assert e.balance + e.other_partners_balance <= f.total_loans / 2

"""Batch allocation: never worse than the online greedy, and every rule holds for every loan."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings

from lendstack.funding import (
    Allocator,
    BatchMethod,
    Exposure,
    Funder,
    LoanRequest,
    Policy,
    allocate_batch,
    apply,
    check_plan,
    headrooms,
)

from .conftest import funder, platform, request
from .test_allocation import loans, panels


def _greedy_cost(
    requests: list[LoanRequest], funders: list[Funder], exposures: dict[str, Exposure]
) -> Decimal:
    alloc, total = Allocator(funders), Decimal(0)
    for req in requests:
        plan = alloc.allocate(req, exposures)
        exposures = apply(plan, exposures)
        total += plan.annual_cost
    return total


def _assert_rules_hold(result_plans: tuple, requests: list[LoanRequest], funders: list[Funder],
                       start: dict[str, Exposure]) -> None:  # fmt: skip
    by_id = {f.id: f for f in funders}
    end = dict(start)
    for plan, req in zip(result_plans, requests, strict=True):
        assert plan.loan_id == req.loan_id
        if plan.funded:
            # per-loan rules against the day's opening exposures; aggregate limits below
            assert check_plan(req, plan.share_map(), by_id, start, Policy()) == ()
            assert sum(plan.amounts().values()) == req.amount
        end = apply(plan, end)
    for funder_id, e in end.items():
        assert all(room >= 0 for room in headrooms(by_id[funder_id], e, Policy()).values())


def test_batch_reserves_scarce_cheap_capacity() -> None:
    """Greedy gives the first loan the cheap bank; batch keeps it for the loan nobody else takes."""
    funders = [platform(), funder("cheap", cost="0.02", daily=Decimal("7000.00")),
               funder("picky", cost="0.03", max_pd=0.03)]  # fmt: skip
    requests = [request("L1", pd=0.01), request("L2", pd=0.08)]
    result = allocate_batch(requests, funders, {})
    assert result.method is BatchMethod.LP
    assert result.greedy_cost == Decimal("790.0000")
    assert result.annual_cost == Decimal("650.0000")
    assert result.plans[0].share_map()["picky"] == Decimal("0.7000")
    assert result.plans[1].share_map()["cheap"] == Decimal("0.7000")
    _assert_rules_hold(result.plans, requests, funders, {})


def test_batch_equals_greedy_when_greedy_is_optimal(panel: list[Funder]) -> None:
    requests = [request(f"L{n}") for n in range(5)]
    result = allocate_batch(requests, panel, {})
    assert result.annual_cost == result.greedy_cost == _greedy_cost(requests, panel, {})


@settings(max_examples=40)
@given(funders=panels(), stream=loans)
def test_batch_never_worse_than_greedy(
    funders: list[Funder], stream: list[tuple[int, str, float]]
) -> None:
    requests = [request(f"L{n}", str(Decimal(fen).scaleb(-2)), province=prov, pd=pd)
                for n, (fen, prov, pd) in enumerate(stream)]  # fmt: skip
    result = allocate_batch(requests, funders, {})
    assert result.greedy_cost == _greedy_cost(requests, funders, {})
    assert result.funded >= result.greedy_funded
    if result.funded == result.greedy_funded:
        assert result.annual_cost <= result.greedy_cost
    _assert_rules_hold(result.plans, requests, funders, {})

"""Funding benchmarks: online allocation latency, and batch (LP) vs greedy on one day.

Run: `.venv/bin/python -m benchmarks.bench_funding [--n N] [--partners P] [--seed S]`.
Targets (issue 5): online p99 <= 1 ms; a day's batch of 100,000 approvals across 20 partners
in <= 30 s, at a total funding cost no higher than the online greedy's. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from datetime import date
from decimal import Decimal

from lendstack.funding import (
    PROVINCES,
    Allocator,
    Appetite,
    Exposure,
    Funder,
    FunderKind,
    LoanRequest,
    Quotas,
    allocate_batch,
)

DAY = date(2026, 3, 2)
PROVINCE_LIST = sorted(PROVINCES)
PRODUCTS = ("cash-loan-installment", "huabei-installment", "short-term-bullet")
PURPOSES = ("daily_consumption", "electronics", "travel", "education", "medical")
BANK_KINDS = (FunderKind.STATE_OWNED, FunderKind.JOINT_STOCK, FunderKind.CITY_COMMERCIAL,
              FunderKind.RURAL, FunderKind.CONSUMER_FINANCE_COMPANY)  # fmt: skip


def synthetic_partners(count: int, n_loans: int, seed: int = 0) -> list[Funder]:
    """The platform plus `count - 1` banks, with quotas sized so capacity binds for cheap banks."""
    rng = random.Random(seed)
    day_volume = Decimal(n_loans * 8_000)
    funders = [_platform(day_volume)]
    for k in range(count - 1):
        kind = BANK_KINDS[k % len(BANK_KINDS)]
        funders.append(_bank(rng, k, kind, day_volume))
    return funders


def _platform(day_volume: Decimal) -> Funder:
    return Funder(
        id="platform", name="Platform", kind=FunderKind.PLATFORM,
        appetite=Appetite(max_pd=1.0), funding_cost=Decimal("0.0600"),
        quotas=Quotas((day_volume * 3).quantize(Decimal("0.01")), (day_volume * 100).quantize(Decimal("0.01"))),
    )  # fmt: skip


def _bank(rng: random.Random, k: int, kind: FunderKind, day_volume: Decimal) -> Funder:
    local = kind.is_local
    daily = (day_volume * Decimal(rng.uniform(0.08, 0.25))).quantize(Decimal("0.01"))
    appetite = Appetite(
        max_pd=rng.choice((0.03, 0.05, 0.08, 0.12)),
        products=tuple(sorted(rng.sample(PRODUCTS, rng.choice((2, 3))))),
        terms=(3, 6, 12) if rng.random() < 0.5 else (),
        purposes=tuple(sorted(rng.sample(PURPOSES, 4))) if rng.random() < 0.3 else (),
        min_apr=Decimal(rng.choice(("0.00", "0.08", "0.10", "0.12"))),
        target_share=Decimal(rng.choice(("0.40", "0.50", "0.70"))),
    )
    tier1 = (daily * Decimal(rng.choice((40, 200, 2000)))).quantize(Decimal("0.01"))
    return Funder(
        id=f"bank-{k:02d}", name=f"Bank {k}", kind=kind, appetite=appetite,
        funding_cost=Decimal(rng.randrange(2_400, 5_200)).scaleb(-5),
        quotas=Quotas(daily, (daily * 300).quantize(Decimal("0.01"))),
        tier1_net_capital=tier1, total_loans=tier1 * 12,
        home_region=rng.choice(PROVINCE_LIST[:8]) if local else None,
        on_platform_list=rng.random() < 0.9,
    )  # fmt: skip


def synthetic_requests(count: int, seed: int = 0) -> list[LoanRequest]:
    """A day's approvals: CNY 1k–30k, PD 0.5–15%, APR 7–24%, provinces skewed like traffic."""
    rng = random.Random(seed)
    weights = [5 if p in PROVINCE_LIST[:8] else 1 for p in PROVINCE_LIST]
    return [
        LoanRequest(
            loan_id=f"L{n:07d}",
            amount=Decimal(rng.randrange(1_000, 30_000) * 100).scaleb(-2),
            pd=rng.uniform(0.005, 0.15),
            apr=Decimal(rng.randrange(700, 2400)).scaleb(-4),
            province=rng.choices(PROVINCE_LIST, weights)[0],
            product=rng.choice(PRODUCTS),
            term=rng.choice((3, 6, 12, 24)),
            purpose=rng.choice(PURPOSES),
            day=DAY,
        )
        for n in range(count)
    ]


def starting_exposures(funders: list[Funder], seed: int = 0) -> dict[str, Exposure]:
    """Existing balances: some banks start near their 25%-of-tier-1 limit."""
    rng = random.Random(seed + 1)
    out = {}
    for f in funders:
        if f.is_platform:
            continue
        used = (f.tier1_net_capital / 4 * Decimal(rng.uniform(0.2, 0.99))).quantize(Decimal("0.01"))
        out[f.id] = Exposure(balance=used, total_allocated=used)
    return out


def bench_online(funders: list[Funder], requests: list[LoanRequest], n: int) -> tuple[float, float]:
    """p50 and p99 µs of one `Allocator.allocate` (exposures converted each call, as in service)."""
    alloc = Allocator(funders)
    exposures = starting_exposures(funders)
    clock = time.perf_counter_ns
    samples = []
    for i in range(n):
        req = requests[i % len(requests)]
        t0 = clock()
        alloc.allocate(req, exposures)
        samples.append((clock() - t0) / 1000)
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--partners", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    funders = synthetic_partners(args.partners, args.n, args.seed)
    requests = synthetic_requests(args.n, args.seed)
    p50, p99 = bench_online(funders, requests, min(args.n, 20_000))
    t0 = time.perf_counter()
    result = allocate_batch(requests, funders, starting_exposures(funders, args.seed))
    seconds = time.perf_counter() - t0
    _report(args, p50, p99, seconds, result)


def _report(
    args: argparse.Namespace, p50: float, p99: float, seconds: float, result: object
) -> None:
    from lendstack.funding import BatchResult

    assert isinstance(result, BatchResult)
    q = Decimal("0.01")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"\n| measure ({args.n:,} approvals × {args.partners} partners) | value |\n|---|---|")
    print(f"| online allocation p50 | {p50:.0f} µs |\n| online allocation p99 | {p99:.0f} µs |")
    print(f"| batch wall time (incl. greedy baseline) | {seconds:.1f} s |")
    print(f"| batch method | {result.method} ({result.rounds} LP rounds, {result.classes} classes, "
          f"{result.repaired} loans repaired by greedy) |")  # fmt: skip
    print(f"| annual funding cost, greedy | CNY {result.greedy_cost.quantize(q):,} |")
    print(f"| annual funding cost, batch | CNY {result.annual_cost.quantize(q):,} |")
    print(f"| LP lower bound | CNY {result.lp_bound:,.2f} |")
    saving = result.greedy_cost - result.annual_cost
    print(f"| batch saving vs greedy | CNY {saving.quantize(q):,} |")
    print(f"| unfunded loans, greedy / batch | {result.greedy_unfunded} / {result.unfunded} |")
    print(f"| CNY funded, greedy / batch | {result.greedy_funded:,} / {result.funded:,} |")


if __name__ == "__main__":
    main()

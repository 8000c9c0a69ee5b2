"""Rule-pack benchmarks: full-pack evaluations per second, latency percentiles, selection cost.

Run: `.venv/bin/python -m benchmarks.bench_rules [--n N]`. Figures go to stdout; record them,
with the machine and its load, in docs/rules.md. The target is >= 20,000 full evaluations per
second on one core (<= 50 µs each) for the default pack, whichever lender type.
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

from lendstack.underwriting.rules import LENDER_TYPES, Facts, RuleSet, default_pack, parse_pack

DAY = date(2026, 1, 15)
PURPOSES = ("travel", "electronics", "education", "securities", "loan_repayment")
METHODS = ("equal-installment", "equal-principal", "bullet", "interest-first")


def synthetic_facts(count: int, lender_type: str, seed: int = 0) -> list[Facts]:
    """Varied applicants and offers, so every rule sees passes and fails."""
    rng = random.Random(seed)
    facts = []
    for _ in range(count):
        income = Decimal(rng.randrange(200_000, 5_000_000)).scaleb(-2)
        facts.append(
            Facts(
                DAY,
                lender_type,
                rng.randrange(16, 70),
                rng.choice(PURPOSES),
                rng.random() < 0.05,
                frozenset(rng.sample(["bureau_query", "data_sharing", "marketing"], 2)),
                rng.randrange(0, 9),
                income,
                (income * Decimal(rng.randrange(0, 60)) / 100).quantize(Decimal("0.01")),
                Decimal(rng.randrange(0, 20_000_000)).scaleb(-2),
                Decimal(rng.randrange(100_000, 5_000_000)).scaleb(-2),
                rng.choice((3, 6, 12, 24, 36)),
                rng.choice(METHODS),
                Decimal(rng.randrange(500, 3600)).scaleb(-4),
                Decimal(rng.randrange(10_000, 500_000)).scaleb(-2),
            )
        )
    return facts


def bench_throughput(ruleset: RuleSet, facts: list[Facts], n: int) -> float:
    """Evaluations per second over n calls, best of 3 (other work shares the machine)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(n):
            ruleset.evaluate(facts[i % len(facts)])
        best = min(best, time.perf_counter() - start)
    return n / best


def bench_latency(ruleset: RuleSet, facts: list[Facts], n: int) -> tuple[float, float]:
    """p50 and p99 of one full evaluation, in microseconds."""
    clock = time.perf_counter_ns
    samples = []
    for i in range(n):
        one = facts[i % len(facts)]
        start = clock()
        ruleset.evaluate(one)
        samples.append((clock() - start) / 1000)
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def bench_parse_and_select() -> None:
    """Parsing is a load-time cost; selection is paid once per (date, lender type), then cached."""
    pack = default_pack()
    start = time.perf_counter()
    for _ in range(50):
        parse_pack(pack.text, "bench")
    parse_ms = (time.perf_counter() - start) / 50 * 1000
    start = time.perf_counter()
    for offset in range(1, 366):
        pack.select(date.fromordinal(DAY.toordinal() + offset), "bank")
    select_us = (time.perf_counter() - start) / 365 * 1e6
    start = time.perf_counter()
    for _ in range(10_000):
        pack.select(DAY, "bank")
    cached_us = (time.perf_counter() - start) / 10_000 * 1e6
    print(
        f"parse {pack.id} ({len(pack.rules)} rules): {parse_ms:.2f} ms; select uncached "
        f"{select_us:.1f} µs, cached {cached_us:.2f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="evaluations per measurement")
    args = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    pack = default_pack()
    for lender_type in LENDER_TYPES:
        ruleset = pack.select(DAY, lender_type)
        facts = synthetic_facts(2_000, lender_type)
        for one in facts[:500]:
            ruleset.evaluate(one)
        rate = bench_throughput(ruleset, facts, args.n)
        p50, p99 = bench_latency(ruleset, facts, args.n)
        screened = facts[0]
        start = time.perf_counter()
        for _ in range(args.n // 10):
            ruleset.screen(screened)
            ruleset.amount_headroom(screened)
            ruleset.max_installment(screened)
        caps_us = (time.perf_counter() - start) / (args.n // 10) * 1e6
        print(
            f"{pack.id} {lender_type:<25} {len(ruleset.rules):>2} rules: "
            f"{rate:>9,.0f} evaluations/s (target >= 20,000); p50 {p50:.1f} µs, p99 {p99:.1f} µs; "
            f"screen + headroom + installment {caps_us:.1f} µs"
        )
    bench_parse_and_select()


if __name__ == "__main__":
    main()

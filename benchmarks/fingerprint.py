"""A run's fingerprint: its monthly metrics and a digest of every table of its database, to
check that a change meant only to make the simulator faster changes nothing it computes.

    .venv/bin/python -m benchmarks.fingerprint run --scenario baseline --borrowers 3000 --months 12 --out before.json
    (change the code)
    .venv/bin/python -m benchmarks.fingerprint run --scenario baseline --borrowers 3000 --months 12 --out after.json
    .venv/bin/python -m benchmarks.fingerprint compare before.json after.json

metrics.json alone would miss a change that moves money between accounts without moving a
monthly total; the tables' digests catch it. Each table is hashed as its rows sorted, so a
change in the order rows are written is not a difference, a change in any value is.

Left out, because two runs of one seed differ in them by design: wall-clock timestamps, the
random decision ids and everything that embeds them (loan references, the decision log's
record, hashes and request digests), and borrower keys (keyed with the run's own random PII
key). The schema version table is skipped too: a migration that adds an index changes it.
`compare` exits 1 and names each table and monthly figure that differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lendstack.simulation.runner import RunConfig, run_scenario
from lendstack.simulation.scenario import load_scenario

VOLATILE = frozenset(
    {
        # wall-clock times
        "created_at", "recorded_at", "completed_at", "received_at", "posted_at",
        "first_raised_at", "opened_at", "updated_at",
        # random decision ids and what embeds them; borrower keys under the run's own key
        "decision_id", "reference", "record_json", "prev_hash", "hash", "request_sha256",
        "borrower_key",
    }
)  # fmt: skip
SKIPPED_TABLES = frozenset({"alembic_version"})


def table_digests(db: Path) -> dict[str, list[Any]]:
    """Each table's row count and a digest of its rows (volatile columns left out), sorted."""
    with sqlite3.connect(db) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
            if name not in SKIPPED_TABLES
        ]
        digests: dict[str, list[Any]] = {}
        for table in tables:
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
            kept = ", ".join(f'"{c}"' for c in columns if c not in VOLATILE)
            rows = conn.execute(f'SELECT {kept} FROM "{table}"').fetchall() if kept else []
            digest = hashlib.sha256()
            for line in sorted(map(repr, rows)):
                digest.update(line.encode())
                digest.update(b"\n")
            digests[table] = [len(rows), digest.hexdigest()]
    return digests


def fingerprint(
    scenario: str, borrowers: int, months: int, seed: int, workers: int = 1
) -> dict[str, Any]:
    """The run's fingerprint; `workers` is not part of the run's identity (its results must
    not depend on it), so fingerprints made with 1 and 2 compare."""
    config = RunConfig(borrowers=borrowers, months=months, seed=seed, workers=workers)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        started, wall = time.process_time(), time.perf_counter()
        result = run_scenario(load_scenario(scenario), config, out)
        cpu, wall = time.process_time() - started, time.perf_counter() - wall
        monthly = [json.loads(json.dumps(m.as_json(), default=str)) for m in result.months]
        result.engine.dispose()
        tables = table_digests(out / "lendstack.db")
    return {
        "run": {"scenario": scenario, "borrowers": borrowers, "months": months, "seed": seed},
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
        "monthly": monthly,
        "tables": tables,
    }


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, one line each (empty: the same run)."""
    found = []
    if a["run"] != b["run"]:
        found.append(f"not the same run: {a['run']} vs {b['run']}")
    for table in sorted(set(a["tables"]) | set(b["tables"])):
        before, after = a["tables"].get(table), b["tables"].get(table)
        if before != after:
            found.append(f"table {table}: {before} vs {after}")
    if len(a["monthly"]) != len(b["monthly"]):
        found.append(f"months: {len(a['monthly'])} vs {len(b['monthly'])}")
    for n, (x, y) in enumerate(zip(a["monthly"], b["monthly"], strict=False), start=1):
        for key in sorted(set(x) | set(y)):
            if x.get(key) != y.get(key):
                found.append(f"month {n} {key}: {x.get(key)!r} vs {y.get(key)!r}"[:300])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a scenario and write its fingerprint")
    run.add_argument("--scenario", default="baseline")
    run.add_argument("--borrowers", type=int, default=3_000)
    run.add_argument("--months", type=int, default=12)
    run.add_argument("--seed", type=int, default=7)
    run.add_argument("--workers", type=int, default=1, help="1 or 2 (RunConfig.workers)")
    run.add_argument("--out", type=Path, required=True)
    compare = commands.add_parser("compare", help="exit 1 if two fingerprints differ")
    compare.add_argument("before", type=Path)
    compare.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        found = fingerprint(args.scenario, args.borrowers, args.months, args.seed, args.workers)
        args.out.write_text(json.dumps(found, indent=1, sort_keys=True), encoding="utf-8")
        print(
            f"{args.out}: {len(found['tables'])} tables, {found['cpu_s']} s of CPU, {found['wall_s']} s wall"
        )
        return
    a, b = (json.loads(p.read_text(encoding="utf-8")) for p in (args.before, args.after))
    found = differences(a, b)
    print("\n".join(found) or "identical", f"(CPU {a['cpu_s']} s -> {b['cpu_s']} s)")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()

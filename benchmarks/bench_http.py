"""HTTP benchmark: the API under uvicorn, load from a second process.

    .venv/bin/python -m benchmarks.bench_http                       # healthz and loan, wrk if found
    .venv/bin/python -m benchmarks.bench_http --loader httpx --requests 5000
    .venv/bin/python -m benchmarks.bench_http --scenario custom --method POST \
        --path /v1/applications --body @application.json --header 'X-Thing: 1'

It builds a temp SQLite database with one booked loan and a risk key, starts uvicorn on the
`lendstack.api.app:app_from_env` factory (uvloop + httptools, no access log), and drives each
scenario with wrk when installed (`apt-get install wrk`; a generated Lua script carries the
method, body and headers) or else with a bounded asyncio httpx generator. The httpx generator
saturates near 600 req/s on 2 cores, so its figures bound the client, not the server; the
output says which loader ran. Each scenario prints one markdown table row.

Add a scenario by adding a function to SCENARIOS: it gets the Fixture and returns a Target.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx

from lendstack.servicing import LoanRequest, ProductCatalog, book_loan
from lendstack.storage.apikeys import Role, SqlApiKeys
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.repositories import SqlUnitOfWork

FACTORY = "lendstack.api.app:app_from_env"
APPLICATION_TEMPLATE = (
    (Path(__file__).resolve().parents[1] / "examples" / "application.json")
    .read_text(encoding="utf-8")
    .replace("440305199205171235", "__RESIDENT_ID__")
)


@dataclass(frozen=True)
class Fixture:
    base_url: str
    key: str
    loan_id: int


@dataclass(frozen=True)
class Target:
    method: str
    path: str
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    unique_header: str | None = None
    """A header given a fresh value on every request, e.g. Idempotency-Key for writes."""
    fresh_resident_id: bool = False
    """Replace `__RESIDENT_ID__` in the body with a new checksum-valid ID per request, so
    each application is a new borrower (no duplicate-window declines, no shared exposure)."""


@dataclass(frozen=True)
class Result:
    loader: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _auth(fx: Fixture) -> dict[str, str]:
    return {"Authorization": f"Bearer {fx.key}"}


SCENARIOS: dict[str, Callable[[Fixture], Target]] = {
    "healthz": lambda fx: Target("GET", "/healthz"),
    "loan": lambda fx: Target("GET", f"/v1/loans/{fx.loan_id}", headers=_auth(fx)),
    "payoff": lambda fx: Target(
        "GET", f"/v1/loans/{fx.loan_id}/payoff-quote?date=2026-01-20", headers=_auth(fx)
    ),
    "application": lambda fx: Target(
        "POST",
        "/v1/applications",
        APPLICATION_TEMPLATE,
        _auth(fx),
        unique_header="Idempotency-Key",
        fresh_resident_id=True,
    ),
    "payment": lambda fx: Target(
        "POST",
        f"/v1/loans/{fx.loan_id}/payments",
        '{"amount": "0.01", "date": "2026-01-15"}',
        _auth(fx),
        unique_header="Idempotency-Key",
    ),
}


# --- server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_database(folder: Path) -> tuple[str, str, int]:
    """A migrated SQLite file with one booked loan and a risk key: (url, key, loan id)."""
    url = f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(url)
    migrate(engine)
    request = LoanRequest("cash-loan-installment", Decimal(12000), 12, None, date(2026, 1, 15))
    loan = book_loan(SqlUnitOfWork(engine), ProductCatalog(), request)
    key, _ = SqlApiKeys(engine).create(Role.RISK)
    engine.dispose()
    return url, key, loan.id


@contextmanager
def running_server(url: str, workers: int) -> Iterator[str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", FACTORY, "--factory", "--port", str(port)]
    cmd += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    key = base64.b64encode(os.urandom(32)).decode()
    env = {**os.environ, "LENDSTACK_DATABASE_URL": url, "LENDSTACK_PII_KEY": key}
    proc = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not become healthy")


# --- wrk -----------------------------------------------------------------------------------

_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


# Each wrk thread has its own Lua state; setup() numbers the threads so values never collide.
_WRK_UNIQUE = """
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
local template = wrk.body
local weights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local checks = "10X98765432"
local function resident_id()
  local first = string.format("440305%04d%02d%02d%03d", math.random(1970, 2000),
    math.random(1, 12), math.random(1, 28), math.random(0, 999))
  local sum = 0
  for i = 1, 17 do sum = sum + tonumber(first:sub(i, i)) * weights[i] end
  local m = sum % 11
  return first .. checks:sub(m + 1, m + 1)
end
request = function()
  n = n + 1
  if n == 1 then math.randomseed(os.time() * 100 + tid) end
  wrk.headers[ HEADER ] = string.format("bench-RUNID-%d-%d", tid, n)
  if FRESH_ID and template then wrk.body = template:gsub("__RESIDENT_ID__", resident_id()) end
  return wrk.format()
end
"""


def _lua_string(text: str) -> str:
    """A Lua long-bracket literal: raw UTF-8, no escapes (LuaJIT has no \\u escapes)."""
    level = "=" * 3
    if f"]{level}]" in text:
        raise ValueError("text contains the Lua long-bracket terminator")
    return f"[{level}[{text}]{level}]"


def wrk_script(target: Target) -> str:
    """Lua for wrk: method, body and headers of every request, and a JSON summary at the end."""
    lines = [f"wrk.method = {_lua_string(target.method)}"]
    if target.body is not None:
        lines.append(f"wrk.body = {_lua_string(target.body)}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    lines += [
        f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in target.headers.items()
    ]
    if target.unique_header is not None:
        # A fresh run id per script: warm-up and measured runs must never share a key.
        unique = _WRK_UNIQUE.replace("HEADER", _lua_string(target.unique_header))
        unique = unique.replace("RUNID", uuid.uuid4().hex)
        lines.append(unique.replace("FRESH_ID", "true" if target.fresh_resident_id else "false"))
    return "\n".join(lines) + "\n" + _WRK_DONE


def run_wrk(base: str, target: Target, seconds: float, connections: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(target))
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", script.name]
    out = subprocess.run([*cmd, base + target.path], capture_output=True, text=True, check=True)
    os.unlink(script.name)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    secs = summary["duration_us"] / 1e6
    return Result(
        "wrk",
        summary["requests"],
        secs,
        summary["requests"] / secs,
        summary["p50_us"] / 1000,
        summary["p99_us"] / 1000,
        summary["errors"],
    )


# --- httpx fallback, run in a child process -----------------------------------------------


async def _httpx_load(
    base: str, target: Target, total: int, seconds: float, conns: int
) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    remaining = total
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    began = time.time()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                headers = target.headers
                if target.unique_header is not None:
                    headers = {**headers, target.unique_header: f"bench-{began}-{remaining}"}
                body = target.body
                if target.fresh_resident_id and body is not None:
                    body = body.replace("__RESIDENT_ID__", random_resident_id())
                start = time.perf_counter()
                try:
                    r = await client.request(
                        target.method, target.path, content=body, headers=headers
                    )
                    errors += r.status_code >= 400
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "latencies": _pcts(latencies),
        "errors": errors,
    }


def random_resident_id() -> str:
    from lendstack.underwriting.identity import make_resident_id

    born = date(random.randint(1970, 2000), random.randint(1, 12), random.randint(1, 28))
    return make_resident_id("440305", born, random.randint(0, 999))


def _pcts(sorted_s: list[float]) -> dict[str, float]:
    if not sorted_s:
        return {"p50": 0.0, "p99": 0.0}
    pick = lambda q: sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))]  # noqa: E731
    return {"p50": pick(0.50) * 1000, "p99": pick(0.99) * 1000}


def run_httpx(base: str, target: Target, total: int, seconds: float, conns: int) -> Result:
    job = {
        "base": base,
        "target": asdict(target),
        "total": total,
        "seconds": seconds,
        "conns": conns,
    }
    cmd = [sys.executable, "-m", "benchmarks.bench_http", "--load-child", json.dumps(job)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=_repo_root())
    got = json.loads(out.stdout)
    lat = got["latencies"]
    rps = got["requests"] / got["seconds"]
    return Result(
        "httpx", got["requests"], got["seconds"], rps, lat["p50"], lat["p99"], got["errors"]
    )


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _load_child(job_text: str) -> None:
    job = json.loads(job_text)
    target = Target(**job["target"])
    result = asyncio.run(
        _httpx_load(job["base"], target, job["total"], job["seconds"], job["conns"])
    )
    print(json.dumps(result))


# --- driver --------------------------------------------------------------------------------


def _custom(args: argparse.Namespace) -> Callable[[Fixture], Target]:
    body = args.body
    if body is not None and body.startswith("@"):
        body = Path(body[1:]).read_text()

    def make(fx: Fixture) -> Target:
        headers = dict(h.split(":", 1) for h in args.header)
        headers = {k.strip(): v.strip() for k, v in headers.items()}
        path = args.path.format(loan_id=fx.loan_id)
        return Target(args.method, path, body, {**_auth(fx), **headers})

    return make


def measure(args: argparse.Namespace, base: str, target: Target, loader: str) -> Result:
    if loader == "wrk":
        run_wrk(base, target, 1, args.connections)  # warm-up
        return run_wrk(base, target, args.duration, args.connections)
    run_httpx(base, target, 200, 1, args.connections)  # warm-up
    return run_httpx(base, target, args.requests, args.duration, args.connections)


def row(name: str, workers: int, conns: int, r: Result) -> str:
    return (
        f"| {name} | {r.loader} | {workers} | {conns} | {r.requests} | {r.rps:,.0f} "
        f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", action="append", choices=[*SCENARIOS, "custom"])
    p.add_argument("--loader", choices=["auto", "wrk", "httpx"], default="auto")
    p.add_argument("--duration", type=float, default=10.0, help="Seconds per scenario (max).")
    p.add_argument("--requests", type=int, default=20_000, help="Request cap (httpx loader).")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes.")
    p.add_argument("--method", default="GET", help="custom scenario: HTTP method.")
    p.add_argument("--path", default="/healthz", help="custom: path; {loan_id} is filled in.")
    p.add_argument("--body", default=None, help="custom: JSON body, or @file.")
    p.add_argument("--header", action="append", default=[], help="custom: 'Name: value'.")
    p.add_argument("--load-child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.load_child:
        _load_child(args.load_child)
        return
    loader = args.loader if args.loader != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    scenarios = {**SCENARIOS, "custom": _custom(args)}
    names = args.scenario or ["healthz", "loan"]
    print(
        f"# {platform.node()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"loader {loader}, {args.connections} connections, {args.duration:g} s per scenario"
    )
    print(
        "| scenario | loader | workers | connections | requests | req/s | p50 ms | p99 ms | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        url, key, loan_id = prepare_database(Path(folder))
        with running_server(url, args.workers) as base:
            fx = Fixture(base, key, loan_id)
            for name in names:
                result = measure(args, base, scenarios[name](fx), loader)
                print(row(name, args.workers, args.connections, result), flush=True)


if __name__ == "__main__":
    main()

"""Re-deciding stored applications: replay (same engine) and backtest (another pack or model).

Each stored record is read back, its PII unsealed, and the application re-decided with the
borrower history the record kept; recomputing history from today's log would count the
decisions that came after it. Funding is not recomputed either: it depended on the book at
that moment, so the recorded funding outcome is applied to the fresh decision (a recorded
"no capacity" declines it again). Records are streamed, so memory does not grow with the range.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from itertools import islice
from multiprocessing import get_context
from typing import Any, Protocol, TypeVar

from lendstack.core.errors import InvariantViolation, NotFound, ValidationError
from lendstack.underwriting.application import Application
from lendstack.underwriting.audit import LogEntry
from lendstack.underwriting.engine import BorrowerHistory, Engine
from lendstack.underwriting.guarantee import with_recorded_funding
from lendstack.underwriting.pii import PiiVault
from lendstack.underwriting.replay import BacktestTally, Difference, ReplayReport, diff_decisions
from lendstack.underwriting.rules import RulePack, parse_pack

_R = TypeVar("_R")
_T = TypeVar("_T")


class StoredDecisions(Protocol):
    def between(self, first: date, last: date) -> Iterator[LogEntry]: ...
    def pack_text(self, sha256: str) -> str | None: ...


def stored_inputs(
    entry: LogEntry, vault: PiiVault
) -> tuple[dict[str, Any], Application, BorrowerHistory]:
    record = json.loads(entry.record_json)
    revealed = vault.reveal(record["application"], entry.decision_id)
    app = Application.model_validate(revealed)
    h = record["history"]
    misuse = tuple(h.get("funds_misuse", ()))
    return record, app, BorrowerHistory(Decimal(h["existing_balance"]), h["duplicate_of"], misuse)


def pinned_pack(log: StoredDecisions, sha256: str) -> RulePack:
    """The rule pack a decision was made under, from the text stored at decision time."""
    text = log.pack_text(sha256)
    if text is None:
        raise NotFound(f"rule pack text {sha256[:12]}… is not stored", field="rule_pack")
    return parse_pack(text, f"stored pack {sha256[:12]}")


def _check_pinned(record: dict[str, Any], engine: Engine, model_sha256: str) -> None:
    if record["model"]["sha256"] != model_sha256:
        raise ValidationError(
            f"decision {record['decision_id']} was made with model {record['model']['sha256'][:12]}…, "
            f"not the loaded {model_sha256[:12]}…; pass --model to that model, or use a backtest",
            field="model",
        )
    if record["policy"]["sha256"] != engine.policy.sha256:
        raise ValidationError(
            f"decision {record['decision_id']} was made under policy "
            f"{record['policy']['version']} ({record['policy']['sha256'][:12]}…)",
            field="policy",
        )


CHUNK = 2_000
"""Records per chunk sent to a worker process."""


@dataclass(frozen=True, slots=True)
class Rerun:
    """What re-deciding needs, built once per process (so it can live in a worker).

    For a replay, `engine` is the engine of record (its pack is swapped for each record's
    pinned pack); for a backtest, `challenger(record)` gives the engine to compare against.
    """

    log: StoredDecisions
    vault: PiiVault
    engine: Engine | None = None
    model_sha256: str = ""
    challenger: Callable[[dict[str, Any]], Engine] | None = None
    packs: dict[str, Engine] = field(default_factory=dict, compare=False, repr=False)
    """The engine of record per pinned pack sha256, reused so its memos stay warm."""

    def pinned(self, record: dict[str, Any]) -> Engine:
        engine = _need(self.engine)
        _check_pinned(record, engine, self.model_sha256)
        sha = record["rule_pack"]["sha256"]
        if sha not in self.packs:
            self.packs[sha] = replace(engine, pack=pinned_pack(self.log, sha))
        return self.packs[sha]


RerunFactory = Callable[[], Rerun]
"""Builds a worker's `Rerun`; must be picklable (workers are spawned, not forked)."""


def replay(
    log: StoredDecisions,
    vault: PiiVault,
    engine: Engine,
    model_sha256: str,
    first: date,
    last: date,
    tick: Callable[[], None] | None = None,
    *,
    workers: int = 1,
    factory: RerunFactory | None = None,
) -> ReplayReport:
    """Re-decide each stored decision with its pinned pack; with `workers` > 1 and a
    `factory`, chunks are re-decided in worker processes, with the same result."""
    job = Rerun(log, vault, engine, model_sha256)
    differences: list[Difference] = []
    checked = 0
    for count, found in _map(_replay_chunk, job, log.between(first, last), workers, factory):
        checked += count
        differences.extend(found)
        _advance(tick, count)
    return ReplayReport(checked, tuple(differences))


def backtest(
    log: StoredDecisions,
    vault: PiiVault,
    challenger: Callable[[dict[str, Any]], Engine],
    first: date,
    last: date,
    tick: Callable[[], None] | None = None,
    *,
    workers: int = 1,
    factory: RerunFactory | None = None,
) -> BacktestTally:
    """`challenger(record)` gives the engine to compare against for that record (in worker
    processes, the factory's `Rerun.challenger` does). The parent tallies in log order."""
    job = Rerun(log, vault, challenger=challenger)
    tally = BacktestTally()
    for pairs in _map(_backtest_chunk, job, log.between(first, last), workers, factory):
        for base, fresh in pairs:
            tally.add(base, fresh)
        _advance(tick, len(pairs))
    return tally


def _replay_chunk(job: Rerun, entries: list[LogEntry]) -> tuple[int, list[Difference]]:
    found = []
    for entry in entries:
        record, app, history = stored_inputs(entry, job.vault)
        engine = job.pinned(record)
        decided = engine.decide(app, history)
        fresh = with_recorded_funding(
            engine, app, history, decided, record["decision"], entry.decision_id
        ).as_json()
        changed = diff_decisions(record["decision"], fresh)
        if changed:
            found.append(Difference(entry.decision_id, changed))
    return len(entries), found


def _backtest_chunk(job: Rerun, entries: list[LogEntry]) -> list[tuple[_Json, _Json]]:
    challenger = _need(job.challenger)
    pairs = []
    for entry in entries:
        record, app, history = stored_inputs(entry, job.vault)
        engine = challenger(record)
        decided = engine.decide(app, history)
        fresh = with_recorded_funding(
            engine, app, history, decided, record["decision"], entry.decision_id
        ).as_json()
        pairs.append((_tallied(record["decision"]), _tallied(fresh)))
    return pairs


_Json = dict[str, Any]


def _tallied(decision: _Json) -> _Json:
    """Only what `BacktestTally.add` reads, so workers send back a few bytes per record."""
    return {
        "outcome": decision["outcome"],
        "score": decision.get("score"),
        "rule_results": [
            {"rule_id": r["rule_id"], "verdict": r["verdict"]}
            for r in decision.get("rule_results", ())
            if r["verdict"] == "fail"
        ],
        "reasons": [
            {"rule_id": r["rule_id"]} for r in decision.get("reasons", ()) if r.get("rule_id")
        ],
    }


def _map(
    work: Callable[[Rerun, list[LogEntry]], _R],
    job: Rerun,
    entries: Iterator[LogEntry],
    workers: int,
    factory: RerunFactory | None,
) -> Iterator[_R]:
    """`work` over chunks of `entries`, results in log order: in-process, or in a pool."""
    chunks = _chunked(entries, CHUNK)
    if workers <= 1 or factory is None:
        for chunk in chunks:
            yield work(job, chunk)
        return
    context = get_context("spawn")  # the parent's OpenMP threads do not survive a fork
    with ProcessPoolExecutor(workers, context, initializer=_init, initargs=(factory,)) as pool:
        running: deque[Future[_R]] = deque()
        for chunk in chunks:
            running.append(pool.submit(_in_worker, work, chunk))
            if len(running) >= 2 * workers:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()


_worker: Rerun | None = None


def _init(factory: RerunFactory) -> None:
    global _worker
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(limits=1)
    _worker = factory()


def _in_worker(work: Callable[[Rerun, list[LogEntry]], _R], chunk: list[LogEntry]) -> _R:
    return work(_need(_worker), chunk)


def _chunked(entries: Iterator[LogEntry], size: int) -> Iterator[list[LogEntry]]:
    while chunk := list(islice(entries, size)):
        yield chunk


def _advance(tick: Callable[[], None] | None, count: int) -> None:
    """`tick` once per record: the CLI passes a progress bar's advance."""
    if tick is not None:
        for _ in range(count):
            tick()


def _need(value: _T | None) -> _T:
    if value is None:
        raise InvariantViolation("re-run job is missing what this kind of run needs")
    return value

"""Deciding a file of applications at scale: chunks decided in parallel, recorded in order.

The work per chunk is: parse, build the feature matrix, score it in one model pass (bit for
bit the single-row scores), stage every decision (outcome and offer), explain all
non-approvals in one TreeSHAP matrix call, then build the records and their canonical log
text. That runs in worker processes, each holding its own
`Underwriting` service built once. The parent only chains: it appends each chunk's entries
with one `append_many` transaction, in input order, so the log is linear and deterministic.

Funding is sought at staging time, row by row in input order, from the worker's own funding
desk (so rows of one chunk see each other's reservations; rows in other workers' chunks are
only seen once booked, and booking re-checks every plan against the exact book).

A borrower's later application must see the earlier ones (exposure, duplicate check), exactly
as sequential `Underwriting.decide` calls would:
- inside a chunk, the worker passes each decision forward as `Booked` history;
- before the batch, the log is asked once per chunk which borrowers it already knows, and
  reads those borrowers' exposure and decisions in one go (`borrower_histories`);
- across chunks, a borrower already seen in an earlier chunk is *deferred*: the parent
  decides that row itself with `Underwriting.decide`, after everything before it has been
  appended, so the log answers its history exactly. Repeats are rare, so this costs little,
  and a false alarm (two people sharing a routing hash) only takes the exact slow path.
"""

from __future__ import annotations

import gc
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from multiprocessing import get_context
from typing import Any, Protocol

import numpy as np

from lendstack.core.money import to_fen
from lendstack.funding import FundingPlan
from lendstack.underwriting.application import Application
from lendstack.underwriting.batch_input import parse
from lendstack.underwriting.decision import GRANTED
from lendstack.underwriting.engine import BorrowerHistory, Staged
from lendstack.underwriting.origination import Bookable, bookable
from lendstack.underwriting.service import Booked, Funding, Underwriting, new_decision_id
from lendstack.underwriting.views import summary

CHUNK = 2_000
"""Rows per chunk: large enough to amortise a transaction and a TreeSHAP call."""


class Entry(Protocol):
    """What `decide_rows` reads of a prepared log entry: the record text to be chained."""

    @property
    def record_json(self) -> str: ...


Prepare = Callable[..., Entry]
"""The log's pure `prepare_entry(**columns, review=...)`: record text built in the worker."""
Factory = Callable[[], tuple[Underwriting, Prepare]]
"""Builds a worker's service and the log's `prepare_entry`; must be picklable (spawn)."""


@dataclass(frozen=True, slots=True)
class RowResult:
    """One input row's result: the line for `--out` and the outcome to tally."""

    number: int
    line: dict[str, Any]
    outcome: str
    record_json: str | None = None
    """A granted decision's stored record text; None for every other outcome."""
    bookable: Bookable | None = None
    """A granted decision made ready to book, where the decider was asked for it
    (`ChunkDecider.bookable`); None otherwise."""

    @property
    def record(self) -> dict[str, Any] | None:
        """A granted decision's record exactly as `Underwriting.get` reads it back, without
        the read (a caller booking the loan needs it); parsed only when asked for."""
        return None if self.record_json is None else dict(json.loads(self.record_json))


@dataclass(frozen=True, slots=True)
class _Decided:
    number: int
    entry: Entry
    """The log's prepared entry (chained by the parent)."""
    line: dict[str, Any]
    outcome: str
    bookable: Bookable | None = None


@dataclass(frozen=True, slots=True)
class _Invalid:
    number: int
    channel: Any
    errors: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class _Deferred:
    number: int
    row: dict[str, Any]


Item = _Decided | _Invalid | _Deferred
Chunk = list[tuple[int, dict[str, Any], bool]]
"""(row number, raw row, deferred?) in input order."""


# -- the worker side ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChunkDecider:
    """Decides chunks with one service; the same code runs in a worker or in-process."""

    service: Underwriting
    prepare: Prepare
    bookable: bool = False
    """Make each granted decision ready to book too (`origination.bookable`, from its record
    text, with the engine's products): work the booking then need not do, done here, in a
    worker when the decider runs in one."""

    def __call__(self, chunk: Chunk) -> list[Item]:
        with _collector_paused():
            return self._decide_chunk(chunk)

    def _decide_chunk(self, chunk: Chunk) -> list[Item]:
        parsed: list[tuple[int, Application]] = []
        items: dict[int, Item] = {}
        for number, row, deferred in chunk:
            result = None if deferred else parse(row)
            if result is None:
                items[number] = _Deferred(number, row)
            elif isinstance(result, Application):
                parsed.append((number, result))
            else:
                items[number] = _Invalid(number, row.get("channel"), result)
        for item in self._decide([app for _, app in parsed], [n for n, _ in parsed]):
            items[item.number] = item
        return [items[number] for number, _, _ in chunk]

    def _decide(self, apps: Sequence[Application], numbers: Sequence[int]) -> list[_Decided]:
        if not apps:
            return []
        engine, vault = self.service.engine, self.service.vault
        borrowers = [vault.borrower_key(app.applicant.resident_id) for app in apps]
        X = engine.encode_many(apps)
        staged = self._stage(apps, borrowers, X)
        finished = engine.finish_many([s.staged for s in staged], X)
        out = []
        for i, (app, s) in enumerate(zip(apps, staged, strict=True)):
            funding = s.funding
            decision = (
                finished[i]
                if funding is None
                else funding.applied(engine, app, s.history, finished[i])
            )
            prepared = self.service.prepare(
                app,
                app.normalised(),
                borrowers[i],
                s.history,
                decision,
                time.perf_counter_ns() - s.spent_ns,
                decision_id=s.decision_id,
            )
            entry = self.prepare(**prepared.columns, review=prepared.review)
            line = {"row": numbers[i], **summary(s.decision_id, prepared.record)}
            outcome = str(decision.outcome)
            ready = self._bookable(entry) if outcome in GRANTED else None
            out.append(_Decided(numbers[i], entry, line, outcome, ready))
        return out

    def _bookable(self, entry: Entry) -> Bookable | None:
        """The decision ready to book, read from the record text as it will be stored (so
        exactly what booking would read back from the log)."""
        if not self.bookable:
            return None
        return bookable(self.service.engine.catalog, json.loads(entry.record_json))

    def _stage(
        self, apps: Sequence[Application], borrowers: Sequence[str], X: np.ndarray
    ) -> list[_StagedRow]:
        """Stage every row in order, passing each borrower's decisions forward as history."""
        service, engine = self.service, self.service.engine
        known = service.log.known_borrowers(borrowers)
        logged = service.log.borrower_histories(known)
        flagged = None if service.misuse is None else service.misuse.misuse_flags_many(known)
        service.prefetch_funding(app.application_date for app in apps)
        started = time.perf_counter_ns()
        scores = engine.score_many(X)
        # Each row's share of the one model pass counts in its `engine_us`.
        scoring_ns = (time.perf_counter_ns() - started) // max(len(apps), 1)
        book: dict[str, list[Booked]] = {}
        out = []
        for i, (app, borrower) in enumerate(zip(apps, borrowers, strict=True)):
            started = time.perf_counter_ns()
            history = service.history(
                app,
                borrower,
                in_log=borrower in known,
                earlier=book.get(borrower, ()),
                logged=logged.get(borrower),
                flagged=None if flagged is None else flagged.get(borrower, ()),
            )
            staged = engine.stage(app, history, scores[i])
            decision_id = new_decision_id()
            funding = service.funding(
                app, history, staged.outcome, staged.offer, staged.draft.score, decision_id
            )
            plan = None if funding is None else funding.plan
            book.setdefault(borrower, []).append(_booked(decision_id, app, staged, plan))
            spent = time.perf_counter_ns() - started + scoring_ns
            out.append(_StagedRow(staged, history, decision_id, spent, funding))
        return out


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a chunk is decided.

    Deciding allocates many objects that live for the chunk, which keeps triggering
    collections, and a collection of the older generations walks the caller's whole heap (a
    simulation holds its population and book): measured as 15% of a simulation's decision
    time. A decided chunk leaves no cyclic garbage (reference counting frees it all), and
    whatever a chunk might leave is collected once the collector is back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class _StagedRow:
    staged: Staged
    history: BorrowerHistory
    decision_id: str
    spent_ns: int
    """Time the engine spent on this row (reasons excluded): recorded as `engine_us`."""
    funding: Funding | None = None
    """The funding desk's plan for a granted offer (applied once the row is finished)."""


def _booked(decision_id: str, app: Application, staged: Staged, plan: FundingPlan | None) -> Booked:
    """What a later row of the same borrower sees: an unfunded offer was declined."""
    approved = staged.outcome in GRANTED and (plan is None or plan.funded)
    offer = staged.offer
    fen = to_fen(offer.amount) if approved and offer is not None else None
    return Booked(decision_id, app.application_date, fen)


# -- the worker process -----------------------------------------------------------------

_worker: ChunkDecider | None = None


def _init_worker(factory: Factory, bookable: bool = False) -> None:
    """Build the worker's service once; LightGBM gets one thread (the pool has the cores)."""
    global _worker
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(limits=1)
    service, prepare = factory()
    _worker = ChunkDecider(service, prepare, bookable)


def _run_chunk(chunk: Chunk) -> list[Item]:
    if _worker is None:
        raise RuntimeError("worker used before its initializer ran")
    return _worker(chunk)


def _run_chunk_on_dask(factory: Factory, chunk: Chunk, bookable: bool = False) -> list[Item]:
    """A Dask worker has no pool initializer: build its service on its first chunk."""
    if _worker is None:
        _init_worker(factory, bookable)
    return _run_chunk(chunk)


# -- the parent side --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchJob:
    """How to run a batch: the parent's service, the log text builder and the pool size.

    `factory` builds a worker's own service (processes share nothing); with `workers` <= 1
    or an input that fits in one chunk, chunks are decided in-process with `service`.
    """

    service: Underwriting
    prepare: Prepare
    factory: Factory
    workers: int = 1
    chunk_size: int = CHUNK
    scheduler: str | None = None
    """A Dask scheduler address (tcp://host:8786): chunks run on its workers instead of a
    local process pool. The parent still records every chunk, in order."""
    bookable: bool = False
    """Granted results carry their decision ready to book (`ChunkDecider.bookable`)."""


def decide_rows(rows: Iterable[dict[str, Any]], job: BatchJob) -> Iterator[RowResult]:
    """Decide and record every row, yielding each row's result in input order."""
    chunks = chunked(rows, job.chunk_size)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if job.scheduler is not None:
        with _dask(job) as pool:
            for items in _ordered(pool, _prepend([first, *filter(None, [second])], chunks), 4):
                yield from record_chunk(job.service, items)
        return
    if second is None or job.workers <= 1:
        local = ChunkDecider(job.service, job.prepare, job.bookable)
        rest = [first] if second is None else _prepend([first, second], chunks)
        for chunk in rest:
            yield from record_chunk(job.service, local(chunk))
        return
    with _pool(job) as pool:
        for items in _ordered(pool, _prepend([first, second], chunks), 2 * job.workers):
            yield from record_chunk(job.service, items)


def _pool(job: BatchJob) -> ProcessPoolExecutor:
    """Spawned, not forked: the parent's LightGBM (OpenMP) threads do not survive a fork."""
    return ProcessPoolExecutor(
        job.workers,
        get_context("spawn"),
        initializer=_init_worker,
        initargs=(job.factory, job.bookable),
    )


class _DaskPool:
    """The two calls `_ordered` needs, on a dask.distributed client."""

    def __init__(self, client: Any, factory: Factory, bookable: bool = False) -> None:
        self._client, self._factory, self._bookable = client, factory, bookable

    def submit(self, fn: Callable[..., Any], chunk: Chunk) -> Any:
        if fn is not _run_chunk:
            raise ValueError("only chunk decisions run on Dask")
        return self._client.submit(
            _run_chunk_on_dask, self._factory, chunk, self._bookable, pure=False
        )


@contextmanager
def _dask(job: BatchJob) -> Iterator[_DaskPool]:
    from distributed import Client

    with Client(job.scheduler, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        yield _DaskPool(client, job.factory, job.bookable)


def _prepend(head: list[Chunk], rest: Iterator[Chunk]) -> Iterator[Chunk]:
    yield from head
    yield from rest


def _ordered(
    pool: ProcessPoolExecutor | _DaskPool, chunks: Iterator[Chunk], depth: int
) -> Iterator[list[Item]]:
    """Results in submission order, at most `depth` chunks in flight (bounded memory)."""
    running: deque[Any] = deque()
    for chunk in chunks:
        running.append(pool.submit(_run_chunk, chunk))
        if len(running) >= depth:
            yield running.popleft().result()
    while running:
        yield running.popleft().result()


def chunked(rows: Iterable[dict[str, Any]], size: int, first: int | None = None) -> Iterator[Chunk]:
    """Numbered rows in chunks, each flagged deferred if its borrower was in an earlier chunk
    (or has a deferred row earlier in this one). With `first`, the chunks start at that many
    rows and double up to `size` (`chunk_sizes`)."""
    seen: set[int] = set()
    numbered = enumerate(rows, 1)
    sizes = chunk_sizes(size, first or size)
    while batch := list(islice(numbered, next(sizes))):
        deferred: set[int] = set()
        here: set[int] = set()
        chunk: Chunk = []
        for number, row in batch:
            person = _person(row)
            late = person is not None and (person in seen or person in deferred)
            if late and person is not None:
                deferred.add(person)
            elif person is not None:
                here.add(person)
            chunk.append((number, row, late))
        seen |= here | deferred
        yield chunk


def chunk_sizes(size: int, first: int) -> Iterator[int]:
    """`first`, then each size double the last, up to `size`, then `size` for ever: a reader
    waiting for the first results gets them after a small chunk, while later chunks stay
    large enough that a chunk's fixed costs (a model call, a round trip) stay small."""
    if size < 1 or first < 1:
        raise ValueError(f"chunk sizes must be positive, not {size} and {first}")
    current = min(first, size)
    while True:
        yield current
        current = min(2 * current, size)


def _person(row: dict[str, Any]) -> int | None:
    """A routing hash of the resident ID, normalised as `PiiVault.borrower_key` does."""
    applicant = row.get("applicant")
    value = applicant.get("resident_id") if isinstance(applicant, dict) else None
    return hash(value.strip().upper()) if isinstance(value, str) else None


def record_chunk(service: Underwriting, items: list[Item]) -> Iterator[RowResult]:
    """Chain a chunk in order: runs of decided rows in one transaction each; a deferred row
    goes through `Underwriting.decide` once everything before it is in the log."""
    run: list[_Decided] = []
    for item in items:
        if isinstance(item, _Decided):
            run.append(item)
            continue
        yield from _flush(service, run)
        run = []
        yield _exact(service, item) if isinstance(item, _Deferred) else _reject(service, item)
    yield from _flush(service, run)


def _flush(service: Underwriting, run: list[_Decided]) -> Iterator[RowResult]:
    if not run:
        return
    service.store_pack()
    service.log.append_many([d.entry for d in run])
    for d in run:
        text = d.entry.record_json if d.outcome in GRANTED else None
        yield RowResult(d.number, d.line, d.outcome, text, d.bookable)


def _exact(service: Underwriting, item: _Deferred) -> RowResult:
    parsed = parse(item.row)
    if not isinstance(parsed, Application):
        return _reject(service, _Invalid(item.number, item.row.get("channel"), parsed))
    recorded = service.decide(parsed)
    line = {"row": item.number, **summary(recorded.decision_id, dict(recorded.record))}
    stored = service.log.get(recorded.decision_id) if recorded.outcome in GRANTED else None
    text = None if stored is None else stored.record_json
    return RowResult(item.number, line, recorded.outcome, text)


def _reject(service: Underwriting, item: _Invalid) -> RowResult:
    fields = [e["field"] for e in item.errors]
    service.log.count_rejected("batch", item.channel, fields, service.clock())
    line = {"row": item.number, "outcome": "INVALID", "errors": item.errors}
    return RowResult(item.number, line, "INVALID")

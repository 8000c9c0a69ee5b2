"""A month's decisions: made first in the run's own process, or in a second process while
the first services the month.

A month's applications are all decided against the book as it stands when the month begins
(the runner decides them before servicing its first day), and a day's granted offers are
booked that day. The decisions' work (feature rows, scores, rules, offers, funding plans,
reasons, record text) is most of a run's Python that no servicing step waits on until the
day it is booked, so `SideProcess` moves it to a second process, where it runs on the other
core while the run's process books, posts and closes the days:

- at the month's start the side process pins its database reader to that moment
  (`storage.snapshot.PinnedReader`, a SQLite read transaction) before the run's process writes
  anything, then decides chunk after chunk reading only that moment: what it reads is what
  the run's process would have read deciding the month before servicing it;
- the run's process records each chunk in the decision log (the hash chain is written by one
  process, in input order, as `underwriting.batch` does) and takes a day's decisions when the
  day comes, waiting only if the side process is behind;
- the side process keeps its service (and so its funding desk, with the plans it reserved)
  from month to month, as the run's own service is kept, and rebuilds it when the run's
  changes (a clampdown's pack, a retrained model).

So a run's results do not depend on where its decisions were made (tested: the whole
database is the same either way). A borrower deciding twice in one month would need the log
to answer for their own earlier decision, which only the run's process can do; the
simulation never draws one borrower twice in a month, and such a month is decided in the
run's process (`underwriting.batch`'s exact path), before servicing, to stay exact anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from lendstack.simulation.platform import ServiceSpec, build_service
from lendstack.storage.decisions import prepare_entry
from lendstack.storage.snapshot import PinnedReader
from lendstack.underwriting.batch import (
    BatchJob,
    Chunk,
    ChunkDecider,
    Item,
    RowResult,
    chunked,
    decide_rows,
    record_chunk,
)
from lendstack.underwriting.service import Underwriting

SIDE_CHUNK = 500
"""Rows per chunk in the side process, once the month is under way: smaller than the batch
path's `CHUNK`, so the run never waits long for the next; a chunk's size changes no decision
(each row is decided alone against the same moment)."""
SIDE_FIRST_CHUNK = 25
"""Rows in a month's first chunk; each next chunk is twice the last, up to `SIDE_CHUNK`. The
run waits at each month's start until the chunk holding the first day's applications is
decided: with 500-row chunks from the start that was about half a second a month, most of
the time the run's process spent waiting (docs/benchmarks.md, session k)."""

Rows = Sequence[dict[str, Any]]
Progress = Callable[[int, int], None]
"""progress(done, total) while a month is decided in the run's own process."""


def decide_first(rows: Rows, job: BatchJob, progress: Progress) -> Iterator[RowResult]:
    """The whole month decided and recorded now, in the run's process (`underwriting.batch`)."""
    results = []
    for result in decide_rows(rows, job):
        results.append(result)
        if result.number % 200 == 0:
            progress(result.number, len(rows))
    return iter(results)


class SideProcess:
    """Decides each month in one spawned process, alongside the run's servicing of it."""

    def __init__(self, spec: ServiceSpec, chunk_size: int | None = None) -> None:
        self._chunk_size = chunk_size or SIDE_CHUNK
        self._first_chunk = SIDE_FIRST_CHUNK  # `chunk_sizes` keeps it within the chunk size
        # Spawned, not forked: the run's LightGBM (OpenMP) threads do not survive a fork.
        self._pool = ProcessPoolExecutor(1, get_context("spawn"))
        self._pool.submit(_serve, spec)  # loads the model while the run sets up
        self.cpu_seconds = 0.0
        """The side process's CPU time so far (read at each month's end)."""

    def month(self, spec: ServiceSpec, job: BatchJob, rows: Rows) -> Iterator[RowResult]:
        """Start deciding `rows`; returns once the side process holds the month's moment (so
        the caller may write), with their results to take in order (each recorded in the log
        by `job.service` as it is taken)."""
        chunks = list(chunked(rows, self._chunk_size, self._first_chunk))
        if any(deferred for chunk in chunks for *_, deferred in chunk):
            return decide_first(rows, job, lambda done, total: None)
        self._pool.submit(_begin, spec).result()
        futures = [self._pool.submit(_decide, chunk) for chunk in chunks]
        ended = self._pool.submit(_end)
        return self._recorded(job.service, futures, ended)

    def _recorded(
        self, service: Underwriting, futures: list[Future[list[Item]]], ended: Future[float]
    ) -> Iterator[RowResult]:
        for future in futures:
            yield from record_chunk(service, future.result())
        self.cpu_seconds = ended.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- the side process ---------------------------------------------------------------------

_reader: PinnedReader | None = None
_decider: ChunkDecider | None = None
_spec: ServiceSpec | None = None


def _serve(spec: ServiceSpec) -> None:
    """The process's decision service under `spec`, (re)built only when `spec` changed."""
    global _reader, _decider, _spec
    if _reader is None:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        threadpool_limits(limits=1)  # LightGBM on this process's own core only
        _reader = PinnedReader(spec.settings.database_url)
    if spec != _spec:
        # Granted decisions come back ready to book: the run's process only re-checks each
        # plan against the day's book and writes (`origination.book_bookables`).
        _decider = ChunkDecider(build_service(spec, _reader.engine), prepare_entry, bookable=True)
        _spec = spec


def _begin(spec: ServiceSpec) -> None:
    _serve(spec)
    if _reader is None:
        raise RuntimeError("the side process has no reader")
    _reader.pin()


def _decide(chunk: Chunk) -> list[Item]:
    if _decider is None or _reader is None or not _reader.pinned:
        raise RuntimeError("a chunk sent before its month began")
    return _decider(chunk)


def _end() -> float:
    """Let the log's checkpoints past the month's moment; returns this process's CPU time."""
    if _reader is not None:
        _reader.unpin()
    return time.process_time()

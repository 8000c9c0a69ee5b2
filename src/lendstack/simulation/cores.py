"""A run's own thread on one core, its helpers on the others (`RunConfig.pin_threads`).

A run with `workers=2` keeps three threads busy: its own (booking, payments, the close,
month-ends: every day waits on it), the side process deciding, and the close's reads aside.
On two cores the scheduler lets them take turns, so the run's thread loses part of its core
whenever both helpers are busy: at 100,000 x 24 it ran about 36 s beyond its CPU time and
its waits for decisions. Pinned, it has a core to itself and the helpers share the rest
(docs/benchmarks.md, session m).

Opt-in: runs that share a machine, each pinned, would all put their own threads on the same
core; and threads the run's thread starts (LightGBM's, when it retrains) share its core. Linux
only (`os.sched_setaffinity`, which there sets the calling thread's cores);
elsewhere, or with one core, nothing is pinned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class CoreSplit:
    own: frozenset[int]
    """The run's thread's core."""
    helpers: frozenset[int]
    """Every other core the process may use."""

    def pin_helper(self) -> None:
        """Move the calling thread to the helpers' cores (a thread or process it starts later
        starts there too): the first thing a helper thread or process does."""
        os.sched_setaffinity(0, self.helpers)


def core_split() -> CoreSplit | None:
    """The cores this process may use, split: the lowest for the run's thread, the others for
    its helpers; None where threads cannot be pinned or there is only one core."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    return CoreSplit(frozenset(allowed[:1]), frozenset(allowed[1:]))


@contextmanager
def pinned(split: CoreSplit | None) -> Iterator[None]:
    """The calling thread on `split.own` for the block, then back on the cores it had.

    A thread starts on its starter's cores, so polars' thread pool, which the month-ends'
    measures and ECL use and which starts on first use, is started before the pinning: its
    threads keep every core."""
    if split is None:
        yield
        return
    pl.thread_pool_size()  # starts the pool
    was = os.sched_getaffinity(0)
    os.sched_setaffinity(0, split.own)
    try:
        yield
    finally:
        os.sched_setaffinity(0, was)

"""Batch deciding and parallel re-runs give exactly what the one-at-a-time paths give.

Everything compared is produced in the same test run: the reference is the plain path
(a fresh engine per decision, `Underwriting.decide` per row, the in-process re-run).
"""

from __future__ import annotations

import base64
import copy
import gc
import json
import os
import re
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from lendstack.cli.underwriting import rerun_worker, worker_service
from lendstack.settings import Settings
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.decisions import SqlDecisionLog, prepare_entry
from lendstack.underwriting.application import Application
from lendstack.underwriting.batch import (
    BatchJob,
    RowResult,
    _collector_paused,
    chunk_sizes,
    chunked,
    decide_rows,
)
from lendstack.underwriting.batch_input import parse
from lendstack.underwriting.decision import GRANTED
from lendstack.underwriting.engine import BorrowerHistory
from lendstack.underwriting.origination import bookable
from lendstack.underwriting.population import PopulationConfig, generate_population
from lendstack.underwriting.rerun import backtest, replay
from lendstack.underwriting.service import Underwriting
from lendstack.wiring import build_engine, underwriting_service


@pytest.fixture(scope="module")
def population() -> list[dict[str, Any]]:
    return list(generate_population(PopulationConfig(seed=23, n=240)).applications())


def test_memoised_and_batch_engine_paths_equal_a_fresh_engine_per_decision(population):
    engine, _ = build_engine(Settings())
    apps = [Application.model_validate(row) for row in population]
    history = BorrowerHistory(Decimal("1500.00"), None)
    reference = [replace(engine).decide(app, history).as_json() for app in apps]
    assert [engine.decide(app, history).as_json() for app in apps] == reference
    assert [engine.decide(app, history).as_json() for app in apps] == reference  # memo hits
    X = np.vstack([engine.encode(app) for app in apps])
    assert np.array_equal(engine.encode_many(apps), X, equal_nan=True)
    scores = [engine.score_encoded(X[i]) for i in range(len(apps))]
    assert engine.score_many(X) == scores  # exact floats: the PDs are recorded and compared
    staged = [engine.stage(app, history, engine.score_encoded(X[i])) for i, app in enumerate(apps)]
    assert [d.as_json() for d in engine.finish_many(staged, X)] == reference
    assert {d["outcome"] for d in reference} >= {"APPROVE", "DECLINE", "COUNTER_OFFER"}
    # Explained rows are remembered: rows seen before, repeated within a chunk, in another
    # order and mixed with unseen ones (a fresh engine) still get exactly their reasons.
    order = [*range(len(apps))[::-1], *range(0, len(apps), 3)]
    for again in (engine, replace(engine)):
        restaged = [engine.stage(apps[i], history, scores[i]) for i in order]
        finished = again.finish_many(restaged, X[order])
        assert [d.as_json() for d in finished] == [reference[i] for i in order]
    assert engine.explained
    assert len(engine.explained) < len(apps)


def with_repeats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The population plus repeat applications: in the same chunk and chunks later, inside
    the duplicate window and after it, and two invalid rows."""
    keyed: list[tuple[float, dict[str, Any]]] = [(i, copy.deepcopy(r)) for i, r in enumerate(rows)]
    for i in range(0, len(rows), 7):
        for days, gap in ((3, 1.5), (5, 95.5), (200, 170.5)):
            later = copy.deepcopy(rows[i])
            later["application_date"] = (
                date.fromisoformat(rows[i]["application_date"]) + timedelta(days=days)
            ).isoformat()
            keyed.append((i + gap, later))
    broken = copy.deepcopy(rows[1])
    broken["loan"]["amount"] = "-5"
    keyed.append((17.5, broken))
    keyed.append((len(rows), {"applicant": {"resident_id": rows[4]["applicant"]["resident_id"]}}))
    return [row for _, row in sorted(keyed, key=lambda k: k[0])]


def _settings(url: str) -> Settings:
    return Settings(database_url=url, pii_key=base64.b64encode(os.urandom(32)).decode())


def _sequential(service: Underwriting, rows: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    out = []
    for row in rows:
        parsed = parse(row)
        if isinstance(parsed, Application):
            recorded = service.decide(parsed)
            out.append((recorded.decision_id, recorded.record))
        else:
            fields = [e["field"] for e in parsed]
            service.log.count_rejected("batch", row.get("channel"), fields, service.clock())
            out.append(("INVALID", parsed))
    return out


def _comparable(results: list[tuple[str, Any]]) -> list[Any]:
    """Decisions with ids replaced by row numbers (ids are random, what they point at is not)."""
    row_of = {decision_id: f"row-{n}" for n, (decision_id, _) in enumerate(results)}
    out = []
    for decision_id, record in results:
        if decision_id == "INVALID":
            out.append(record)
            continue
        text = json.dumps(
            [record["decision"], record["history"], record["request_sha256"]], sort_keys=True
        )
        out.append(re.sub(r"dcs_[0-9a-f]{32}", lambda m: row_of.get(m[0], "?"), text))
    return out


def _stored(log: SqlDecisionLog, results: list[RowResult]) -> list[tuple[str, Any]]:
    out = []
    for r in results:
        if r.outcome == "INVALID":
            out.append(("INVALID", r.line["errors"]))
        else:
            entry = log.get(r.line["decision_id"])
            assert entry is not None
            out.append((entry.decision_id, json.loads(entry.record_json)))
    return out


@pytest.fixture(scope="module")
def dask_scheduler() -> Any:
    """A one-worker local Dask cluster (a separate process, as a remote worker would be)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("workers", [1, 2, "dask"])
def test_batch_equals_sequential_decisions_with_repeat_borrowers(
    population, tmp_path: Path, workers: Any, request: pytest.FixtureRequest
):
    rows = with_repeats(population)
    seq_settings = _settings(f"sqlite:///{tmp_path / 'seq.db'}")
    batch_settings = replace(seq_settings, database_url=f"sqlite:///{tmp_path / 'batch.db'}")
    engines: list[Engine] = []
    for s in (seq_settings, batch_settings):
        engines.append(make_engine(s.database_url))
        migrate(engines[-1])
    sequential = underwriting_service(seq_settings, engines[0])
    expected = _sequential(sequential, rows)
    service = underwriting_service(batch_settings, engines[1])
    factory = partial(worker_service, batch_settings)
    if workers == "dask":
        scheduler = request.getfixturevalue("dask_scheduler")
        job = BatchJob(
            service, prepare_entry, factory, scheduler=scheduler, chunk_size=40, bookable=True
        )
    else:
        job = BatchJob(
            service, prepare_entry, factory, workers=workers, chunk_size=40, bookable=True
        )
    results = list(decide_rows(rows, job))
    assert [r.number for r in results] == list(range(1, len(rows) + 1))
    log = SqlDecisionLog(engines[1])
    assert _comparable(_stored(log, results)) == _comparable(expected)
    for r in results:  # a granted row hands back its record exactly as it reads back
        stored = service.get(r.line["decision_id"]).record if r.outcome in GRANTED else None
        assert r.record == stored
        # and, decided in a chunk (not deferred), its booking made ready from that record
        # (pickled back from the worker: the same values, with the same digits)
        if stored is not None and r.bookable is not None:
            assert repr(r.bookable) == repr(bookable(service.engine.catalog, stored))
    assert sum(r.record is not None for r in results) > 50
    assert sum(r.bookable is not None for r in results) > 50
    outcomes = [r.outcome for r in results]
    assert outcomes.count("INVALID") == 2
    assert sum("P01" in r.line.get("reasons", ()) for r in results) >= 20  # duplicates seen
    assert log.verify().ok
    seq_log = SqlDecisionLog(engines[0])
    assert len(log.reviews("open")) == len(seq_log.reviews("open"))
    assert log.rejected_counts() == seq_log.rejected_counts()


@pytest.fixture
def recorded(population, engine: Engine, database_url: str) -> tuple[Settings, Underwriting]:
    settings = _settings(database_url)
    service = underwriting_service(settings, engine)
    job = BatchJob(service, prepare_entry, partial(worker_service, settings), chunk_size=50)
    list(decide_rows(population[:160], job))
    return settings, service


def test_parallel_replay_and_backtest_equal_the_in_process_runs(recorded):
    settings, service = recorded
    log: Any = service.log
    first, last = date(2020, 1, 1), date(2030, 12, 31)
    engine, sha = service.engine, service.model_sha256
    plain = replay(log, service.vault, engine, sha, first, last)
    factory = partial(rerun_worker, settings, None, None)
    pooled = replay(log, service.vault, engine, sha, first, last, workers=2, factory=factory)
    assert plain.checked == pooled.checked == 160
    assert plain.ok
    assert pooled.ok
    challenger, _ = build_engine(settings, pack="cn-2026-tight")
    tally = backtest(log, service.vault, lambda _r: challenger, first, last).as_json()
    tight = partial(rerun_worker, settings, "cn-2026-tight", None)
    pooled_tally = backtest(
        log, service.vault, lambda _r: challenger, first, last, workers=2, factory=tight
    )
    assert pooled_tally.as_json() == tally
    assert tally["applications"] == 160


def _fail_while_paused() -> None:
    with _collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a chunk that fails")


@pytest.mark.parametrize("enabled", [True, False])
def test_a_chunk_pauses_cyclic_collection_and_restores_the_callers_setting(enabled):
    """The pause is the chunk's own: the caller's collector setting survives, even an error."""
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        with pytest.raises(RuntimeError):
            _fail_while_paused()
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


@settings(max_examples=200, deadline=None)
@given(
    people=st.lists(st.integers(0, 12), max_size=60),
    size=st.integers(1, 20),
    first=st.one_of(st.none(), st.integers(1, 25)),
)
def test_chunks_ramp_up_and_defer_a_borrower_seen_in_an_earlier_chunk(people, size, first):
    """Chunk i holds min(first * 2**i, size) rows (the last what is left); every row comes
    once, numbered in order; a row is deferred exactly when its borrower had a row in an
    earlier chunk or a deferred row earlier in its own."""
    rows = [{"applicant": {"resident_id": f" id{p} "}} for p in people]
    chunks = list(chunked(rows, size, first))
    sizes = [len(c) for c in chunks]
    expected, left, step = [], len(rows), min(first or size, size)
    while left > 0:
        expected.append(min(step, left))
        left -= step
        step = min(2 * step, size)
    assert sizes == expected
    assert [number for chunk in chunks for number, _, _ in chunk] == list(range(1, len(rows) + 1))
    earlier: set[int] = set()
    for chunk in chunks:
        late_here: set[int] = set()
        for _, row, deferred in chunk:
            person = int(row["applicant"]["resident_id"].strip()[2:])
            should = person in earlier or person in late_here
            assert deferred is should
            if should:
                late_here.add(person)
        earlier |= {int(r["applicant"]["resident_id"].strip()[2:]) for _, r, _ in chunk}


def test_chunk_sizes_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        next(chunk_sizes(0, 5))
    assert list(islice(chunk_sizes(500, 25), 7)) == [25, 50, 100, 200, 400, 500, 500]

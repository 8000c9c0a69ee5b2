"""ECL runs over the book: measure, keep the run, and post the allowance change to the ledger.

One handler, `run_ecl`, in one transaction: a bad date, a conflicting posting or any error
leaves nothing written. The rules it keeps (docs/ecl.md, "From the book"):

* A run is the record of the allowance of a closed date under one config and matrix (by
  content hash). Measuring that date with the same inputs again returns the stored run,
  figure for figure, and writes nothing; only the last closed date can be measured afresh.
* `post=True` moves account 1309 from the last posted allowance to this run's, as one
  balanced entry (Dr 6702 provision expense / Cr 1309 for a build, the reverse for a
  release) with reference `ecl:D`, dated D. A date is posted once: posting it again is a
  no-op if the figures are the same and a Conflict if they differ (post the new measure on
  a later date), and no date before the last posted one can be posted.
* The roll-forward runs from the latest earlier run (the posted one, if that date has one).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from lendstack.core.datafiles import load_toml
from lendstack.core.errors import Conflict, NotFound
from lendstack.core.money import from_fen
from lendstack.risk.ecl import EclResult, compute_ecl
from lendstack.risk.ecl_settings import EclConfig, parse_config
from lendstack.risk.pd_curves import TransitionMatrix
from lendstack.risk.pd_curves import load_matrix as read_matrix
from lendstack.risk.rollforward import RollForward, roll_forward
from lendstack.servicing.domain.ledger import Account, EventType, JournalEntry, Side, leg
from lendstack.storage.batches import execute_rows
from lendstack.storage.calendar import as_date
from lendstack.storage.repositories import SqlLedger, now
from lendstack.storage.risk_book import (
    BookInputs,
    DecisionPds,
    fetch_columns,
    load_book,
    require_closed,
    require_current,
)
from lendstack.storage.schema import ecl_run_loans, ecl_runs

_CHUNK = 20_000
_INSERT_LOANS = insert(ecl_run_loans)
WRITTEN_OFF_STATUSES = ("charged_off", "written_off")


# --- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EclInputs:
    """The config (and optional transition matrix) of a run, with the hashes that key it."""

    config: EclConfig
    config_sha256: str
    matrix: TransitionMatrix | None = None
    matrix_sha256: str = ""


def _sha256(data: str) -> str:
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def ecl_inputs(config_path: Path | None = None, matrix_path: Path | None = None) -> EclInputs:
    """Read and validate the config (default: the shipped one) and matrix files."""
    if config_path is None:
        source = "default.toml"
        config_text = (resources.files("lendstack.risk") / "ecl_config" / source).read_text("utf-8")
    else:
        source = str(config_path)
        try:
            config_text = Path(config_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise NotFound(f"cannot read ECL config {config_path}: {exc}", field="config") from exc
    config = parse_config(load_toml(config_text, source), source)
    if matrix_path is None:
        return EclInputs(config, _sha256(config_text))
    matrix = read_matrix(matrix_path)
    matrix_text = Path(matrix_path).read_text(encoding="utf-8")
    return EclInputs(config, _sha256(config_text), matrix, _sha256(matrix_text))


# --- stored runs -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredRun:
    id: int
    as_of: date
    config_id: str
    config_sha256: str
    matrix_sha256: str
    result_sha256: str
    total_fen: int
    summary: dict[str, Any]
    entry_id: int | None
    posted: bool

    @property
    def total(self) -> Decimal:
        return from_fen(self.total_fen)


def _stored(row: Any) -> StoredRun:
    as_of = as_date(row.as_of)
    assert as_of is not None
    return StoredRun(
        id=int(row.id), as_of=as_of, config_id=row.config_id, config_sha256=row.config_sha256,
        matrix_sha256=row.matrix_sha256, result_sha256=row.result_sha256,
        total_fen=int(row.total_fen), summary=json.loads(row.summary_json),
        entry_id=None if row.entry_id is None else int(row.entry_id),
        posted=row.posted_at is not None,
    )  # fmt: skip


def find_run(conn: Connection, day: date, inputs: EclInputs) -> StoredRun | None:
    row = conn.execute(
        select(ecl_runs).where(
            ecl_runs.c.as_of == day,
            ecl_runs.c.config_sha256 == inputs.config_sha256,
            ecl_runs.c.matrix_sha256 == inputs.matrix_sha256,
        )
    ).first()
    return None if row is None else _stored(row)


def posted_run(conn: Connection, day: date) -> StoredRun | None:
    """The run whose allowance the ledger carries for `day`, if that date was posted."""
    row = conn.execute(
        select(ecl_runs).where(ecl_runs.c.as_of == day, ecl_runs.c.posted_at.is_not(None))
    ).first()
    return None if row is None else _stored(row)


def last_posted_run(conn: Connection, before: date | None = None) -> StoredRun | None:
    """The latest posted run (strictly before `before`, if given): what 1309 holds."""
    query = select(ecl_runs).where(ecl_runs.c.posted_at.is_not(None))
    if before is not None:
        query = query.where(ecl_runs.c.as_of < before)
    row = conn.execute(query.order_by(ecl_runs.c.as_of.desc()).limit(1)).first()
    return None if row is None else _stored(row)


def released_by_sales(conn: Connection, run_id: int) -> int:
    """Allowance of run `run_id` already released by NPL sales (storage/npl_sale.py): 1309
    holds the run's total less this until the next posting."""
    released = conn.execute(
        text("SELECT SUM(allowance_released_fen) FROM npl_sales WHERE ecl_run_id = :r"),
        {"r": run_id},
    ).scalar()
    return int(released or 0)


def _previous_run(conn: Connection, day: date) -> StoredRun | None:
    """The opening run of the roll-forward: the latest earlier date, its posted run first."""
    unposted_last = text("CASE WHEN posted_at IS NULL THEN 1 ELSE 0 END")
    row = conn.execute(
        select(ecl_runs)
        .where(ecl_runs.c.as_of < day)
        .order_by(ecl_runs.c.as_of.desc(), unposted_last, ecl_runs.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _stored(row)


def result_sha256(result: EclResult) -> str:
    """A digest of the per-loan figures: equal digests, the same allowance loan by loan."""
    digest = hashlib.sha256()
    for arr in (result.loan_id, result.stage, result.ecl_fen):
        digest.update(np.ascontiguousarray(arr, dtype="<i8").tobytes())
    return digest.hexdigest()


def _summary(result: EclResult, inputs: BookInputs, run: EclInputs) -> dict[str, Any]:
    out = result.as_json()
    out["inputs"] = {
        "config_sha256": run.config_sha256,
        "matrix_sha256": run.matrix_sha256 or None,
        "pd_term_structure": "transition matrix" if run.matrix is not None else "model PD",
        "pd_origination_from_decisions": inputs.from_decisions,
        "pd_origination_from_product_defaults": inputs.loans - inputs.from_decisions,
    }
    return out


def _save(conn: Connection, result: EclResult, book: BookInputs, run: EclInputs) -> StoredRun:
    by_stage = result.by_stage()
    values = {
        "as_of": book.as_of, "config_id": run.config.id, "config_sha256": run.config_sha256,
        "matrix_sha256": run.matrix_sha256, "result_sha256": result_sha256(result),
        "loans": book.loans, "ead_fen": int(result.ead_fen.sum(dtype=np.int64)),
        "total_fen": result.total_fen,
        **{f"stage{int(s)}_fen": fen for s, (fen, _) in by_stage.items()},
        **{f"stage{int(s)}_loans": n for s, (_, n) in by_stage.items()},
        "summary_json": json.dumps(_summary(result, book, run), sort_keys=True),
        "created_at": now(),
    }  # fmt: skip
    run_id = conn.execute(insert(ecl_runs).returning(ecl_runs.c.id), values).scalar_one()
    _save_loans(conn, int(run_id), result)
    row = conn.execute(select(ecl_runs).where(ecl_runs.c.id == run_id)).one()
    return _stored(row)


_LOAN_COLUMNS = ("run_id", "loan_id", "stage", "causes", "ead_fen", "ecl_fen")


def _save_loans(conn: Connection, run_id: int, result: EclResult) -> None:
    """Every loan's row, as value tuples (`execute_rows`: on SQLite they are the driver's
    parameters as they are, no dict built and taken apart again per loan)."""
    columns = (result.loan_id, result.stage, result.causes, result.ead_fen, result.ecl_fen)
    for lo in range(0, result.loan_id.shape[0], _CHUNK):
        ids, stage, causes, ead, ecl = (c[lo : lo + _CHUNK].tolist() for c in columns)
        rows = list(zip(repeat(run_id), ids, stage, causes, ead, ecl))
        execute_rows(conn, _INSERT_LOANS, _LOAN_COLUMNS, rows)


@dataclass(frozen=True, slots=True)
class RunAllowance:
    """A stored run's loans, in the shape the roll-forward reads (`rollforward.Allowance`)."""

    loan_id: NDArray[np.int64]
    stage: NDArray[np.uint8]
    ecl_fen: NDArray[np.int64]
    as_of: date | None


def run_allowance(conn: Connection, run: StoredRun) -> RunAllowance:
    query = (
        select(ecl_run_loans.c.loan_id, ecl_run_loans.c.stage, ecl_run_loans.c.ecl_fen)
        .where(ecl_run_loans.c.run_id == run.id)
        .order_by(ecl_run_loans.c.loan_id)
    )
    ids, stage, fen = fetch_columns(conn, query, {}, (np.int64, np.uint8, np.int64))
    return RunAllowance(ids, stage, fen, run.as_of)


def _written_off(conn: Connection, opening: StoredRun) -> NDArray[np.int64]:
    """Loans of the opening run charged off (or written off) since: IFRS 7's write-offs."""
    statuses = ", ".join(f"'{s}'" for s in WRITTEN_OFF_STATUSES)
    rows = conn.execute(
        text(
            "SELECT r.loan_id FROM ecl_run_loans r JOIN loans l ON l.id = r.loan_id"
            f" WHERE r.run_id = :run AND l.status IN ({statuses})"
        ),
        {"run": opening.id},
    )
    return np.array([int(r[0]) for r in rows], dtype=np.int64)


def _roll_forward(conn: Connection, run: StoredRun) -> RollForward | None:
    opening = _previous_run(conn, run.as_of)
    if opening is None:
        return None
    closing = run_allowance(conn, run)
    before = run_allowance(conn, opening)
    gone = np.setdiff1d(before.loan_id, closing.loan_id, assume_unique=True)
    off = np.intersect1d(_written_off(conn, opening), gone, assume_unique=True)
    return roll_forward(before, closing, written_off=off)


# --- posting -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllowancePosting:
    """What `--post` did: the change moved to 1309 (signed: + build, - release)."""

    reference: str
    entry_id: int | None
    change_fen: int
    previous_fen: int
    previous_date: date | None
    already_posted: bool

    def as_json(self) -> dict[str, Any]:
        build = self.change_fen >= 0
        return {
            "reference": self.reference,
            "status": "already posted"
            if self.already_posted
            else ("posted" if self.entry_id is not None else "no change"),
            "entry_id": self.entry_id,
            "change": str(from_fen(self.change_fen)),
            "previous_total": str(from_fen(self.previous_fen)),
            "previous_date": self.previous_date.isoformat() if self.previous_date else None,
            "debit": (Account.PROVISION_EXPENSE if build else Account.ALLOWANCE).value,
            "credit": (Account.ALLOWANCE if build else Account.PROVISION_EXPENSE).value,
        }


def posting_reference(day: date) -> str:
    return f"ecl:{day.isoformat()}"


def allowance_entry(day: date, change_fen: int) -> JournalEntry | None:
    """Dr 6702 / Cr 1309 for a build, Dr 1309 / Cr 6702 for a release; None if no change."""
    amount = from_fen(change_fen)
    postings = (
        leg(Account.PROVISION_EXPENSE, Side.DEBIT, amount),
        leg(Account.ALLOWANCE, Side.CREDIT, amount),
    )
    kept = tuple(p for p in postings if p is not None)
    if not kept:
        return None
    return JournalEntry(EventType.ECL_ALLOWANCE, day, posting_reference(day), kept)


def _post(conn: Connection, run: StoredRun) -> AllowancePosting:
    day = run.as_of
    done = posted_run(conn, day)
    if done is not None:
        if done.id != run.id and done.result_sha256 != run.result_sha256:
            raise Conflict(
                f"the allowance for {day} was already posted from run {done.id} "
                f"({done.total}); this measure gives {run.total}. A posted date is not "
                "posted again: post the new measure on a later closed date",
                field="date",
            )
        return _already(conn, done)
    latest = last_posted_run(conn)
    if latest is not None and latest.as_of > day:
        raise Conflict(
            f"the allowance was already posted for {latest.as_of}, after {day}: "
            f"post on {latest.as_of} or a later closed date",
            field="date",
        )
    previous_fen = 0 if latest is None else latest.total_fen - released_by_sales(conn, latest.id)
    change = run.total_fen - previous_fen
    entry = allowance_entry(day, change)
    entry_id = None if entry is None else SqlLedger(conn).post(entry)
    conn.execute(
        update(ecl_runs).where(ecl_runs.c.id == run.id).values(posted_at=now(), entry_id=entry_id)
    )
    previous_date = None if latest is None else latest.as_of
    return AllowancePosting(
        posting_reference(day), entry_id, change, previous_fen, previous_date, False
    )


def _already(conn: Connection, done: StoredRun) -> AllowancePosting:
    before = last_posted_run(conn, before=done.as_of)
    previous_fen = 0 if before is None else before.total_fen
    return AllowancePosting(
        posting_reference(done.as_of),
        done.entry_id,
        done.total_fen - previous_fen,
        previous_fen,
        None if before is None else before.as_of,
        True,
    )


# --- the handler -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EclOutcome:
    run: StoredRun
    reused: bool
    """True when the date had been measured with these inputs before (nothing recomputed)."""
    posting: AllowancePosting | None
    roll_forward: RollForward | None

    def as_json(self) -> dict[str, Any]:
        """The run's figures (money as decimal strings), its posting and its roll-forward."""
        posted = self.run.posted or (self.posting is not None)
        return {
            **self.run.summary,
            "run": {"id": self.run.id, "reused": self.reused, "posted": posted},
            "posting": None if self.posting is None else self.posting.as_json(),
            "roll_forward": None if self.roll_forward is None else self.roll_forward.as_json(),
        }


def run_ecl(
    engine: Engine,
    day: date,
    inputs: EclInputs,
    *,
    post: bool = False,
    pds: DecisionPds | None = None,
    explain: bool = True,
) -> EclOutcome:
    """Measure (or recall) the allowance of closed date `day`; with `post`, post its change.
    `pds` keeps the loans' origination PDs between runs on the same database (`load_book`);
    `explain=False` leaves out the roll-forward from the previous run (reads both runs'
    loans, writes nothing), for a caller that uses only the run's figures."""
    try:
        with engine.begin() as conn:
            return _run(conn, day, inputs, post, pds, explain)
    except IntegrityError as exc:
        raise Conflict(
            f"another ECL run for {day} was stored or posted at the same time: run it again",
            field="date",
        ) from exc


def _run(
    conn: Connection,
    day: date,
    inputs: EclInputs,
    post: bool,
    pds: DecisionPds | None,
    explain: bool = True,
) -> EclOutcome:
    require_closed(conn, day)
    run = find_run(conn, day, inputs)
    reused = run is not None
    if run is None:
        require_current(conn, day)
        book = load_book(conn, day, inputs.config, inputs.matrix, pds=pds)
        result = compute_ecl(book.book, inputs.config, inputs.matrix, as_of=day)
        run = _save(conn, result, book, inputs)
    posting = _post(conn, run) if post else None
    if posting is not None and not posting.already_posted:
        run = _stored(conn.execute(select(ecl_runs).where(ecl_runs.c.id == run.id)).one())
    return EclOutcome(run, reused, posting, _roll_forward(conn, run) if explain else None)

"""Settlement statements and partner views read from the funder sub-ledgers, and their files.

A statement is only ever built for a **closed** business date: once a date is closed no flow
can be dated on or before it (payments, reversals and buybacks take the open date, and a plan
starts with its loan), so a closed date's statement never changes and re-running it gives the
same bytes. The day's flows are read in one set-based query grouped per (funder, loan, flow);
the pure `lendstack.funding.settlement` does the rest.

Files are written atomically: every statement is built before the first byte is written, and
each file goes to a temporary name in the target directory, is flushed to disk and renamed over
the final name, so a crash leaves either the old file, the new one, or a stray `.tmp`, never a
half-written statement.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from lendstack.core.errors import Conflict, NotFound, ValidationError
from lendstack.funding.settlement import FlowSum, Statement, build_statement, build_statements
from lendstack.funding.subledger import POSITION_SIGN, SHARE_SCALE, Flow
from lendstack.servicing.domain import DEFAULT_BUCKETS
from lendstack.storage.calendar import last_closed
from lendstack.storage.schema import funder_positions, funders, loans

SAFE_ID = re.compile(r"[^\W_](?:[^\W_]|-){0,63}")
"""Partner ids that can name a file: the partner parser's slugs (letters, digits, hyphens).
Checked again here, before anything is written, because an id becomes a path."""


def _case(signs: dict[Flow, int]) -> str:
    arms = " ".join(f"WHEN '{f.value}' THEN {s}" for f, s in sorted(signs.items()))
    return f"(CASE x.flow {arms} ELSE 0 END)"


_DAY_FLOWS = (
    "SELECT x.funder_id, x.loan_id, x.flow, SUM(x.amount_fen), COUNT(*)"
    " FROM funder_flows x JOIN funders f ON f.id = x.funder_id"
    " WHERE x.business_date = :day AND f.kind <> 'platform'{funder}"
    " GROUP BY x.funder_id, x.loan_id, x.flow ORDER BY x.funder_id, x.loan_id, x.flow"
)

# A funder's position at the end of `day`: today's positions less the position moves of the
# flows dated after it (a short index range on a recent date). One statement, so on PostgreSQL
# both sums see the same snapshot even while payments of the open date commit.
_CLOSING_POSITIONS = (
    "SELECT f.id,"
    " COALESCE((SELECT SUM(p.principal_fen) FROM funder_positions p WHERE p.funder_id = f.id), 0)"
    f" - COALESCE((SELECT SUM({_case(POSITION_SIGN)} * x.amount_fen) FROM funder_flows x"
    " WHERE x.funder_id = f.id AND x.business_date > :day), 0)"
    " FROM funders f WHERE f.kind <> 'platform'{funder} ORDER BY f.id"
)


class SqlSettlements:
    """Settlement statements of closed business dates, straight from `funder_flows`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def statements(self, day: date) -> tuple[Statement, ...]:
        """Every bank with flows on `day` or loans still open at its end; `Conflict` if open."""
        with self.engine.connect() as conn:
            ensure_closed(conn, day)
            sums = _day_flows(conn, day)
            positions = _closing_positions(conn, day)
        return build_statements(day, sums, positions)

    def statement(self, day: date, funder_id: str) -> Statement:
        """One funder's statement (empty if its day was); `Conflict` if `day` is not closed.

        An unknown funder, or the platform itself (it settles with no one), is `NotFound`.
        """
        with self.engine.connect() as conn:
            kind = funder_kind(conn, funder_id)
            if kind is None:
                raise NotFound(f"no partner {funder_id!r}", field="partner_id")
            if kind == "platform":
                raise NotFound(f"{funder_id!r} is the platform: it has no settlement with itself",
                               field="partner_id")  # fmt: skip
            ensure_closed(conn, day)
            sums = _day_flows(conn, day, funder_id)
            position = _closing_positions(conn, day, funder_id).get(funder_id, 0)
        return build_statement(day, funder_id, sums, position)


def ensure_closed(conn: Connection, day: date) -> None:
    """Only a closed date settles: the open date's flows can still change."""
    closed = last_closed(conn)
    if closed is None or day > closed:
        since = (
            "no business date is closed yet" if closed is None else f"the last close is {closed}"
        )
        raise Conflict(f"business date {day} is not closed ({since}); settle it after its close",
                       field="date")  # fmt: skip


def funder_kind(conn: Connection, funder_id: str) -> str | None:
    kind = conn.execute(select(funders.c.kind).where(funders.c.id == funder_id)).scalar()
    return None if kind is None else str(kind)


def _day_flows(conn: Connection, day: date, funder_id: str | None = None) -> list[FlowSum]:
    params: dict[str, object] = {"day": day}
    where = ""
    if funder_id is not None:
        where, params["funder"] = " AND x.funder_id = :funder", funder_id
    rows = conn.execute(text(_DAY_FLOWS.format(funder=where)), params)
    return [FlowSum(f, int(loan), Flow(flow), int(fen), int(n)) for f, loan, flow, fen, n in rows]


def _closing_positions(conn: Connection, day: date, funder_id: str | None = None) -> dict[str, int]:
    params: dict[str, object] = {"day": day}
    where = ""
    if funder_id is not None:
        where, params["funder"] = " AND f.id = :funder", funder_id
    rows = conn.execute(text(_CLOSING_POSITIONS.format(funder=where)), params)
    return {str(f): int(fen) for f, fen in rows}


# --- files ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrittenStatement:
    statement: Statement
    csv: Path
    json: Path
    sha256_file: Path
    csv_sha256: str
    """sha256 of the CSV file's bytes (what `sha256sum -c` checks)."""


def file_stem(statement: Statement) -> str:
    """`<funder id>_<date>`: the same for every run of the date."""
    if not SAFE_ID.fullmatch(statement.funder_id):
        raise ValidationError(f"partner id {statement.funder_id!r} cannot name a file",
                              field="funder_id")  # fmt: skip
    return f"{statement.funder_id}_{statement.business_date.isoformat()}"


def write_statements(statements: Iterable[Statement], out_dir: Path) -> list[WrittenStatement]:
    """Write each statement's CSV, its `.sha256` and its JSON, every file atomically."""
    planned = [(s, file_stem(s)) for s in statements]  # every name checked before any write
    if planned:
        out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for statement, stem in planned:
        csv_bytes = statement.csv_bytes()
        digest = hashlib.sha256(csv_bytes).hexdigest()
        csv_path, json_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.json"
        sha_path = out_dir / f"{stem}.csv.sha256"
        atomic_write(csv_path, csv_bytes)
        atomic_write(sha_path, f"{digest}  {csv_path.name}\n".encode())
        atomic_write(json_path, statement.json_bytes())
        written.append(WrittenStatement(statement, csv_path, json_path, sha_path, digest))
    return written


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename: readers see all of it or none.

    The temp file is opened with mode 0o666 so the umask decides the final permissions, as
    for any file the user writes (`mkstemp` would leave a statement readable by its owner only).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- partner views ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartnerLoan:
    loan_id: int
    share: str
    """Share of future income in force, e.g. "0.7000" (0 once a guarantee or buyback took it)."""
    principal_fen: int
    status: str
    dpd: int
    bucket: str


@dataclass(frozen=True, slots=True)
class PartnerLoanPage:
    loans: tuple[PartnerLoan, ...]
    next_after: int | None
    """The cursor for the next page (the last loan id shown), None on the last page."""


class SqlPartnerLoans:
    """The loans a funder co-funds (every loan it ever held a position in), by loan id."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def exists(self, funder_id: str) -> bool:
        with self.engine.connect() as conn:
            return funder_kind(conn, funder_id) is not None

    def page(self, funder_id: str, *, after: int = 0, limit: int = 100) -> PartnerLoanPage:
        """Up to `limit` loans with id > `after`; keyset pagination, so deep pages stay cheap."""
        query = (
            select(
                funder_positions.c.loan_id,
                funder_positions.c.share_units,
                funder_positions.c.principal_fen,
                loans.c.status,
                loans.c.dpd,
                loans.c.bucket,
            )
            .join(loans, loans.c.id == funder_positions.c.loan_id)
            .where(funder_positions.c.funder_id == funder_id, funder_positions.c.loan_id > after)
            .order_by(funder_positions.c.loan_id)
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        items = tuple(_partner_loan(r) for r in rows[:limit])
        more = len(rows) > limit
        return PartnerLoanPage(items, items[-1].loan_id if more and items else None)


def _partner_loan(row: Any) -> PartnerLoan:
    units = int(row.share_units)
    return PartnerLoan(
        int(row.loan_id),
        f"{units // SHARE_SCALE}.{units % SHARE_SCALE:04d}",
        int(row.principal_fen),
        str(row.status),
        int(row.dpd),
        DEFAULT_BUCKETS.label_of_index(min(int(row.bucket), DEFAULT_BUCKETS.last)),
    )


__all__ = [
    "PartnerLoan",
    "PartnerLoanPage",
    "SqlPartnerLoans",
    "SqlSettlements",
    "WrittenStatement",
    "atomic_write",
    "ensure_closed",
    "file_stem",
    "funder_kind",
    "write_statements",
]

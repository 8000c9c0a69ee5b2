"""Use-of-funds surveillance in the database: the transaction feed, flags, alerts, penalty.

`SqlUseOfFunds.ingest` stores a batch of transactions and flags the loans they convict, in
one database transaction: a row naming an unknown loan, or reusing a stored transaction id
with other content, fails the whole batch with the row and field named and nothing written.
Delivering the same transactions again (same ids, same content) stores nothing new, so a
retried feed file or API call is harmless. New flags then raise early-warning alerts through
`SqlAlerts` (idempotent by alert id; `scan` re-records them if that step was interrupted).

The flag is found again by the decision engine through `misuse_flags(borrower_key, as_of)`,
the port `underwriting.service.MisuseFlags`: the flag row keeps the borrower's pseudonym
(the decision log's `borrower_key`, via the loan's `loan_profiles.decision_id`).

`apply_penalty` is the servicing operation: it raises a flagged loan's penalty rate (the
`penalty_rate_e8` the close accrues with) to the misuse rate, never lowering it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from lendstack.core.errors import Conflict, NotFound
from lendstack.core.money import from_fen, to_fen
from lendstack.risk.surveillance import (
    Flag,
    MerchantCategory,
    MisusePenalty,
    SurveillancePack,
    Transaction,
    flag_alert,
    flags_for,
    misuse_penalty,
)
from lendstack.storage.alerts import Recorded, SqlAlerts
from lendstack.storage.calendar import as_date
from lendstack.storage.repositories import now
from lendstack.storage.schema import (
    decision_log,
    funds_misuse_flags,
    funds_transactions,
    loan_profiles,
    loans,
)

_CHUNK = 500
RATE_SCALE = Decimal(10**8)


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one ingest did: transactions stored, repeats skipped, loans newly flagged."""

    inserted: int
    duplicates: int
    flags: tuple[Flag, ...]
    alerts: Recorded

    def as_json(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "flagged": [f.as_json() for f in self.flags],
            "alerts": self.alerts.as_json(),
        }


def fingerprint(tx: Transaction) -> str:
    """sha256 of the canonical transaction: equal content, equal hash."""
    canonical = {
        "transaction_id": tx.transaction_id,
        "loan_id": tx.loan_id,
        "timestamp": tx.at.astimezone(UTC).isoformat(),
        "amount_fen": to_fen(tx.amount),
        "merchant_category": tx.category.value,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _aware(value: Any) -> datetime:
    """SQLite hands timestamps back naive (or as text); they were written in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Rows = Sequence[int | str] | None
"""Each transaction's place in its feed: a file row number or an API body path."""


def _label(rows: Rows, i: int, name: str) -> str:
    if rows is None:
        return name
    where = rows[i]
    return f"row {where}: {name}" if isinstance(where, int) else f"{where}.{name}"


class SqlUseOfFunds:
    """The feed, the flags and the misuse penalty over one database."""

    def __init__(self, engine: Engine, pack: SurveillancePack) -> None:
        self.engine = engine
        self.pack = pack

    # -- ingest and surveillance -------------------------------------------------------------

    def ingest(
        self, transactions: Sequence[Transaction], source: str, rows: Rows = None
    ) -> Ingested:
        """Store `transactions` (`rows`: their row numbers in the feed, for error messages)."""
        with self.engine.begin() as conn:
            fresh, duplicates = self._new_only(conn, transactions, rows)
            self._check_loans(conn, transactions, rows)
            stamp = now()
            if fresh:
                conn.execute(insert(funds_transactions), [_tx_row(t, source, stamp) for t in fresh])
            flags = self._flag(conn, {t.loan_id for t in transactions}, stamp)
        alerts = SqlAlerts(self.engine).record(flag_alert(f, self.pack) for f in flags)
        return Ingested(len(fresh), duplicates, flags, alerts)

    def scan(self) -> Ingested:
        """Re-run the pack over every stored transaction (after a pack change, or to re-record
        alerts): new flags are stored, every flag's alert is recorded (idempotently)."""
        with self.engine.begin() as conn:
            loan_ids = set(conn.execute(select(funds_transactions.c.loan_id).distinct()).scalars())
            self._flag(conn, loan_ids, now())
        flags = self.flags()
        alerts = SqlAlerts(self.engine).record(flag_alert(f, self.pack) for f in flags)
        return Ingested(0, 0, flags, alerts)

    def _new_only(
        self, conn: Connection, txs: Sequence[Transaction], rows: Rows
    ) -> tuple[list[Transaction], int]:
        """The transactions not stored yet; a reused id with other content is a Conflict."""
        seen: dict[str, str] = {}
        for i, tx in enumerate(txs):
            digest = fingerprint(tx)
            if seen.setdefault(tx.transaction_id, digest) != digest:
                raise Conflict(
                    f"transaction {tx.transaction_id} appears twice with different content",
                    field=_label(rows, i, "transaction_id"),
                )
        stored = self._stored_hashes(conn, list(seen))
        fresh: list[Transaction] = []
        for i, tx in enumerate(txs):
            before = stored.get(tx.transaction_id)
            if before is not None and before != seen[tx.transaction_id]:
                raise Conflict(
                    f"transaction {tx.transaction_id} is already stored with different content",
                    field=_label(rows, i, "transaction_id"),
                )
            if before is None:
                stored[tx.transaction_id] = seen[tx.transaction_id]
                fresh.append(tx)
        return fresh, len(txs) - len(fresh)

    def _stored_hashes(self, conn: Connection, ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        c = funds_transactions.c
        for i in range(0, len(ids), _CHUNK):
            query = select(c.transaction_id, c.request_sha256).where(
                c.transaction_id.in_(ids[i : i + _CHUNK])
            )
            out.update({r.transaction_id: r.request_sha256 for r in conn.execute(query)})
        return out

    def _check_loans(self, conn: Connection, txs: Sequence[Transaction], rows: Rows) -> None:
        known = set(_disbursed(conn, {t.loan_id for t in txs}))
        for i, tx in enumerate(txs):
            if tx.loan_id not in known:
                raise NotFound(f"no loan {tx.loan_id}", field=_label(rows, i, "loan_id"))

    def _flag(self, conn: Connection, loan_ids: set[int], stamp: datetime) -> tuple[Flag, ...]:
        """Flag the loans among `loan_ids` that the pack convicts and are not flagged yet."""
        already = _flagged(conn, loan_ids)
        todo = loan_ids - already
        if not todo:
            return ()
        found = flags_for(_transactions(conn, todo), _disbursed(conn, todo), self.pack)
        borrowers = _borrowers(conn, {f.loan_id for f in found})
        if found:  # one statement for the month's flags (a simulator's month-end has dozens)
            rows = [_flag_row(f, borrowers.get(f.loan_id), self.pack, stamp) for f in found]
            conn.execute(insert(funds_misuse_flags), rows)
        return found

    # -- reading -----------------------------------------------------------------------------

    def flags(self, loan_id: int | None = None) -> tuple[Flag, ...]:
        query = select(funds_misuse_flags).order_by(funds_misuse_flags.c.loan_id)
        if loan_id is not None:
            query = query.where(funds_misuse_flags.c.loan_id == loan_id)
        with self.engine.connect() as conn:
            return tuple(_flag_of(r) for r in conn.execute(query))

    def flag_rows(self) -> list[dict[str, Any]]:
        """Every flag with its penalty status, for listings (no borrower pseudonym)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(funds_misuse_flags).order_by(funds_misuse_flags.c.loan_id))
            return [
                _flag_of(r).as_json()
                | {
                    "pack": f"{r.pack_id}@{r.pack_version}",
                    "penalty_rate": r.penalty_rate,
                    "penalty_applied_at": (
                        None
                        if r.penalty_applied_at is None
                        else _aware(r.penalty_applied_at).isoformat()
                    ),
                }
                for r in rows
            ]

    def misuse_flags(self, borrower_key: str, as_of: date) -> tuple[str, ...]:
        """The port the decision engine reads: `loan-<id>` of the borrower's flags raised on
        or before `as_of` (a flag after the application date cannot have been known)."""
        c = funds_misuse_flags.c
        query = (
            select(c.loan_id)
            .where(c.borrower_key == borrower_key, c.flagged_on <= as_of)
            .order_by(c.loan_id)
        )
        with self.engine.connect() as conn:
            return tuple(f"loan-{i}" for i in conn.execute(query).scalars())

    def misuse_flags_many(
        self, borrower_keys: Iterable[str]
    ) -> dict[str, tuple[tuple[date, int], ...]]:
        """Every flag of these borrowers as (flagged on, loan id) in loan order, read in one
        query per 500 keys: batch deciding reads a chunk's borrowers once, and each row keeps
        the flags dated on or before its application (`misuse_flags` for one)."""
        c = funds_misuse_flags.c
        keys = sorted(set(borrower_keys))
        found: dict[str, list[tuple[date, int]]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                query = (
                    select(c.borrower_key, c.flagged_on, c.loan_id)
                    .where(c.borrower_key.in_(keys[start : start + 500]))
                    .order_by(c.loan_id)
                )
                for key, day, loan_id in conn.execute(query):
                    found.setdefault(key, []).append((day, int(loan_id)))
        return {k: tuple(v) for k, v in found.items()}

    # -- the misuse penalty ------------------------------------------------------------------

    def penalty(self, loan_id: int) -> MisusePenalty:
        """The misuse penalty rate for a flagged loan (NotFound if it is not flagged)."""
        with self.engine.connect() as conn:
            return self._penalty(conn, loan_id)

    def _penalty(self, conn: Connection, loan_id: int) -> MisusePenalty:
        if not _flagged(conn, {loan_id}):
            raise NotFound(f"loan {loan_id} has no use-of-funds flag", field="loan_id")
        row = conn.execute(
            select(loans.c.annual_rate, loans.c.product_id).where(loans.c.id == loan_id)
        ).one()
        markup = self.pack.markup_for(row.product_id)
        return misuse_penalty(Decimal(row.annual_rate), markup, self.pack.penalty_rate_cap)

    def apply_penalty(self, loan_id: int) -> tuple[MisusePenalty, bool]:
        """Raise the flagged loan's penalty rate to the misuse rate; (penalty, changed).

        Idempotent: a loan already at or above the rate is left alone. The overdue
        `penalty_multiplier` of the product is not touched; the close accrues penalty
        interest at `penalty_rate_e8`, which is what changes.
        """
        with self.engine.begin() as conn:
            penalty = self._penalty(conn, loan_id)
            target = int(penalty.applied_rate * RATE_SCALE)
            current = conn.execute(
                select(loans.c.penalty_rate_e8).where(loans.c.id == loan_id)
            ).scalar_one()
            changed = target > current
            if changed:
                conn.execute(
                    update(loans).where(loans.c.id == loan_id).values(penalty_rate_e8=target)
                )
                conn.execute(
                    update(funds_misuse_flags)
                    .where(funds_misuse_flags.c.loan_id == loan_id)
                    .values(penalty_rate=str(penalty.applied_rate), penalty_applied_at=now())
                )
        return penalty, changed


# --- rows ---------------------------------------------------------------------------------


def _tx_row(tx: Transaction, source: str, stamp: datetime) -> dict[str, Any]:
    return {
        "transaction_id": tx.transaction_id,
        "loan_id": tx.loan_id,
        "occurred_at": tx.at,
        "amount_fen": to_fen(tx.amount),
        "category": tx.category.value,
        "source": source,
        "request_sha256": fingerprint(tx),
        "received_at": stamp,
    }


def _flag_row(
    flag: Flag, borrower: str | None, pack: SurveillancePack, stamp: datetime
) -> dict[str, Any]:
    return {
        "loan_id": flag.loan_id,
        "borrower_key": borrower,
        "transaction_id": flag.transaction_id,
        "category": flag.category.value,
        "amount_fen": to_fen(flag.amount),
        "occurred_at": flag.at,
        "disbursement_date": flag.disbursed,
        "days_after": flag.days_after,
        "offending": flag.offending,
        "flagged_on": flag.at.date(),
        "pack_id": pack.id,
        "pack_version": pack.version,
        "created_at": stamp,
    }


def _flag_of(r: Any) -> Flag:
    return Flag(
        int(r.loan_id), r.transaction_id, MerchantCategory(r.category), from_fen(r.amount_fen),
        _aware(r.occurred_at), as_date(r.disbursement_date) or date.min, r.days_after, r.offending,
    )  # fmt: skip


def _disbursed(conn: Connection, loan_ids: Iterable[int]) -> dict[int, date]:
    ids = sorted(loan_ids)
    out: dict[int, date] = {}
    for i in range(0, len(ids), _CHUNK):
        query = select(loans.c.id, loans.c.disbursement_date).where(
            loans.c.id.in_(ids[i : i + _CHUNK])
        )
        out.update(
            {int(r.id): as_date(r.disbursement_date) or date.min for r in conn.execute(query)}
        )
    return out


def _flagged(conn: Connection, loan_ids: set[int]) -> set[int]:
    ids = sorted(loan_ids)
    out: set[int] = set()
    c = funds_misuse_flags.c
    for i in range(0, len(ids), _CHUNK):
        out.update(
            conn.execute(select(c.loan_id).where(c.loan_id.in_(ids[i : i + _CHUNK]))).scalars()
        )
    return out


def _transactions(conn: Connection, loan_ids: set[int]) -> list[Transaction]:
    ids = sorted(loan_ids)
    c = funds_transactions.c
    out: list[Transaction] = []
    for i in range(0, len(ids), _CHUNK):
        query = select(funds_transactions).where(c.loan_id.in_(ids[i : i + _CHUNK]))
        out.extend(
            Transaction(
                r.transaction_id,
                int(r.loan_id),
                _aware(r.occurred_at),
                from_fen(r.amount_fen),
                MerchantCategory(r.category),
            )
            for r in conn.execute(query)
        )
    return out


def _borrowers(conn: Connection, loan_ids: set[int]) -> Mapping[int, str]:
    """loan id -> the borrower pseudonym of the decision that booked it (if it had one)."""
    if not loan_ids:
        return {}
    query = (
        select(loan_profiles.c.loan_id, decision_log.c.borrower_key)
        .join(decision_log, decision_log.c.decision_id == loan_profiles.c.decision_id)
        .where(loan_profiles.c.loan_id.in_(sorted(loan_ids)), decision_log.c.kind == "decision")
    )
    return {int(r.loan_id): r.borrower_key for r in conn.execute(query)}


__all__ = ["Ingested", "SqlUseOfFunds", "fingerprint"]

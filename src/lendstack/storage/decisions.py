"""The decision log in SQL: append under a lock, read by decision, borrower and date.

Appends are serialised so the chain never forks: PostgreSQL takes a transaction-scoped
advisory lock, SQLite starts the transaction with BEGIN IMMEDIATE (the write lock up front;
a deferred BEGIN would let two writers read the same head, and the loser could only fail).
The row, the head anchor and anything the caller adds through `extra` commit together or not
at all. The repository never reads a clock: callers pass timezone-aware UTC times.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from lendstack.core.errors import Conflict, NotFound
from lendstack.storage import decision_queries as Q
from lendstack.storage.batches import execute_many
from lendstack.storage.decision_rows import (
    COLUMNS_KEY,
    PreparedEntry,
    advance_head,
    as_date,
    as_utc,
    column_problem,
    entry_of,
    hashed_columns,
    is_idempotency_clash,
    prepare_entry,
    read_head,
    serialised,
    snapshot,
    utc,
)
from lendstack.storage.schema import (
    decision_log,
    rejected_inputs,
    review_queue,
    rule_pack_texts,
)
from lendstack.underwriting.audit import (
    GENESIS_HASH,
    ChainProblem,
    ChainReport,
    HeadAnchor,
    LogEntry,
    canonical_json,
    seal,
    verify_chain,
)

_BATCH = 5_000
_INSERT_LOG = insert(decision_log)
_IN_LIMIT = 500
"""Keys per IN (...) list: well under SQLite's bound-parameter limit."""


class SqlDecisionLog:
    """The hash-chained decision log, the review queue and the rejected-input counters."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._hot = Q.HotStatements.compile(engine)

    # --- appending ---------------------------------------------------------------------

    def append(
        self,
        kind: str,
        decision_id: str,
        channel: str,
        application_date: date,
        outcome: str,
        borrower_key: str,
        offer_amount_fen: int | None,
        idempotency_key: str | None,
        request_sha256: str | None,
        record: dict[str, Any],
        recorded_at: datetime,
        extra: Callable[[Connection], None] | None = None,
    ) -> LogEntry:
        """Chain one record onto the head, with `extra`'s rows, in one transaction.

        The row's query columns are copied into the hashed record under `_log`, so editing
        an outcome or an offer amount in SQL is caught by verify like any other edit. A reused
        (channel, idempotency key) is a Conflict and nothing is written.
        """
        prepared = prepare_entry(
            kind,
            decision_id,
            channel,
            application_date,
            outcome,
            borrower_key,
            offer_amount_fen,
            idempotency_key,
            request_sha256,
            record,
            recorded_at,
        )
        try:
            with serialised(self.engine) as conn:
                return self._append_locked(conn, prepared.row, prepared.record_json, extra)
        except IntegrityError as exc:
            if is_idempotency_clash(exc):
                raise self._clash(channel, idempotency_key) from exc
            raise

    def append_many(self, entries: Sequence[PreparedEntry]) -> list[LogEntry]:
        """Chain `entries` onto the head in order, in ONE transaction: all or none.

        The chain is exactly what `append` would build one by one (same lock, same `_log`
        columns, same head anchor), but the rows go in with one executemany, so a chunk of
        thousands costs one commit. A reused idempotency key is a Conflict; nothing is written.
        """
        if not entries:
            return []
        try:
            with serialised(self.engine) as conn:
                return self._append_many_locked(conn, entries)
        except IntegrityError as exc:
            if is_idempotency_clash(exc):
                raise Conflict(
                    "an idempotency key in the batch was already used", field="Idempotency-Key"
                ) from exc
            raise

    def _append_many_locked(
        self, conn: Connection, entries: Sequence[PreparedEntry]
    ) -> list[LogEntry]:
        for prepared in entries:
            key = prepared.row["idempotency_key"]
            channel = prepared.row["channel"]
            if key is not None and conn.execute(Q.BY_KEY, {"channel": channel, "key": key}).first():
                raise self._clash(channel, key)
        before = read_head(conn)
        seq, prev = (0, GENESIS_HASH) if before is None else (before.seq, before.hash)
        sealed: list[LogEntry] = []
        values: list[dict[str, Any]] = []
        for prepared in entries:
            seq += 1
            entry = seal(
                seq, prepared.row["kind"], prepared.row["decision_id"], prepared.record_json, prev
            )
            values.append(
                {**prepared.row, "seq": seq, "record_json": entry.record_json,
                 "prev_hash": prev, "hash": entry.hash}
            )  # fmt: skip
            sealed.append(entry)
            prev = entry.hash
        execute_many(conn, _INSERT_LOG, values)  # the driver's executemany on SQLite
        advance_head(conn, before, sealed[-1])
        reviews = [_review_values(p) for p in entries if p.review is not None]
        if reviews:
            conn.execute(insert(review_queue), reviews)
        return sealed

    @staticmethod
    def _clash(channel: str, key: str | None) -> Conflict:
        return Conflict(
            f"idempotency key {key!r} was already used on channel {channel!r}",
            field="Idempotency-Key",
        )

    def _append_locked(
        self,
        conn: Connection,
        row: dict[str, Any],
        record_json: str,
        extra: Callable[[Connection], None] | None,
    ) -> LogEntry:
        # A reused idempotency key is caught by the UNIQUE (channel, key) constraint; `append`
        # turns that IntegrityError into a Conflict after the rollback. No pre-check query.
        hot = self._hot
        found = hot.head.run(conn, {}).first()
        seq, prev = (0, GENESIS_HASH) if found is None else (int(found[0]), found[1])
        entry = seal(seq + 1, row["kind"], row["decision_id"], record_json, prev)
        values = {**row, "seq": entry.seq, "record_json": record_json}
        hot.insert_row.run(conn, {**values, "prev_hash": prev, "hash": entry.hash})
        if found is None:
            hot.insert_head.run(conn, {"id": 1, "seq": entry.seq, "hash": entry.hash})
        else:
            hot.update_head.run(conn, {"new_seq": entry.seq, "new_hash": entry.hash})
        if extra is not None:
            extra(conn)
        return entry

    # --- reading the chain -------------------------------------------------------------

    def get(self, decision_id: str) -> LogEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(Q.BY_DECISION, {"did": decision_id}).first()
        return None if row is None else entry_of(row)

    def history(self, decision_id: str) -> tuple[LogEntry, ...]:
        """The decision and any review entries after it, in chain order."""
        with self.engine.connect() as conn:
            return tuple(entry_of(r) for r in conn.execute(Q.HISTORY, {"did": decision_id}))

    def by_idempotency(self, channel: str, key: str) -> LogEntry | None:
        """The entry recorded under this key; a cheap existence probe first (the usual miss)."""
        values = {"channel": channel, "key": key}
        with self.engine.connect() as conn:
            if self._hot.by_key.run(conn, values).first() is None:
                return None
            row = conn.execute(Q.BY_KEY, values).first()
        return None if row is None else entry_of(row)

    def request_sha256(self, channel: str, key: str) -> str | None:
        """The hash of the request first sent with this key: tells a retry from a reuse."""
        query = select(decision_log.c.request_sha256).where(
            decision_log.c.channel == channel, decision_log.c.idempotency_key == key
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def recent_for_borrower(
        self, borrower_key: str, since: date, until: date
    ) -> tuple[LogEntry, ...]:
        params = {"bk": borrower_key, "since": since, "until": until}
        with self.engine.connect() as conn:
            return tuple(entry_of(r) for r in conn.execute(Q.FOR_BORROWER, params))

    def between(self, d1: date, d2: date) -> Iterator[LogEntry]:
        """Decisions with d1 <= application_date <= d2, in seq order, streamed in batches."""
        query = (
            select(*Q.ENTRY_COLUMNS)
            .where(
                decision_log.c.application_date >= d1,
                decision_log.c.application_date <= d2,
                decision_log.c.kind == "decision",
            )
            .order_by(decision_log.c.seq)
        )
        yield from self._stream(query)

    def entries(self) -> Iterator[LogEntry]:
        """Every entry in seq order, streamed: memory stays flat for millions of rows."""
        yield from self._stream(select(*Q.ENTRY_COLUMNS).order_by(decision_log.c.seq))

    def _stream(self, query: Any) -> Iterator[LogEntry]:
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=_BATCH).execute(query)
            for row in result:
                yield entry_of(row)

    def head(self) -> tuple[int, str] | None:
        with self.engine.connect() as conn:
            anchor = read_head(conn)
        return None if anchor is None else (anchor.seq, anchor.hash)

    def verify(self, expect_head: str | None = None) -> ChainReport:
        """Verify the chain, its anchor and its query columns in one consistent snapshot.

        A missing anchor row while entries exist is itself a problem: it is written with the
        first append and never deleted.
        """
        with snapshot(self.engine) as conn:
            head = read_head(conn) or HeadAnchor(0, GENESIS_HASH)
            result = conn.execution_options(yield_per=_BATCH).execute(
                select(decision_log).order_by(decision_log.c.seq)
            )
            column_problems: list[ChainProblem] = []

            def rows() -> Iterator[LogEntry]:
                for row in result:
                    problem = column_problem(row)
                    if problem is not None:
                        column_problems.append(problem)
                    yield entry_of(row)

            report = verify_chain(rows(), head, expect_head=expect_head)
        if not column_problems:
            return report
        problems = tuple(sorted((*report.problems, *column_problems), key=lambda p: p.seq))
        return ChainReport(False, report.checked, problems, report.last)

    def borrower_history(
        self, borrower_key: str, since: date, until: date
    ) -> tuple[int, str | None]:
        """(`exposure`, the first decision id inside [since, until]) in one round trip."""
        values = {"bk": borrower_key, "since": since, "until": until}
        with self.engine.connect() as conn:
            exposure, first = self._hot.history.run(conn, values).one()
        return int(exposure), first

    def borrower_histories(
        self, borrower_keys: Iterable[str]
    ) -> dict[str, tuple[int, tuple[tuple[date, str], ...]]]:
        """What `borrower_history` reads, for many borrowers in two queries per 500 keys.

        Per borrower with an entry: (`exposure`, exactly as `borrower_history` sums it; the
        borrower's decisions as (application date, id) in seq order). The first of those
        inside [since, until] is `borrower_history`'s duplicate, for any window: batch
        deciding reads a chunk's known borrowers once instead of one query per row.
        """
        keys = sorted(set(borrower_keys))
        exposure: dict[str, int] = {}
        decisions: dict[str, list[tuple[date, str]]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), _IN_LIMIT):
                part = keys[start : start + _IN_LIMIT]
                for key, fen in conn.execute(_exposures(part)):
                    exposure[key] = int(fen)
                for key, day, decision_id in conn.execute(_decisions_of(part)):
                    decisions.setdefault(key, []).append((as_date(day), decision_id))
        return {
            k: (exposure.get(k, 0), tuple(decisions.get(k, ())))
            for k in keys
            if k in exposure or k in decisions
        }

    def exposure(self, borrower_key: str) -> int:
        """Fen offered to a borrower: the latest entry of each decision, if it offers money.

        A decision superseded by a later `review` entry counts with the review's outcome and
        amount instead. This is a plain sum of offers: it does not net repayments, expired
        or declined offers, so it over-states exposure, the safe side for an amount cap.
        """
        with self.engine.connect() as conn:
            return int(conn.execute(Q.EXPOSURE, {"bk": borrower_key}).scalar_one())

    # --- rule pack texts ---------------------------------------------------------------

    def store_pack_text(self, sha256: str, pack_id: str, version: str, text: str) -> None:
        """Keep the exact pack text a decision used; storing it twice is a no-op."""
        values = {"sha256": sha256, "pack_id": pack_id, "version": version, "text": text}
        try:
            with self.engine.begin() as conn:
                if self._pack_text(conn, sha256) is None:
                    conn.execute(insert(rule_pack_texts), values)
        except IntegrityError:
            if self.pack_text(sha256) is None:
                raise  # not the race this handles

    @staticmethod
    def _pack_text(conn: Connection, sha256: str) -> str | None:
        query = select(rule_pack_texts.c.text).where(rule_pack_texts.c.sha256 == sha256)
        return conn.execute(query).scalar()

    def pack_text(self, sha256: str) -> str | None:
        with self.engine.connect() as conn:
            return self._pack_text(conn, sha256)

    # --- review queue ------------------------------------------------------------------

    @staticmethod
    def open_review(
        conn: Connection, decision_id: str, channel: str, reasons_json: str, opened_at: datetime
    ) -> None:
        """Queue a decision for a person; meant for `append(..., extra=...)`."""
        conn.execute(
            insert(review_queue), _review_row(decision_id, channel, reasons_json, opened_at)
        )

    def known_borrowers(self, borrower_keys: Iterable[str]) -> set[str]:
        """Which of these borrowers already have an entry: the rest have no history at all.

        Batch deciding asks this once per chunk instead of two history queries per row.
        """
        keys = sorted(set(borrower_keys))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(keys), _IN_LIMIT):
                part = keys[start : start + _IN_LIMIT]
                query = (
                    select(decision_log.c.borrower_key)
                    .where(decision_log.c.borrower_key.in_(part))
                    .distinct()
                )
                found.update(conn.execute(query).scalars())
        return found

    def reviews(self, status: str | None = None) -> list[dict[str, Any]]:
        query = select(review_queue).order_by(review_queue.c.opened_at, review_queue.c.decision_id)
        if status is not None:
            query = query.where(review_queue.c.status == status)
        with self.engine.connect() as conn:
            return [_review_out(dict(r._mapping)) for r in conn.execute(query)]

    def resolve_review(
        self,
        decision_id: str,
        resolution: str,
        by: str,
        note: str | None,
        at: datetime,
        record: dict[str, Any],
    ) -> LogEntry:
        """Close a review and chain a `review` entry for it, both or neither."""
        at = utc(at, "at")
        with serialised(self.engine) as conn:
            queued = conn.execute(
                select(review_queue).where(review_queue.c.decision_id == decision_id)
            ).first()
            if queued is None:
                raise NotFound(f"no review for decision {decision_id}", field="decision_id")
            if queued.status != "open":
                raise Conflict(f"review of {decision_id} is already resolved", field="decision_id")
            conn.execute(
                update(review_queue)
                .where(review_queue.c.decision_id == decision_id)
                .values(
                    status="resolved",
                    resolved_at=at,
                    resolved_by=by,
                    resolution=resolution,
                    note=note,
                )
            )
            return self._append_review(conn, queued, resolution, at, record)

    def _append_review(
        self,
        conn: Connection,
        queued: Row[Any],
        resolution: str,
        at: datetime,
        record: dict[str, Any],
    ) -> LogEntry:
        decision = conn.execute(
            select(decision_log).where(
                decision_log.c.decision_id == queued.decision_id, decision_log.c.kind == "decision"
            )
        ).first()
        if decision is None:
            raise NotFound(f"no decision {queued.decision_id} in the log", field="decision_id")
        row = {
            "kind": "review",
            "decision_id": queued.decision_id,
            "channel": queued.channel,
            "application_date": decision.application_date,
            "outcome": resolution,
            "borrower_key": decision.borrower_key,
            "offer_amount_fen": record.get("offer_amount_fen", decision.offer_amount_fen),
            "idempotency_key": None,
            "request_sha256": None,
            "recorded_at": at,
        }
        record_json = canonical_json({**record, COLUMNS_KEY: hashed_columns(row)})
        return self._append_locked(conn, row, record_json, None)

    # --- rejected inputs ---------------------------------------------------------------

    def count_rejected(
        self, source: str, channel: str | None, fields: list[str], at: datetime
    ) -> None:
        """Count an invalid input by the fields that were wrong; the payload is never kept."""
        values = {
            "source": source,
            "channel": channel,
            "fields": json.dumps(sorted(set(fields))),
            "recorded_at": utc(at, "at"),
        }
        with self.engine.begin() as conn:
            conn.execute(insert(rejected_inputs), values)

    def rejected_counts(self) -> dict[str, Any]:
        """Totals by source, by channel and by field."""
        query = select(
            rejected_inputs.c.source, rejected_inputs.c.channel, rejected_inputs.c.fields
        )
        by_source: dict[str, int] = {}
        by_channel: dict[str, int] = {}
        by_field: dict[str, int] = {}
        total = 0
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                total += 1
                by_source[row.source] = by_source.get(row.source, 0) + 1
                channel = row.channel or ""
                by_channel[channel] = by_channel.get(channel, 0) + 1
                for name in json.loads(row.fields):
                    by_field[name] = by_field.get(name, 0) + 1
        return {
            "total": total,
            "by_source": by_source,
            "by_channel": by_channel,
            "by_field": by_field,
        }


def _exposures(keys: list[str]) -> Select[tuple[str, int]]:
    """`Q.BORROWER_HISTORY`'s exposure for each of `keys` that has any (one row per key)."""
    return (
        select(
            decision_log.c.borrower_key,
            func.coalesce(func.sum(decision_log.c.offer_amount_fen), 0),
        )
        .where(
            decision_log.c.borrower_key.in_(keys),
            or_(*(decision_log.c.outcome == o for o in Q.EXPOSURE_OUTCOMES)),
            ~exists().where(
                Q.LATER.c.decision_id == decision_log.c.decision_id,
                Q.LATER.c.seq > decision_log.c.seq,
            ),
        )
        .group_by(decision_log.c.borrower_key)
    )


def _decisions_of(keys: list[str]) -> Select[tuple[str, Any, str]]:
    """Every decision of `keys` in seq order: `Q.BORROWER_HISTORY`'s candidates for the first
    decision inside a window, whatever the window."""
    return (
        select(
            decision_log.c.borrower_key,
            decision_log.c.application_date,
            decision_log.c.decision_id,
        )
        .where(decision_log.c.borrower_key.in_(keys), decision_log.c.kind == "decision")
        .order_by(decision_log.c.seq)
    )


def _review_row(
    decision_id: str, channel: str, reasons_json: str, opened_at: datetime
) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "channel": channel,
        "status": "open",
        "reasons": reasons_json,
        "opened_at": utc(opened_at, "opened_at"),
    }


def _review_out(row: dict[str, Any]) -> dict[str, Any]:
    """Times as UTC instants on every backend (SQLite hands back naive ones)."""
    for name in ("opened_at", "resolved_at"):
        if row[name] is not None:
            row[name] = as_utc(row[name])
    return row


def _review_values(prepared: PreparedEntry) -> dict[str, Any]:
    assert prepared.review is not None
    reasons, opened_at = prepared.review
    return _review_row(prepared.row["decision_id"], prepared.row["channel"], reasons, opened_at)


__all__ = [
    "COLUMNS_KEY",
    "PreparedEntry",
    "SqlDecisionLog",
    "prepare_entry",
]

"""The underwriting service: decide an application, record it, and read it back.

This is the edge around the pure engine: it looks up the borrower's history in the decision
log, seals PII, pins the rule pack text, appends the hash-chained record (and a review-queue
row for REFERs) in one transaction, and honours idempotency keys.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from lendstack import __version__
from lendstack.core.errors import Conflict, NotFound
from lendstack.core.money import from_fen, to_fen
from lendstack.underwriting.application import Application
from lendstack.underwriting.audit import LogEntry, canonical_json
from lendstack.underwriting.decision import Decision, Outcome
from lendstack.underwriting.engine import BorrowerHistory, Engine
from lendstack.underwriting.pii import PiiVault
from lendstack.underwriting.policy import policy_facts


class DecisionLog(Protocol):
    """What the service needs from storage (implemented by storage.decisions)."""

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
        extra: Callable[[Any], None] | None = None,
    ) -> LogEntry: ...
    def get(self, decision_id: str) -> LogEntry | None: ...
    def by_idempotency(self, channel: str, key: str) -> LogEntry | None: ...
    def recent_for_borrower(
        self, borrower_key: str, since: date, until: date
    ) -> tuple[LogEntry, ...]: ...
    def exposure(self, borrower_key: str) -> int: ...
    def store_pack_text(self, sha256: str, pack_id: str, version: str, text: str) -> None: ...
    def open_review(
        self, conn: Any, decision_id: str, channel: str, reasons: str, opened_at: datetime
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Recorded:
    """A decision as stored: its id, the full record and whether this call replayed it."""

    decision_id: str
    record: Mapping[str, Any]
    replayed: bool = False

    @property
    def outcome(self) -> str:
        return str(self.record["decision"]["outcome"])


def request_fingerprint(app: Application) -> str:
    return hashlib.sha256(canonical_json(app.normalised()).encode()).hexdigest()


@dataclass
class Underwriting:
    engine: Engine
    model_sha256: str
    log: DecisionLog
    vault: PiiVault
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _packs_stored: bool = False

    def decide(self, app: Application, idempotency_key: str | None = None) -> Recorded:
        fingerprint = request_fingerprint(app)
        if idempotency_key is not None:
            earlier = self._replay_key(app.channel, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier
        started = time.perf_counter_ns()
        borrower = self.vault.borrower_key(app.applicant.resident_id)
        history = self._history(app, borrower)
        decision = self.engine.decide(app, history)
        decision_id = new_decision_id()
        record = self._record(decision_id, app, history, decision, started)
        try:
            self._append(decision_id, app, borrower, decision, record, idempotency_key, fingerprint)
        except Conflict:
            # A concurrent request with the same key won the race: answer with its decision.
            winner = (
                None
                if idempotency_key is None
                else self._replay_key(app.channel, idempotency_key, fingerprint)
            )
            if winner is None:
                raise
            return winner
        return Recorded(decision_id, record)

    def get(self, decision_id: str, channel: str | None = None) -> Recorded:
        """A stored decision; with `channel`, only that channel's (others are NotFound)."""
        entry = self.log.get(decision_id)
        if entry is None:
            raise NotFound(f"no decision {decision_id}", field="decision_id")
        record = _load(entry)
        if channel is not None and record["application"]["channel"] != channel:
            raise NotFound(f"no decision {decision_id}", field="decision_id")
        return Recorded(decision_id, record)

    # -- internals --------------------------------------------------------------------------

    def _replay_key(self, channel: str, key: str, fingerprint: str) -> Recorded | None:
        entry = self.log.by_idempotency(channel, key)
        if entry is None:
            return None
        record = _load(entry)
        if record["request_sha256"] != fingerprint:
            raise Conflict(
                "this Idempotency-Key was used with a different application",
                field="Idempotency-Key",
            )
        return Recorded(entry.decision_id, record, replayed=True)

    def _history(self, app: Application, borrower: str) -> BorrowerHistory:
        exposure = from_fen(self.log.exposure(borrower))
        window = self.engine.policy.duplicate_days
        duplicate_of = None
        if window:
            since = app.application_date - timedelta(days=window)
            earlier = self.log.recent_for_borrower(borrower, since, app.application_date)
            duplicate_of = earlier[0].decision_id if earlier else None
        return BorrowerHistory(exposure, duplicate_of)

    def _record(
        self,
        decision_id: str,
        app: Application,
        history: BorrowerHistory,
        decision: Decision,
        started_ns: int,
    ) -> dict[str, Any]:
        pack = self.engine.pack
        elapsed_us = (time.perf_counter_ns() - started_ns) // 1000
        return {
            "decision_id": decision_id,
            "application": self.vault.protect(app.normalised(), decision_id),
            "history": {
                "existing_balance": str(history.existing_balance),
                "duplicate_of": history.duplicate_of,
            },
            "rule_pack": {"id": pack.id, "version": pack.version, "sha256": pack.sha256},
            "model": {"sha256": self.model_sha256},
            "engine_version": __version__,
            "policy": policy_facts(self.engine.policy),
            "decision": decision.as_json(),
            "request_sha256": request_fingerprint(app),
            "decided_at": self.clock().isoformat(),
            "engine_us": elapsed_us,
        }

    def _append(
        self,
        decision_id: str,
        app: Application,
        borrower: str,
        decision: Decision,
        record: dict[str, Any],
        idempotency_key: str | None,
        fingerprint: str,
    ) -> None:
        self._store_pack()
        offer = decision.offer
        approved = decision.outcome in (Outcome.APPROVE, Outcome.COUNTER_OFFER)
        extra = None
        if decision.outcome is Outcome.REFER:
            reasons = canonical_json([r.as_json() for r in decision.reasons])
            at = self.clock()

            def extra(conn: Any) -> None:
                self.log.open_review(conn, decision_id, app.channel, reasons, at)

        self.log.append(
            kind="decision",
            decision_id=decision_id,
            channel=app.channel,
            application_date=app.application_date,
            outcome=decision.outcome.value,
            borrower_key=borrower,
            offer_amount_fen=to_fen(offer.amount) if offer is not None and approved else None,
            idempotency_key=idempotency_key,
            request_sha256=fingerprint,
            record=record,
            recorded_at=self.clock(),
            extra=extra,
        )

    def _store_pack(self) -> None:
        if not self._packs_stored:
            pack = self.engine.pack
            self.log.store_pack_text(pack.sha256, pack.id, pack.version, pack.text)
            self._packs_stored = True


def new_decision_id() -> str:
    return "dcs_" + uuid.uuid4().hex


def _load(entry: LogEntry) -> dict[str, Any]:
    return dict(json.loads(entry.record_json))


def offer_amount(record: Mapping[str, Any]) -> Decimal | None:
    offer = record["decision"]["offer"]
    return None if offer is None else Decimal(offer["amount"])

"""The underwriting service: decide an application, record it, and read it back.

This is the edge around the pure engine: it looks up the borrower's history in the decision
log, asks the funding desk (when co-lending partners are configured) for a plan for each
granted offer, seals PII, pins the rule pack text, appends the hash-chained record (and a
review-queue row for REFERs) in one transaction, and honours idempotency keys.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from lendstack import __version__
from lendstack.core.errors import Conflict, NotFound
from lendstack.core.money import from_fen, to_fen
from lendstack.funding import FundingPlan, LoanRequest
from lendstack.underwriting import guarantee
from lendstack.underwriting.application import Application
from lendstack.underwriting.audit import LogEntry, canonical_json
from lendstack.underwriting.decision import GRANTED, Decision, Offer, Outcome, Score
from lendstack.underwriting.engine import BorrowerHistory, Engine
from lendstack.underwriting.funding_desk import funding_request
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
    def borrower_history(
        self, borrower_key: str, since: date, until: date
    ) -> tuple[int, str | None]: ...
    def store_pack_text(self, sha256: str, pack_id: str, version: str, text: str) -> None: ...
    def known_borrowers(self, borrower_keys: Iterable[str]) -> set[str]: ...
    def borrower_histories(
        self, borrower_keys: Iterable[str]
    ) -> dict[str, tuple[int, tuple[tuple[date, str], ...]]]: ...
    def append_many(self, entries: Sequence[Any]) -> Any: ...
    def count_rejected(
        self, source: str, channel: str | None, fields: list[str], at: datetime
    ) -> None: ...
    def open_review(
        self, conn: Any, decision_id: str, channel: str, reasons: str, opened_at: datetime
    ) -> None: ...


class MisuseFlags(Protocol):
    """Use-of-funds flags by borrower (implemented by storage.use_of_funds.SqlUseOfFunds)."""

    def misuse_flags(self, borrower_key: str, as_of: date) -> tuple[str, ...]: ...
    def misuse_flags_many(
        self, borrower_keys: Iterable[str]
    ) -> dict[str, tuple[tuple[date, int], ...]]: ...


class FundingSource(Protocol):
    """What the service needs from the funding desk (`funding_desk.FundingDesk`)."""

    def plan(self, request: LoanRequest) -> FundingPlan: ...
    def release(self, loan_id: str) -> None: ...
    def prefetch(self, days: Iterable[date]) -> None: ...


@dataclass(frozen=True, slots=True)
class Recorded:
    """A decision as stored: its id, the full record and whether this call replayed it."""

    decision_id: str
    record: Mapping[str, Any]
    replayed: bool = False

    @property
    def outcome(self) -> str:
        return str(self.record["decision"]["outcome"])


def _fingerprint(normalised: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(normalised).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Booked:
    """An earlier decision of the same batch, not yet in the log, as history must see it."""

    decision_id: str
    application_date: date
    offer_amount_fen: int | None
    """The amount that counts as exposure: set only for approvals and counter-offers."""


@dataclass(frozen=True, slots=True)
class Funding:
    """The desk's plan for a granted offer, with the offer already re-priced for it when the
    plan adds a guarantee fee (`guarantee.priced`, made to check that the plan fits)."""

    plan: FundingPlan
    priced: guarantee.Priced | None = None

    def applied(
        self, engine: Engine, app: Application, history: BorrowerHistory, decision: Decision
    ) -> Decision:
        """`decision` funded by the plan (`guarantee.fund`), re-pricing nothing twice."""
        return guarantee.fund(engine, app, history, decision, self.plan, self.priced)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A decided application, ready to record: what `append` takes, and a review to open."""

    decision: Decision
    record: dict[str, Any]
    columns: dict[str, Any]
    """The keyword arguments of `DecisionLog.append` (without `extra`)."""
    review: tuple[str, datetime] | None
    """(reasons JSON, opened at) for a REFER: the review-queue row to open with it."""


@dataclass
class Underwriting:
    engine: Engine
    model_sha256: str
    log: DecisionLog
    vault: PiiVault
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    desk: FundingSource | None = None
    """Co-lending: a plan is sought for every granted offer. None (no partners configured):
    decisions carry no funding, as before co-lending was wired."""
    misuse: MisuseFlags | None = None
    """Use-of-funds flags: a flagged borrower's next application declines (P12). None: no
    surveillance wired, no flags read."""
    _packs_stored: bool = False

    def decide(self, app: Application, idempotency_key: str | None = None) -> Recorded:
        normal = app.normalised()
        fingerprint = _fingerprint(normal)
        if idempotency_key is not None:
            earlier = self._replay_key(app.channel, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier
        started = time.perf_counter_ns()
        borrower = self.vault.borrower_key(app.applicant.resident_id)
        history = self.history(app, borrower)
        decision_id = new_decision_id()
        decision = self.fund(app, history, self.engine.decide(app, history), decision_id)
        prepared = self.prepare(
            app,
            normal,
            borrower,
            history,
            decision,
            started,
            idempotency_key,
            decision_id=decision_id,
            fingerprint=fingerprint,
        )
        try:
            self._append(prepared)
        except Conflict:
            self._release(decision, decision_id)
            # A concurrent request with the same key won the race: answer with its decision.
            winner = (
                None
                if idempotency_key is None
                else self._replay_key(app.channel, idempotency_key, fingerprint)
            )
            if winner is None:
                raise
            return winner
        except BaseException:
            self._release(decision, decision_id)
            raise
        return Recorded(prepared.columns["decision_id"], prepared.record)

    def funding(
        self,
        app: Application,
        history: BorrowerHistory,
        outcome: Outcome,
        offer: Offer | None,
        score: Score | None,
        decision_id: str,
    ) -> Funding | None:
        """The desk's plan for a granted offer; None when no funding is sought (no desk, or
        nothing granted). A plan whose guarantee fee would break a rule on the re-priced offer
        (the APR cap, the debt-service rule) is released and sought again without guaranteed
        funders (`guarantee`). Batch callers ask at staging time, in input order, so a
        borrower's later rows see whether the earlier offer was funded."""
        if self.desk is None or outcome not in GRANTED or offer is None or score is None:
            return None
        request = funding_request(app, offer, score, decision_id)
        plan = self.desk.plan(request)
        priced = guarantee.priced(self.engine, app, history, offer, plan)
        if priced is None or priced.fits:
            return Funding(plan, priced)
        self.desk.release(decision_id)
        return Funding(self.desk.plan(replace(request, guarantee_fee_allowed=False)))

    def prefetch_funding(self, days: Iterable[date]) -> None:
        """Let the desk read ahead, in one go, the exposures on the dates a batch plans on."""
        if self.desk is not None:
            self.desk.prefetch(days)

    def fund(
        self, app: Application, history: BorrowerHistory, decision: Decision, decision_id: str
    ) -> Decision:
        """The engine's decision with funding applied (`guarantee.fund`)."""
        funding = self.funding(
            app, history, decision.outcome, decision.offer, decision.score, decision_id
        )
        return decision if funding is None else funding.applied(self.engine, app, history, decision)

    def history(
        self,
        app: Application,
        borrower: str,
        *,
        in_log: bool = True,
        earlier: Sequence[Booked] = (),
        logged: tuple[int, Sequence[tuple[date, str]]] | None = None,
        flagged: Sequence[tuple[date, int]] | None = None,
    ) -> BorrowerHistory:
        """The borrower's history: the log's entries (skipped when `in_log` is false, i.e. the
        borrower has none) followed by `earlier`, a batch's decisions not yet appended.

        `logged` is the borrower's entry of `DecisionLog.borrower_histories`, read for a whole
        chunk at once; given, the log is not asked again. Equal, by construction, to what the
        log would answer had `earlier` been appended. `flagged` is likewise the borrower's
        entry of `MisuseFlags.misuse_flags_many` (missing: no flags), filtered by date here.
        """
        window = self.engine.policy.duplicate_days
        since, until = app.application_date - timedelta(days=window), app.application_date
        first: str | None = None
        if not in_log:
            exposure = 0
        elif logged is None:
            exposure, first = self.log.borrower_history(borrower, since, until)
        else:
            exposure = logged[0]
            first = next((d for day, d in logged[1] if since <= day <= until), None)
        exposure += sum(b.offer_amount_fen or 0 for b in earlier)
        found = [first] if first is not None else []
        found += [b.decision_id for b in earlier if since <= b.application_date <= until]
        duplicate_of = found[0] if found and window else None
        flags: tuple[str, ...] = ()
        if in_log and self.misuse is not None:  # a borrower with no log entry has no loans
            if flagged is None:
                flags = self.misuse.misuse_flags(borrower, app.application_date)
            else:
                on = app.application_date
                flags = tuple(f"loan-{loan}" for day, loan in flagged if day <= on)
        return BorrowerHistory(from_fen(exposure), duplicate_of, flags)

    def prepare(
        self,
        app: Application,
        normal: dict[str, Any],
        borrower: str,
        history: BorrowerHistory,
        decision: Decision,
        started_ns: int,
        idempotency_key: str | None = None,
        decision_id: str | None = None,
        fingerprint: str | None = None,
    ) -> Prepared:
        """The record and log columns for a decision (`normal` is `app.normalised()`).

        A batch passes `decision_id`: later rows of the same borrower cite it as a duplicate.
        `fingerprint` is the request's hash when the caller already has it. The clock is
        read once, so the record, its log row and any review row carry the same instant.
        """
        decision_id = decision_id or new_decision_id()
        fingerprint = fingerprint or _fingerprint(normal)
        now = self.clock()
        record = self._record(decision_id, normal, history, decision, started_ns, fingerprint, now)
        offer = decision.offer
        approved = decision.outcome in GRANTED
        review = None
        if decision.outcome is Outcome.REFER:
            review = (canonical_json([r.as_json() for r in decision.reasons]), now)
        columns = {
            "kind": "decision",
            "decision_id": decision_id,
            "channel": app.channel,
            "application_date": app.application_date,
            "outcome": str(decision.outcome),
            "borrower_key": borrower,
            "offer_amount_fen": to_fen(offer.amount) if offer is not None and approved else None,
            "idempotency_key": idempotency_key,
            "request_sha256": fingerprint,
            "record": record,
            "recorded_at": now,
        }
        return Prepared(decision, record, columns, review)

    def store_pack(self) -> None:
        """Keep the engine's rule pack text (once): replay re-reads it by hash."""
        self._store_pack()

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

    def _record(
        self,
        decision_id: str,
        normal: dict[str, Any],
        history: BorrowerHistory,
        decision: Decision,
        started_ns: int,
        fingerprint: str,
        now: datetime,
    ) -> dict[str, Any]:
        pack = self.engine.pack
        elapsed_us = (time.perf_counter_ns() - started_ns) // 1000
        return {
            "decision_id": decision_id,
            "application": self.vault.protect(normal, decision_id),
            "history": _history_json(history),
            "rule_pack": {"id": pack.id, "version": pack.version, "sha256": pack.sha256},
            "model": {"sha256": self.model_sha256},
            "engine_version": __version__,
            "policy": policy_facts(self.engine.policy),
            "decision": decision.as_json(),
            "request_sha256": fingerprint,
            "decided_at": now.isoformat(),
            "engine_us": elapsed_us,
        }

    def _append(self, prepared: Prepared) -> None:
        self._store_pack()
        extra = None
        if prepared.review is not None:
            reasons, at = prepared.review
            decision_id, channel = prepared.columns["decision_id"], prepared.columns["channel"]

            def extra(conn: Any) -> None:
                self.log.open_review(conn, decision_id, channel, reasons, at)

        self.log.append(**prepared.columns, extra=extra)

    def _release(self, decision: Decision, decision_id: str) -> None:
        """A decision that was not recorded must not keep its funding reserved."""
        if self.desk is not None and decision.funding is not None:
            self.desk.release(decision_id)

    def _store_pack(self) -> None:
        if not self._packs_stored:
            pack = self.engine.pack
            self.log.store_pack_text(pack.sha256, pack.id, pack.version, pack.text)
            self._packs_stored = True


def _history_json(history: BorrowerHistory) -> dict[str, Any]:
    """The history replay re-uses; `funds_misuse` only when flagged, as in older records."""
    out: dict[str, Any] = {
        "existing_balance": str(history.existing_balance),
        "duplicate_of": history.duplicate_of,
    }
    if history.funds_misuse:
        out["funds_misuse"] = list(history.funds_misuse)
    return out


def new_decision_id() -> str:
    return "dcs_" + uuid.uuid4().hex


def _load(entry: LogEntry) -> dict[str, Any]:
    return dict(json.loads(entry.record_json))

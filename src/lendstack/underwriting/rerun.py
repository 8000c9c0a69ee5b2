"""Re-deciding stored applications: replay (same engine) and backtest (another pack or model).

Each stored record is read back, its PII unsealed, and the application re-decided with the
borrower history the record kept; recomputing history from today's log would count the
decisions that came after it. Records are streamed, so memory does not grow with the range.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from lendstack.core.errors import NotFound, ValidationError
from lendstack.underwriting.application import Application
from lendstack.underwriting.audit import LogEntry
from lendstack.underwriting.engine import BorrowerHistory, Engine
from lendstack.underwriting.pii import PiiVault
from lendstack.underwriting.replay import BacktestTally, Difference, ReplayReport, diff_decisions
from lendstack.underwriting.rules import RulePack, parse_pack


class StoredDecisions(Protocol):
    def between(self, first: date, last: date) -> Iterator[LogEntry]: ...
    def pack_text(self, sha256: str) -> str | None: ...


def stored_inputs(
    entry: LogEntry, vault: PiiVault
) -> tuple[dict[str, Any], Application, BorrowerHistory]:
    record = json.loads(entry.record_json)
    revealed = vault.reveal(record["application"], entry.decision_id)
    app = Application.model_validate(revealed)
    h = record["history"]
    return record, app, BorrowerHistory(Decimal(h["existing_balance"]), h["duplicate_of"])


class PinnedPacks:
    """Rule packs by content hash, read from the texts stored at decision time."""

    def __init__(self, log: StoredDecisions) -> None:
        self._log = log
        self._cache: dict[str, RulePack] = {}

    def get(self, sha256: str) -> RulePack:
        if sha256 not in self._cache:
            text = self._log.pack_text(sha256)
            if text is None:
                raise NotFound(f"rule pack text {sha256[:12]}… is not stored", field="rule_pack")
            self._cache[sha256] = parse_pack(text, f"stored pack {sha256[:12]}")
        return self._cache[sha256]


def _check_pinned(record: dict[str, Any], engine: Engine, model_sha256: str) -> None:
    if record["model"]["sha256"] != model_sha256:
        raise ValidationError(
            f"decision {record['decision_id']} was made with model {record['model']['sha256'][:12]}…, "
            f"not the loaded {model_sha256[:12]}…; pass --model to that model, or use a backtest",
            field="model",
        )
    if record["policy"]["sha256"] != engine.policy.sha256:
        raise ValidationError(
            f"decision {record['decision_id']} was made under policy "
            f"{record['policy']['version']} ({record['policy']['sha256'][:12]}…)",
            field="policy",
        )


def replay(
    log: StoredDecisions,
    vault: PiiVault,
    engine: Engine,
    model_sha256: str,
    first: date,
    last: date,
    tick: Callable[[], None] | None = None,
) -> ReplayReport:
    packs = PinnedPacks(log)
    differences: list[Difference] = []
    checked = 0
    for entry in _ticking(log.between(first, last), tick):
        record, app, history = stored_inputs(entry, vault)
        _check_pinned(record, engine, model_sha256)
        pinned = replace(engine, pack=packs.get(record["rule_pack"]["sha256"]))
        fresh = pinned.decide(app, history).as_json()
        checked += 1
        changed = diff_decisions(record["decision"], fresh)
        if changed:
            differences.append(Difference(entry.decision_id, changed))
    return ReplayReport(checked, tuple(differences))


def backtest(
    log: StoredDecisions,
    vault: PiiVault,
    challenger: Callable[[dict[str, Any]], Engine],
    first: date,
    last: date,
    tick: Callable[[], None] | None = None,
) -> BacktestTally:
    """`challenger(record)` gives the engine to compare against for that record."""
    tally = BacktestTally()
    for entry in _ticking(log.between(first, last), tick):
        record, app, history = stored_inputs(entry, vault)
        fresh = challenger(record).decide(app, history).as_json()
        tally.add(record["decision"], fresh)
    return tally


def _ticking(entries: Iterator[LogEntry], tick: Callable[[], None] | None) -> Iterator[LogEntry]:
    """`tick` after each record: the CLI passes a progress bar's advance."""
    for entry in entries:
        yield entry
        if tick is not None:
            tick()

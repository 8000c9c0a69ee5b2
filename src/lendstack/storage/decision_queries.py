"""The decision log's prebuilt statements: Core queries, and the hot ones compiled once.

Kept apart from the repository so the SQL a decision runs can be read in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine, bindparam, exists, func, insert, or_, select, update

from lendstack.storage.decision_rows import HEAD
from lendstack.storage.driver_sql import DriverStatement
from lendstack.storage.schema import decision_log, decision_log_head
from lendstack.underwriting.decision import GRANTED

EXPOSURE_OUTCOMES = tuple(sorted(str(o) for o in GRANTED))  # plain text for the drivers

ENTRY_COLUMNS = (
    decision_log.c.seq,
    decision_log.c.kind,
    decision_log.c.decision_id,
    decision_log.c.record_json,
    decision_log.c.prev_hash,
    decision_log.c.hash,
)
BY_DECISION = (
    select(*ENTRY_COLUMNS)
    .where(decision_log.c.decision_id == bindparam("did"), decision_log.c.kind == "decision")
    .order_by(decision_log.c.seq)
    .limit(1)
)
HISTORY = (
    select(*ENTRY_COLUMNS)
    .where(decision_log.c.decision_id == bindparam("did"))
    .order_by(decision_log.c.seq)
)
BY_KEY = select(*ENTRY_COLUMNS).where(
    decision_log.c.channel == bindparam("channel"),
    decision_log.c.idempotency_key == bindparam("key"),
)
FOR_BORROWER = (
    select(*ENTRY_COLUMNS)
    .where(
        decision_log.c.borrower_key == bindparam("bk"),
        decision_log.c.application_date >= bindparam("since"),
        decision_log.c.application_date <= bindparam("until"),
        decision_log.c.kind == "decision",
    )
    .order_by(decision_log.c.seq)
)
LATER = decision_log.alias("later")
EXPOSURE = select(func.coalesce(func.sum(decision_log.c.offer_amount_fen), 0)).where(
    decision_log.c.borrower_key == bindparam("bk"),
    decision_log.c.outcome.in_(EXPOSURE_OUTCOMES),
    ~exists().where(
        LATER.c.decision_id == decision_log.c.decision_id, LATER.c.seq > decision_log.c.seq
    ),
)

BORROWER_HISTORY = select(
    select(func.coalesce(func.sum(decision_log.c.offer_amount_fen), 0))
    .where(
        decision_log.c.borrower_key == bindparam("bk"),
        or_(*(decision_log.c.outcome == o for o in EXPOSURE_OUTCOMES)),
        ~exists().where(
            LATER.c.decision_id == decision_log.c.decision_id, LATER.c.seq > decision_log.c.seq
        ),
    )
    .scalar_subquery()
    .label("exposure"),
    select(decision_log.c.decision_id)
    .where(
        decision_log.c.borrower_key == bindparam("bk"),
        decision_log.c.application_date >= bindparam("since"),
        decision_log.c.application_date <= bindparam("until"),
        decision_log.c.kind == "decision",
    )
    .order_by(decision_log.c.seq)
    .limit(1)
    .scalar_subquery()
    .label("first_recent"),
)
"""Exposure and the first decision inside the duplicate window, in one round trip."""


@dataclass(frozen=True, slots=True)
class HotStatements:
    """The statements every single decision runs, compiled once for the engine's dialect."""

    by_key: DriverStatement
    head: DriverStatement
    insert_row: DriverStatement
    insert_head: DriverStatement
    update_head: DriverStatement
    history: DriverStatement

    @classmethod
    def compile(cls, engine: Engine) -> HotStatements:
        c = partial(DriverStatement.compile, engine)
        head = decision_log_head
        return cls(
            c(
                select(decision_log.c.seq).where(
                    decision_log.c.channel == bindparam("channel"),
                    decision_log.c.idempotency_key == bindparam("key"),
                )
            ),
            c(HEAD),
            c(insert(decision_log)),
            c(insert(head)),
            c(
                update(head)
                .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
                .where(head.c.id == 1)
            ),
            c(BORROWER_HISTORY),
        )

"""`append_many` builds, hash for hash, the chain that `append` builds one record at a time."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from audit_testdata import AT, DAY
from sqlalchemy import Engine, select

from lendstack.core.errors import Conflict
from lendstack.storage.decisions import SqlDecisionLog, prepare_entry
from lendstack.storage.schema import decision_log


def _args(n: int) -> dict:
    outcome = ("APPROVE", "DECLINE", "REFER", "COUNTER_OFFER")[n % 4]
    return {
        "kind": "decision",
        "decision_id": f"dec-{n:06d}",
        "channel": "app",
        "application_date": DAY + timedelta(days=n % 3),
        "outcome": outcome,
        "borrower_key": f"bk-{n % 5}",
        "offer_amount_fen": 100_000 * n if outcome in ("APPROVE", "COUNTER_OFFER") else None,
        "idempotency_key": f"idem-{n}" if n % 2 else None,
        "request_sha256": "ab" * 32,
        "record": {"n": n, "nested": {"amount": str(n), "text": "贷款"}},
        "recorded_at": AT + timedelta(seconds=n),
    }


def _review(n: int) -> tuple[str, object] | None:
    return ('[{"code":"P99"}]', AT) if _args(n)["outcome"] == "REFER" else None


@pytest.fixture
def other_log(second_engine: Engine) -> SqlDecisionLog:
    """A second log on the same backend, so stored rows compare type for type."""
    return SqlDecisionLog(second_engine)


def test_append_many_equals_append_hash_for_hash(log, other_log):
    for n in range(1, 12):
        review = _review(n)
        extra = None
        if review is not None:

            def extra(conn, n=n, review=review):
                log.open_review(conn, f"dec-{n:06d}", "app", review[0], review[1])

        log.append(**_args(n), extra=extra)
    prepared = [prepare_entry(**_args(n), review=_review(n)) for n in range(1, 12)]
    first = other_log.append_many(prepared[:4])
    rest = other_log.append_many(prepared[4:])
    one_by_one = list(log.entries())
    assert list(other_log.entries()) == one_by_one == first + rest
    assert other_log.head() == log.head()
    assert other_log.verify().ok
    assert log.verify().ok
    strip = lambda rows: [{k: v for k, v in r.items() if k != "id"} for r in rows]  # noqa: E731
    assert strip(other_log.reviews()) == strip(log.reviews())
    with log.engine.connect() as a, other_log.engine.connect() as b:
        query = select(decision_log).order_by(decision_log.c.seq)
        assert [tuple(r) for r in a.execute(query)] == [tuple(r) for r in b.execute(query)]


def test_append_many_continues_a_chain_started_by_append(log):
    log.append(**_args(1))
    log.append_many([prepare_entry(**_args(n)) for n in (2, 3)])
    log.append(**_args(4))
    entries = list(log.entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert log.verify().ok


def test_append_many_is_all_or_nothing_on_a_reused_key(log):
    log.append(**_args(1))
    with pytest.raises(Conflict):
        log.append_many([prepare_entry(**_args(n)) for n in (2, 1)])
    assert [e.seq for e in log.entries()] == [1]
    assert log.append_many([]) == []
    assert log.verify().ok

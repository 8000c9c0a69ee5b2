"""The decision log on SQLite and PostgreSQL: appends, reads, conflicts, concurrency, reviews."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import date, timedelta

import pytest
from audit_testdata import AT, DAY, MOBILE, NAME, RESIDENT_ID
from sqlalchemy import func, insert, select

from lendstack.core.errors import Conflict, NotFound, ValidationError
from lendstack.storage.schema import decision_log, review_queue
from lendstack.underwriting.audit import GENESIS_HASH, chain_hash


def rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(decision_log)).scalar_one()


def test_append_and_get_round_trip(log, decide, vault):
    assert log.head() is None
    first = decide(1)
    second = decide(2)
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert second.prev_hash == first.hash
    assert second.hash == chain_hash(first.hash, second.record_json)
    assert log.get("dec-000002") == second
    assert log.get("nope") is None
    assert log.by_idempotency("app", "idem-1") == first
    assert log.request_sha256("app", "idem-1") == "ab" * 32
    assert log.head() == (2, second.hash)
    assert list(log.entries()) == [first, second]
    record = json.loads(second.record_json)
    assert record["_log"]["outcome"] == "APPROVE"
    assert record["_log"]["recorded_at"] == AT.isoformat()
    assert vault.reveal(record["application"], "dec-000002")["applicant"]["name"] == NAME
    report = log.verify()
    assert report.ok
    assert report.checked == 2
    assert report.last.hash == second.hash


def test_naive_times_are_refused(log):
    with pytest.raises(ValidationError) as err:
        log.append(
            "decision",
            "d",
            "app",
            DAY,
            "DECLINE",
            "k",
            None,
            None,
            None,
            {},
            AT.replace(tzinfo=None),
        )
    assert err.value.field == "recorded_at"


def test_reused_idempotency_key_conflicts_and_writes_nothing(engine, log, decide):
    decide(1, key="same")
    head = log.head()
    opened = []

    def extra(conn):
        opened.append(True)
        log.open_review(conn, "dec-000002", "app", "[]", AT)

    with pytest.raises(Conflict) as err:
        decide(2, key="same", extra=extra)
    assert err.value.field == "Idempotency-Key"
    assert rows(engine) == 1
    assert log.head() == head
    assert log.reviews() == []
    decide(3, key="same", channel="other")  # keys are per channel
    assert log.verify().ok


def test_a_failing_extra_hook_rolls_back_the_entry(engine, log, decide):
    decide(1)
    head = log.head()

    def extra(conn):
        log.open_review(conn, "dec-000002", "app", "[]", AT)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        decide(2, extra=extra)
    assert rows(engine) == 1
    assert log.head() == head
    assert log.reviews() == []


def test_a_database_unique_clash_maps_to_conflict(engine, log, decide):
    """Appends run no pre-check query: the UNIQUE constraint answers a reused key."""
    decide(1, key="k")
    with pytest.raises(Conflict):
        decide(2, key="k")
    assert rows(engine) == 1


def test_concurrent_appends_keep_one_linear_chain(engine, log, decide):
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(50):
                decide(offset + i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = list(log.entries())
    assert [e.seq for e in entries] == list(range(1, 101))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    report = log.verify()
    assert report.ok
    assert report.checked == 100


def test_reads_by_borrower_date_and_exposure(log, decide, vault):
    decide(1, application_date=DAY - timedelta(days=40))
    decide(2, outcome="DECLINE", offer_amount_fen=None)
    decide(3, outcome="COUNTER_OFFER", offer_amount_fen=200_000)
    bk = vault.borrower_key(RESIDENT_ID)
    recent = log.recent_for_borrower(bk, DAY - timedelta(days=30), DAY)
    assert [e.decision_id for e in recent] == ["dec-000002", "dec-000003"]
    assert [e.seq for e in log.between(DAY - timedelta(days=50), DAY - timedelta(days=30))] == [1]
    assert [e.seq for e in log.between(DAY, DAY)] == [2, 3]
    assert log.exposure(bk) == 700_000
    assert log.exposure("someone else") == 0


def test_review_resolution_is_chained_and_supersedes(log, decide, vault):
    bk = vault.borrower_key(RESIDENT_ID)
    decide(
        1,
        outcome="REVIEW",
        offer_amount_fen=None,
        extra=lambda c: log.open_review(c, "dec-000001", "app", '["R1"]', AT),
    )
    assert [r["decision_id"] for r in log.reviews("open")] == ["dec-000001"]
    assert log.exposure(bk) == 0
    later = AT + timedelta(hours=2)
    entry = log.resolve_review(
        "dec-000001",
        "COUNTER_OFFER",
        "analyst-7",
        "income verified",
        later,
        {"offer_amount_fen": 300_000},
    )
    assert entry.kind == "review"
    assert entry.seq == 2
    assert log.reviews("open") == []
    resolved = log.reviews("resolved")[0]
    assert (resolved["resolution"], resolved["resolved_by"]) == ("COUNTER_OFFER", "analyst-7")
    assert log.exposure(bk) == 300_000
    assert [e.kind for e in log.history("dec-000001")] == ["decision", "review"]
    assert log.get("dec-000001").seq == 1
    with pytest.raises(Conflict):
        log.resolve_review("dec-000001", "DECLINE", "x", None, later, {})
    with pytest.raises(NotFound):
        log.resolve_review("dec-missing", "DECLINE", "x", None, later, {})
    assert log.head()[0] == 2
    assert log.verify().ok


def test_open_review_inside_append_commits_with_it(engine, log, decide):
    decide(1, extra=lambda c: log.open_review(c, "dec-000001", "app", "[]", AT))
    with engine.connect() as conn:
        assert conn.execute(select(review_queue.c.status)).scalar_one() == "open"


def test_pack_texts_are_stored_once(log):
    assert log.pack_text("f" * 64) is None
    log.store_pack_text("f" * 64, "cn-2026", "1.0", "rules = 1\n")
    log.store_pack_text("f" * 64, "cn-2026", "1.0", "rules = 1\n")
    assert log.pack_text("f" * 64) == "rules = 1\n"


def test_rejected_inputs_are_counted_without_payloads(log):
    log.count_rejected("api", "app", ["applicant.resident_id", "loan.amount"], AT)
    log.count_rejected("batch", None, ["loan.amount"], AT)
    counts = log.rejected_counts()
    assert counts["total"] == 2
    assert counts["by_source"] == {"api": 1, "batch": 1}
    assert counts["by_field"] == {"applicant.resident_id": 1, "loan.amount": 2}


def test_stored_rows_hold_no_plaintext_pii(engine, decide):
    for n in range(1, 4):
        decide(n)
    with engine.connect() as conn:
        dumped = "\n".join(
            " ".join(str(v) for v in row) for row in conn.execute(select(decision_log))
        )
    for secret in (NAME, RESIDENT_ID, MOBILE, RESIDENT_ID[:-1], MOBILE[3:]):
        assert secret not in dumped


def test_verify_sees_a_row_written_around_the_log(engine, log, decide):
    last = decide(1)
    rogue = {
        "seq": 2, "kind": "decision", "decision_id": "x", "channel": "app", "application_date": DAY,
        "outcome": "APPROVE", "borrower_key": "k", "offer_amount_fen": 1, "idempotency_key": None,
        "request_sha256": None, "record_json": "{}", "prev_hash": last.hash,
        "hash": chain_hash(last.hash, "{}"), "recorded_at": AT,
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(decision_log), rogue)
    report = log.verify()
    assert not report.ok
    assert report.problems[0].kind == "forged_link"


def test_empty_log_verifies(log):
    report = log.verify()
    assert report.ok
    assert report.checked == 0
    assert report.last is None


def test_between_streams_in_seq_order(log, decide):
    for n in range(1, 8):
        decide(n, application_date=date(2026, 11, 1) + timedelta(days=n % 3))
    seqs = [e.seq for e in log.between(date(2026, 11, 1), date(2026, 11, 30))]
    assert seqs == sorted(seqs)
    assert len(seqs) == 7

"""`borrower_histories` (a chunk's known borrowers read at once) answers every window exactly
as `borrower_history` (one query per row) does, reviews superseding decisions included."""

from __future__ import annotations

import itertools
from datetime import timedelta

from audit_testdata import AT, DAY

from lendstack.storage.decisions import SqlDecisionLog

BORROWERS = ("bk-a", "bk-b", "bk-c", "bk-d")
OUTCOMES = ("APPROVE", "DECLINE", "REFER", "COUNTER_OFFER")


def _fill(log: SqlDecisionLog) -> list[str]:
    """Decisions over 40 days for four borrowers (bk-d has none), some REFERs resolved."""
    refers = []
    for n in range(30):
        outcome = OUTCOMES[n % 4]
        granted = outcome in ("APPROVE", "COUNTER_OFFER")
        decision_id = f"dec-{n:03d}"
        extra = None
        if outcome == "REFER":
            refers.append(decision_id)

            def extra(conn, decision_id=decision_id):
                log.open_review(conn, decision_id, "app", "[]", AT)

        log.append(
            "decision",
            decision_id,
            "app",
            DAY + timedelta(days=(7 * n) % 40),  # not in seq order
            outcome,
            BORROWERS[n % 3],
            100_000 + 1_000 * n if granted else None,
            None,
            None,
            {"n": n},
            AT + timedelta(seconds=n),
            extra,
        )
    for i, decision_id in enumerate(refers):
        if i % 2 == 0:  # approved on review: now counts as exposure with the review's amount
            record = {"offer_amount_fen": 7_000 + i}
            log.resolve_review(decision_id, "APPROVE", "staff", None, AT, record)
    # Later entries for granted decisions: only the latest entry of a decision counts.
    for decision_id, outcome, fen in (("dec-000", "DECLINE", None), ("dec-003", "APPROVE", 55)):
        n = int(decision_id[-3:])
        log.append(
            "review", decision_id, "app", DAY + timedelta(days=(7 * n) % 40), outcome,
            BORROWERS[n % 3], fen, None, None, {"review": n}, AT + timedelta(hours=1),
        )  # fmt: skip
    log.append(
        "decision", "dec-900", "app", DAY, "REFER", "bk-a", None, None, None, {}, AT,
        lambda conn: log.open_review(conn, "dec-900", "app", "[]", AT),
    )  # fmt: skip
    log.resolve_review("dec-900", "DECLINE", "staff", None, AT, {})
    return refers


def test_every_window_matches_the_per_row_query(log):
    _fill(log)
    keys = [*BORROWERS, "bk-unknown"]
    histories = log.borrower_histories(keys)
    assert set(histories) == {"bk-a", "bk-b", "bk-c"}
    exposures = set()
    for key, start, length in itertools.product(keys, range(-2, 42, 3), (0, 1, 7, 30)):
        since = DAY + timedelta(days=start)
        until = since + timedelta(days=length)
        exposure, first = log.borrower_history(key, since, until)
        exposures.add(exposure)
        if key not in histories:
            assert (exposure, first) == (0, None)
            continue
        fen, decisions = histories[key]
        derived = next((d for day, d in decisions if since <= day <= until), None)
        assert (fen, derived) == (exposure, first), (key, since, until)
    assert len(exposures) > 3  # reviews and outcomes really vary the sums


def test_no_keys_and_many_keys(log):
    _fill(log)
    assert log.borrower_histories([]) == {}
    many = [f"bk-x{n}" for n in range(1_200)] + ["bk-b"]  # over the IN-list size
    assert set(log.borrower_histories(many)) == {"bk-b"}
    fen, _ = log.borrower_histories(many)["bk-b"]
    assert fen == log.borrower_history("bk-b", DAY, DAY)[0]

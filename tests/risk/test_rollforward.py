"""The IFRS 7 allowance roll-forward: closes to the fen per stage and in total."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.core.errors import ValidationError
from lendstack.risk.ecl import LoanBook, compute_ecl
from lendstack.risk.rollforward import TRANSFERS, Movement, roll_forward


@dataclass(frozen=True)
class Run:
    """A minimal ECL run: what the roll-forward reads."""

    loan_id: np.ndarray
    stage: np.ndarray
    ecl_fen: np.ndarray
    as_of: date | None = None


def run(rows: list[tuple[int, int, int]], as_of: date | None = None) -> Run:
    ids, stages, fen = zip(*rows, strict=True) if rows else ((), (), ())
    return Run(
        np.array(ids, dtype=np.int64),
        np.array(stages, dtype=np.uint8),
        np.array(fen, dtype=np.int64),
        as_of,
    )


def test_every_movement_by_hand() -> None:
    # loan id, stage, allowance fen
    opening = run(
        [(1, 1, 100), (2, 1, 200), (3, 2, 300), (4, 3, 400), (5, 1, 50), (6, 2, 60)],
        date(2026, 5, 31),
    )
    closing = run(
        [(1, 1, 120), (2, 2, 500), (3, 3, 700), (4, 3, 350), (7, 1, 80)], date(2026, 6, 30)
    )
    rf = roll_forward(opening, closing, written_off=np.array([5]))
    table = {r.movement: (r.stage_fen, r.loans) for r in rf.rows}
    assert table == {
        Movement.OPENING: ((350, 360, 400), 6),
        Movement.NEW: ((80, 0, 0), 1),
        Movement.TO_STAGE_1: ((0, 0, 0), 0),
        Movement.TO_STAGE_2: ((-200, 200, 0), 1),
        Movement.TO_STAGE_3: ((0, -300, 300), 1),
        Movement.DERECOGNISED: ((0, -60, 0), 1),
        Movement.WRITTEN_OFF: ((-50, 0, 0), 1),
        Movement.REMEASUREMENT: ((20, 300, 350), 4),
        Movement.CLOSING: ((200, 500, 1050), 5),
    }
    assert [r.movement for r in rf.rows] == list(Movement)
    out = rf.as_json()
    assert out["opening_date"] == "2026-05-31"
    assert out["movements"]["transfer_to_stage_2"] == {
        "1": "-2.00",
        "2": "2.00",
        "3": "0.00",
        "total": "0.00",
        "loans": 1,
    }
    assert out["movements"]["closing"]["total"] == "17.50"


def test_first_run_is_all_new_loans() -> None:
    closing = run([(1, 1, 10), (2, 3, 99)])
    rf = roll_forward(run([]), closing)
    assert rf.row(Movement.NEW).stage_fen == rf.row(Movement.CLOSING).stage_fen == (10, 0, 99)
    assert rf.row(Movement.OPENING).total_fen == 0


@st.composite
def two_runs(draw):
    pool = draw(st.integers(0, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = rng.permutation(np.arange(1, 1 + 3 * pool + 1))[: 2 * pool]
    opening_ids = ids[: draw(st.integers(0, 2 * pool))]
    closing_ids = rng.choice(ids, size=draw(st.integers(0, 2 * pool)), replace=False)

    def allowance(loan_ids):
        n = loan_ids.shape[0]
        return Run(
            loan_ids.astype(np.int64),
            rng.integers(1, 4, n).astype(np.uint8),
            rng.integers(0, 10**9, n).astype(np.int64),
        )

    opening, closing = allowance(opening_ids), allowance(closing_ids)
    gone = np.setdiff1d(opening_ids, closing_ids)
    written_off = gone[rng.random(gone.shape[0]) < 0.5]
    return opening, closing, written_off


@settings(max_examples=150)
@given(two_runs())
def test_random_runs_close_exactly(runs) -> None:
    opening, closing, written_off = runs
    rf = roll_forward(opening, closing, written_off)
    for k, stage in enumerate((1, 2, 3)):
        independent = sum(
            int(v) for v, s in zip(closing.ecl_fen, closing.stage, strict=True) if s == stage
        )
        assert sum(r.stage_fen[k] for r in rf.rows[:-1]) == independent
        assert rf.row(Movement.CLOSING).stage_fen[k] == independent
        opened = sum(
            int(v) for v, s in zip(opening.ecl_fen, opening.stage, strict=True) if s == stage
        )
        assert rf.row(Movement.OPENING).stage_fen[k] == opened
    assert sum(r.total_fen for r in rf.rows[:-1]) == int(closing.ecl_fen.sum())
    for movement in TRANSFERS:
        assert rf.row(movement).total_fen == 0
    matched = np.intersect1d(opening.loan_id, closing.loan_id).size
    assert rf.row(Movement.NEW).loans + matched == rf.row(Movement.CLOSING).loans
    left = rf.row(Movement.DERECOGNISED).loans + rf.row(Movement.WRITTEN_OFF).loans
    assert left + matched == rf.row(Movement.OPENING).loans
    assert rf.row(Movement.WRITTEN_OFF).loans == written_off.size


def test_roll_forward_between_two_ecl_runs() -> None:
    rng = np.random.default_rng(8)

    def book(ids: np.ndarray, dpd_shift: int) -> LoanBook:
        n = ids.shape[0]
        return LoanBook(
            loan_id=ids,
            ead_fen=rng.integers(0, 2_000_000, (n, 24)),
            eir=np.full(n, 0.18),
            lgd=np.full(n, 0.85),
            dpd=rng.choice([0, 0, 40, 100], n) + dpd_shift,
            defaulted=np.zeros(n, dtype=bool),
            pd_origination=np.full(n, 0.03),
            pd_12m=rng.uniform(0, 0.2, n),
        )

    opening = compute_ecl(book(np.arange(0, 2_000), 0), as_of=date(2026, 5, 31))
    closing = compute_ecl(book(np.arange(500, 2_600), 10), as_of=date(2026, 6, 30))
    rf = roll_forward(opening, closing, written_off=np.arange(0, 100))
    assert rf.row(Movement.CLOSING).total_fen == closing.total_fen
    assert rf.row(Movement.OPENING).total_fen == opening.total_fen
    assert rf.row(Movement.NEW).loans == 600
    assert rf.row(Movement.WRITTEN_OFF).loans == 100
    assert rf.row(Movement.DERECOGNISED).loans == 400
    assert closing.as_json(rf)["roll_forward"]["closing_date"] == "2026-06-30"


def test_written_off_must_have_left_the_book() -> None:
    opening, closing = run([(1, 1, 5), (2, 1, 5)]), run([(2, 1, 5)])
    with pytest.raises(ValidationError) as err:
        roll_forward(opening, closing, written_off=np.array([2]))
    assert err.value.field == "written_off"
    with pytest.raises(ValidationError, match=r"e\.g\. 9"):
        roll_forward(opening, closing, written_off=np.array([9]))


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (
            Run(np.array([1, 1]), np.array([1, 1], dtype=np.uint8), np.array([1, 2])),
            "opening.loan_id",
        ),
        (Run(np.array([1]), np.array([4], dtype=np.uint8), np.array([1])), "opening.stage"),
        (Run(np.array([1]), np.array([1], dtype=np.uint8), np.array([1.5])), "opening"),
        (Run(np.array([1, 2]), np.array([1], dtype=np.uint8), np.array([1])), "opening"),
    ],
)
def test_malformed_runs_are_refused(bad, field) -> None:
    with pytest.raises(ValidationError) as err:
        roll_forward(bad, run([]))
    assert err.value.field == field

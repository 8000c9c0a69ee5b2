"""The IFRS 7 (35H) loss-allowance roll-forward between two ECL runs, to the fen.

Loans are matched by id. Per stage column (1 = 12-month ECL, 2 = lifetime not credit-impaired,
3 = lifetime credit-impaired) the movements are defined loan by loan, on integer fen:

* opening: every opening loan's allowance O, in its opening stage a;
* new loans: loans only in the closing run, their closing allowance C in their closing stage b;
* transfers to stage b: a matched loan whose stage moved from a to b carries its *opening*
  allowance across: -O in column a, +O in column b (each transfer row sums to 0 across columns);
* derecognised / written off: loans only in the opening run, -O in stage a; a loan is written
  off when its id is in `written_off`, otherwise derecognised (repaid, sold, transferred);
* remeasurement: the residual C - O of every matched loan, in its closing stage b;
* closing: every closing loan's allowance C, in its closing stage b.

So each column closes exactly: a matched loan contributes O - O + O + (C - O) = C to column b
and O - O = 0 to column a. The table is checked against the closing run's own stage totals
when it is built; a difference of one fen raises `InvariantViolation`.

Two snapshots cannot see what happened in between: a loan that moved 1 -> 2 -> 1 shows no
transfer, and a write-off is shown at the opening measure (any top-up of the allowance
between the opening date and the write-off is not observable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from lendstack.core.errors import InvariantViolation, ValidationError
from lendstack.core.money import from_fen

STAGES = (1, 2, 3)


class Allowance(Protocol):
    """What the roll-forward needs from an ECL run (`EclResult` has it)."""

    @property
    def loan_id(self) -> NDArray[np.int64]: ...
    @property
    def stage(self) -> NDArray[np.uint8]: ...
    @property
    def ecl_fen(self) -> NDArray[np.int64]: ...
    @property
    def as_of(self) -> date | None: ...


class Movement(StrEnum):
    OPENING = "opening"
    NEW = "new_loans"
    TO_STAGE_1 = "transfer_to_stage_1"
    TO_STAGE_2 = "transfer_to_stage_2"
    TO_STAGE_3 = "transfer_to_stage_3"
    DERECOGNISED = "derecognised"
    WRITTEN_OFF = "written_off"
    REMEASUREMENT = "remeasurement"
    CLOSING = "closing"


TRANSFERS = (Movement.TO_STAGE_1, Movement.TO_STAGE_2, Movement.TO_STAGE_3)


@dataclass(frozen=True, slots=True)
class MovementRow:
    """One line of the table: fen per stage column, and how many loans it covers."""

    movement: Movement
    stage_fen: tuple[int, int, int]
    loans: int

    @property
    def total_fen(self) -> int:
        return sum(self.stage_fen)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            str(s): str(from_fen(v)) for s, v in zip(STAGES, self.stage_fen, strict=True)
        }
        out["total"] = str(from_fen(self.total_fen))
        out["loans"] = self.loans
        return out


@dataclass(frozen=True, slots=True)
class RollForward:
    """Opening allowance to closing allowance, by stage, in `Movement` order."""

    rows: tuple[MovementRow, ...]
    opening_date: date | None = None
    closing_date: date | None = None

    def row(self, movement: Movement) -> MovementRow:
        return next(r for r in self.rows if r.movement is movement)

    def as_json(self) -> dict[str, Any]:
        return {
            "opening_date": self.opening_date.isoformat() if self.opening_date else None,
            "closing_date": self.closing_date.isoformat() if self.closing_date else None,
            "basis": "transfers at the opening allowance; remeasurement in the closing stage",
            "movements": {r.movement.value: r.as_json() for r in self.rows},
        }


def roll_forward(
    opening: Allowance,
    closing: Allowance,
    written_off: NDArray[np.integer[Any]] | None = None,
) -> RollForward:
    """The IFRS 7 movement table from `opening` to `closing` (see the module docstring)."""
    _check_run(opening, "opening")
    _check_run(closing, "closing")
    _, io, ic = np.intersect1d(
        opening.loan_id, closing.loan_id, assume_unique=True, return_indices=True
    )
    gone = np.ones(opening.loan_id.shape[0], dtype=bool)
    gone[io] = False
    new = np.ones(closing.loan_id.shape[0], dtype=bool)
    new[ic] = False
    off = _written_off_mask(opening.loan_id, gone, written_off)
    o_stage, o_fen = opening.stage, opening.ecl_fen
    c_stage, c_fen = closing.stage, closing.ecl_fen
    rows = [
        _row(Movement.OPENING, o_stage, o_fen),
        _row(Movement.NEW, c_stage[new], c_fen[new]),
        *_transfers(o_stage[io], c_stage[ic], o_fen[io]),
        _row(Movement.DERECOGNISED, o_stage[gone & ~off], -o_fen[gone & ~off]),
        _row(Movement.WRITTEN_OFF, o_stage[off], -o_fen[off]),
        _row(Movement.REMEASUREMENT, c_stage[ic], c_fen[ic] - o_fen[io]),
    ]
    rows.append(_closing(rows, _row(Movement.CLOSING, c_stage, c_fen)))
    return RollForward(tuple(rows), opening.as_of, closing.as_of)


def _row(movement: Movement, stage: NDArray[np.uint8], fen: NDArray[np.int64]) -> MovementRow:
    return MovementRow(movement, stage_sums(stage, fen), int(stage.shape[0]))


def stage_sums(stage: NDArray[np.uint8], fen: NDArray[np.int64]) -> tuple[int, int, int]:
    """Exact integer fen per stage 1, 2, 3 (numpy int64 sums, then Python ints)."""
    s1, s2, s3 = (int(fen[stage == s].sum(dtype=np.int64)) for s in STAGES)
    return s1, s2, s3


def _transfers(
    from_stage: NDArray[np.uint8], to_stage: NDArray[np.uint8], opening_fen: NDArray[np.int64]
) -> list[MovementRow]:
    """One row per destination stage: +O in the destination, -O in each source stage."""
    rows = []
    moved = from_stage != to_stage
    for movement, target in zip(TRANSFERS, STAGES, strict=True):
        into = moved & (to_stage == target)
        leaving = stage_sums(from_stage[into], opening_fen[into])
        columns = [-v for v in leaving]
        columns[target - 1] = sum(leaving)
        rows.append(MovementRow(movement, (columns[0], columns[1], columns[2]), int(into.sum())))
    return rows


def _closing(rows: list[MovementRow], closing: MovementRow) -> MovementRow:
    """The closing row, after proving every column adds up to it."""
    for k, stage in enumerate(STAGES):
        derived = sum(r.stage_fen[k] for r in rows)
        if derived != closing.stage_fen[k]:
            raise InvariantViolation(
                f"stage {stage} roll-forward does not close: movements give {derived} fen, "
                f"the closing run holds {closing.stage_fen[k]} fen"
            )
    return closing


def _written_off_mask(
    opening_ids: NDArray[np.int64],
    gone: NDArray[np.bool_],
    written_off: NDArray[np.integer[Any]] | None,
) -> NDArray[np.bool_]:
    if written_off is None or written_off.size == 0:
        return np.zeros(opening_ids.shape[0], dtype=bool)
    ids = np.asarray(written_off)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValidationError("must be a 1-D array of loan ids", field="written_off")
    unknown = ~np.isin(ids, opening_ids[gone])
    if unknown.any():
        raise ValidationError(
            f"{int(unknown.sum())} id(s) are not loans that left the book, e.g. {int(ids[unknown][0])}",
            field="written_off",
        )
    return gone & np.isin(opening_ids, ids)


def _check_run(run: Allowance, name: str) -> None:
    ids, stage, fen = run.loan_id, run.stage, run.ecl_fen
    if ids.ndim != 1 or stage.shape != ids.shape or fen.shape != ids.shape:
        raise ValidationError("loan_id, stage and ecl_fen must be equal-length 1-D", field=name)
    if not np.issubdtype(fen.dtype, np.integer) or not np.issubdtype(ids.dtype, np.integer):
        raise ValidationError("loan_id and ecl_fen must be integer arrays", field=name)
    if ids.size and np.unique(ids).size != ids.size:
        raise ValidationError("loan ids must be unique", field=f"{name}.loan_id")
    if ids.size and not np.isin(stage, STAGES).all():
        raise ValidationError("stages must be 1, 2 or 3", field=f"{name}.stage")

"""IFRS 9 / CAS 22 staging: which of the three stages each loan is in, and why.

A loan is in stage 3 (credit-impaired) when it is more than `default_dpd_over` days past due
or flagged defaulted; in stage 2 (significant increase in credit risk, SICR) when it is more
than `sicr_dpd_over` days past due or its lifetime PD has risen to at least `pd_ratio` times
its level at origination; otherwise in stage 1. The DPD tests are strict ("more than 30 days",
IFRS 9 5.5.11; "90 days", B5.5.37), so with the defaults stage 2 starts at bucket M2 (31+ DPD)
and stage 3 at 91+ DPD, the same line as the 次级 class of the 2023 risk-classification
Measures (> 90 DPD). A lender that reads "30+" as 30 or more sets `sicr_dpd_over = 29`.

Every assignment carries its causes as a bit mask of `Cause` flags: only the triggers of the
stage the loan landed in (a 120-DPD loan is S3_DPD, not also S2_DPD), and S1 alone for a
stage-1 loan, so each loan has exactly one stage and at least one cause. Everything is
vectorised over numpy arrays: staging a million loans takes a few milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum, IntFlag
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, StrictInt

from lendstack.core.datafiles import validated
from lendstack.core.errors import ValidationError


class Stage(IntEnum):
    ONE = 1
    TWO = 2
    THREE = 3


class Cause(IntFlag):
    """Why a loan is in its stage; stored per loan as a uint8 bit mask."""

    S1 = 1
    S2_DPD = 2
    S2_PD_RATIO = 4
    S3_DPD = 8
    S3_DEFAULT = 16
    S2_FORBORNE = 32
    """Restructured and still in its observation period: a forborne exposure is not
    performing as agreed, a significant increase in credit risk (IFRS 9 B5.5.27)."""

    @property
    def stage(self) -> Stage:
        """The stage this cause puts a loan in."""
        if self in (Cause.S3_DPD, Cause.S3_DEFAULT):
            return Stage.THREE
        return Stage.ONE if self is Cause.S1 else Stage.TWO


CAUSES: tuple[Cause, ...] = tuple(Cause)


@dataclass(frozen=True, slots=True)
class StagingConfig:
    """Staging thresholds. PDs are model figures (floats); DPD thresholds are exclusive."""

    sicr_dpd_over: int = 30
    default_dpd_over: int = 90
    pd_ratio: float = 2.0
    pd_min_increase: float = 0.0
    """An absolute floor on the PD rise for the ratio test (0 = ratio alone decides)."""

    def __post_init__(self) -> None:
        for name in ("sicr_dpd_over", "default_dpd_over"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"must be an integer >= 0, got {value!r}", field=name)
        if self.sicr_dpd_over >= self.default_dpd_over:
            raise ValidationError(
                f"must be below default_dpd_over ({self.default_dpd_over})", field="sicr_dpd_over"
            )
        ratio, floor = float(self.pd_ratio), float(self.pd_min_increase)
        if not math.isfinite(ratio) or ratio < 1:
            raise ValidationError(f"must be a number >= 1, got {self.pd_ratio}", field="pd_ratio")
        if not 0 <= floor < 1:
            raise ValidationError(
                f"must be in [0, 1), got {self.pd_min_increase}", field="pd_min_increase"
            )
        object.__setattr__(self, "pd_ratio", ratio)
        object.__setattr__(self, "pd_min_increase", floor)


class _StagingFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sicr_dpd_over: StrictInt = 30
    default_dpd_over: StrictInt = 90
    pd_ratio: Decimal = Decimal(2)
    pd_min_increase: Decimal = Decimal(0)


def parse_staging(data: Mapping[str, Any], source: str = "staging") -> StagingConfig:
    """The `[staging]` table of an ECL config file; errors name `source` and the field."""
    try:
        raw = validated(_StagingFile, data, source)
    except ValidationError as exc:  # the message already names the source
        raise ValidationError(exc.message, field=f"staging.{exc.field}") from exc
    try:
        return StagingConfig(
            raw.sicr_dpd_over, raw.default_dpd_over, float(raw.pd_ratio), float(raw.pd_min_increase)
        )
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}", field=f"staging.{exc.field}") from exc


@dataclass(frozen=True, slots=True)
class Staging:
    """Per-loan stage (1..3, uint8) and cause mask (uint8), in input order."""

    stage: NDArray[np.uint8]
    causes: NDArray[np.uint8]

    def counts(self) -> dict[Stage, int]:
        return {s: int(np.count_nonzero(self.stage == s)) for s in Stage}

    def cause_counts(self) -> dict[Cause, int]:
        return {c: int(np.count_nonzero(self.causes & c.value)) for c in CAUSES}

    def labels(self, i: int) -> tuple[str, ...]:
        """Cause codes of loan `i`, e.g. ("S2_DPD", "S2_PD_RATIO")."""
        return cause_labels(int(self.causes[i]))


def cause_labels(mask: int) -> tuple[str, ...]:
    return tuple(str(c.name) for c in CAUSES if mask & c.value)


def assign_stages(
    dpd: NDArray[np.integer[Any]],
    defaulted: NDArray[np.bool_],
    pd_origination: NDArray[np.floating[Any]],
    pd_now: NDArray[np.floating[Any]],
    config: StagingConfig | None = None,
    forborne: NDArray[np.bool_] | None = None,
) -> Staging:
    """Stage and causes for every loan; inputs are equal-length 1-D arrays. `forborne` marks
    restructured loans still under observation (at least stage 2).

    The PD ratio test needs a strict rise as well (`pd_now > pd_origination`), so a loan
    whose PD was and is 0 stays in stage 1 rather than passing "0 >= 2 x 0".
    """
    cfg = config or StagingConfig()
    _check_inputs(dpd, defaulted, pd_origination, pd_now)
    s3_dpd = dpd > cfg.default_dpd_over
    s3_default = defaulted.astype(bool)
    s2_dpd = dpd > cfg.sicr_dpd_over
    rise = pd_now - pd_origination
    s2_ratio = (pd_now >= cfg.pd_ratio * pd_origination) & (rise > 0)
    s2_ratio &= rise >= cfg.pd_min_increase
    s2_forborne = np.zeros(dpd.shape, dtype=bool) if forborne is None else forborne.astype(bool)
    if s2_forborne.shape != dpd.shape:
        raise ValidationError(f"shape {s2_forborne.shape} differs from dpd's", field="forborne")
    in3 = s3_dpd | s3_default
    in2 = ~in3 & (s2_dpd | s2_ratio | s2_forborne)
    stage = np.where(in3, np.uint8(3), np.where(in2, np.uint8(2), np.uint8(1))).astype(np.uint8)
    c3 = s3_dpd * np.uint8(Cause.S3_DPD) | s3_default * np.uint8(Cause.S3_DEFAULT)
    c2 = (
        s2_dpd * np.uint8(Cause.S2_DPD)
        | s2_ratio * np.uint8(Cause.S2_PD_RATIO)
        | s2_forborne * np.uint8(Cause.S2_FORBORNE)
    )
    causes = np.where(in3, c3, np.where(in2, c2, np.uint8(Cause.S1))).astype(np.uint8)
    return Staging(stage, causes)


def _check_inputs(
    dpd: NDArray[np.integer[Any]],
    defaulted: NDArray[np.bool_],
    pd_origination: NDArray[np.floating[Any]],
    pd_now: NDArray[np.floating[Any]],
) -> None:
    n = dpd.shape
    named = {"defaulted": defaulted, "pd_origination": pd_origination, "pd_now": pd_now}
    if dpd.ndim != 1 or not np.issubdtype(dpd.dtype, np.integer):
        raise ValidationError("must be a 1-D integer array", field="dpd")
    if n[0] and int(dpd.min()) < 0:
        raise ValidationError("must be >= 0", field="dpd")
    for name, arr in named.items():
        if arr.shape != n:
            raise ValidationError(f"shape {arr.shape} differs from dpd's {n}", field=name)
    check_probabilities(pd_origination, "pd_origination")
    check_probabilities(pd_now, "pd_now")


def check_probabilities(values: NDArray[np.floating[Any]], field: str) -> None:
    """Finite and in [0, 1], or a ValidationError naming `field`."""
    if not np.issubdtype(values.dtype, np.floating):
        raise ValidationError("must be a float array", field=field)
    if values.size and not (np.all(values >= 0) and np.all(values <= 1)):
        raise ValidationError("must be probabilities in [0, 1] (no NaN)", field=field)

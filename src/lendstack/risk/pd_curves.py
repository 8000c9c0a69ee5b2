"""PD term structures for ECL: the monthly transition matrix, its JSON file, and the curves.

A transition matrix over loan states (M0, ..., M6+, default, paid off) gives, by matrix
powers, each starting state's unconditional probability of defaulting in every future month;
a scenario then scales the monthly default hazards inside its stress window so the 12-month
PD reaches the scenario's shifted value. A model 12-month PD is read instead as a constant
monthly hazard (`monthly_hazard`). This is the numerical core that `risk/ecl.py` consumes,
kept apart so the matrix algebra and its calibration can be read and tested on their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lendstack.core.errors import NotFound, ValidationError
from lendstack.risk.ecl_settings import F64, TWELVE_MONTHS, EclConfig


@dataclass(frozen=True, slots=True)
class TransitionMatrix:
    """A monthly, row-stochastic transition matrix over loan states (M0, ..., M6+, default,
    and any others such as paid off). `default_state` must be absorbing."""

    states: tuple[str, ...]
    matrix: F64
    default_state: str

    def __post_init__(self) -> None:
        states = tuple(self.states)
        m = np.array(self.matrix, dtype=np.float64)
        k = len(states)
        if len(set(states)) != k or m.shape != (k, k):
            raise ValidationError(f"need {k} unique states and a {k}x{k} matrix", field="matrix")
        if not np.all(np.isfinite(m)) or (m < 0).any() or not np.allclose(m.sum(1), 1, atol=1e-9):
            raise ValidationError("rows must be probabilities summing to 1", field="matrix")
        if self.default_state not in states:
            raise ValidationError(f"{self.default_state!r} not in states", field="default_state")
        d = states.index(self.default_state)
        if m[d, d] != 1.0:
            raise ValidationError("the default state must be absorbing", field="default_state")
        m.setflags(write=False)
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "matrix", m)

    @property
    def default_index(self) -> int:
        return self.states.index(self.default_state)

    def index_of(self, labels: NDArray[np.str_]) -> NDArray[np.int16]:
        """State indices for an array of labels; an unknown label is a ValidationError."""
        names, inverse = np.unique(np.asarray(labels), return_inverse=True)
        lookup = {s: i for i, s in enumerate(self.states)}
        missing = [str(n) for n in names if str(n) not in lookup]
        if missing:
            raise ValidationError(f"unknown state(s) {missing[:5]}", field="state")
        codes = np.array([lookup[str(n)] for n in names], dtype=np.int16)
        return codes[inverse.reshape(-1)]


def parse_matrix(data: Any, source: str) -> TransitionMatrix:
    """A `TransitionMatrix` from parsed JSON: {"states": [...], "matrix": [[...], ...],
    "default_state": "D"} (`default_state` may be omitted when a state is called "D")."""
    if not isinstance(data, dict):
        raise ValidationError(f"{source}: must be a JSON object", field="matrix")
    unknown = sorted(set(data) - {"states", "matrix", "default_state", "description"})
    if unknown:
        raise ValidationError(f"{source}: unknown key {unknown[0]!r}", field=unknown[0])
    states = data.get("states")
    if not isinstance(states, list) or not states or not all(isinstance(s, str) for s in states):
        raise ValidationError(f"{source}: must be a list of state names", field="states")
    rows = data.get("matrix")
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise ValidationError(f"{source}: must be a list of rows", field="matrix")
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(
                    f"{source}: must be a number, got {value!r}", field=f"matrix[{i}][{j}]"
                )
    default_state = data.get("default_state", "D")
    if not isinstance(default_state, str):
        raise ValidationError(f"{source}: must be a state name", field="default_state")
    try:
        matrix = np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise ValidationError(f"{source}: rows of unequal length", field="matrix") from exc
    try:
        return TransitionMatrix(tuple(states), matrix, default_state)
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}", field=exc.field) from exc


def load_matrix(path: Path) -> TransitionMatrix:
    """A transition matrix JSON file; unreadable is `NotFound`, malformed a ValidationError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFound(f"cannot read transition matrix {path}: {exc}", field="matrix") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{path}: not valid JSON: {exc}", field="matrix") from exc
    return parse_matrix(data, str(path))


def matrix_pd_curves(tm: TransitionMatrix, config: EclConfig, horizon: int) -> F64:
    """Marginal PDs (scenarios, horizon, states): [s, t, j] = P(default in month t+1 | j now).

    The base curve comes from matrix powers. A scenario scales every monthly default hazard
    of a starting state, within the stress window, by the one factor that moves its
    12-month PD to the scenario's shifted value: the same rule as the model-PD path, where
    the hazard is constant and the factor has a closed form.
    """
    months = max(horizon, TWELVE_MONTHS)
    base = _matrix_marginals(tm, months)
    hazard = _hazards(base)
    window = np.arange(months) < config.stress_months
    out = np.empty((len(config.scenarios), horizon, len(tm.states)), dtype=np.float64)
    for si, scenario in enumerate(config.scenarios):
        if scenario.z == 0.0 and scenario.pd_multiplier == 1.0:
            out[si] = base[:horizon]
            continue
        target = scenario.shift(base[:TWELVE_MONTHS].sum(axis=0), config.correlation)
        alpha = _hazard_factor(hazard[:TWELVE_MONTHS], target)
        scaled = np.where(window[:, None], np.minimum(1.0, hazard * alpha), hazard)
        out[si] = _marginals_from_hazards(scaled)[:horizon]
    return out


def _matrix_marginals(tm: TransitionMatrix, months: int) -> F64:
    """(months, states): unconditional probability of defaulting in each month."""
    d = tm.default_index
    dist = np.eye(len(tm.states))
    prev = dist[:, d].copy()
    out = np.empty((months, len(tm.states)), dtype=np.float64)
    for t in range(months):
        dist = dist @ tm.matrix
        cum = np.minimum(np.maximum(dist[:, d], prev), 1.0)
        out[t] = cum - prev
        prev = cum
    return out


def _hazards(marginals: F64) -> F64:
    """Monthly hazards: marginal PD over the probability of not having defaulted yet."""
    alive = 1.0 - np.cumsum(marginals, axis=0) + marginals
    hazard = np.divide(marginals, alive, out=np.zeros_like(marginals), where=alive > 1e-15)
    return np.asarray(np.clip(hazard, 0.0, 1.0), dtype=np.float64)


def _marginals_from_hazards(hazard: F64) -> F64:
    survival = np.cumprod(1.0 - hazard, axis=0)
    before = np.vstack([np.ones((1, hazard.shape[1])), survival[:-1]])
    return np.asarray(before * hazard, dtype=np.float64)


def _hazard_factor(hazard: F64, target: F64) -> F64:
    """Per state, the factor a >= 0 with 1 - prod(1 - min(1, a h_t)) = target (bisection).
    A state with no default hazard in the first 12 months keeps a = 1."""

    def pd12(a: F64) -> F64:
        return np.asarray(1.0 - np.prod(1.0 - np.minimum(1.0, hazard * a), axis=0))

    lo, hi = np.zeros_like(target), np.ones_like(target)
    for _ in range(64):
        short = pd12(hi) < target
        if not short.any():
            break
        hi = np.where(short, hi * 2.0, hi)
    for _ in range(80):
        mid = (lo + hi) / 2.0
        low = pd12(mid) < target
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    return np.where(hazard.sum(axis=0) > 0, hi, 1.0)


def monthly_hazard(pd_12m: F64) -> F64:
    """The constant monthly hazard h with 1 - (1 - h)^12 = pd_12m."""
    with np.errstate(divide="ignore"):  # pd_12m = 1 gives log1p(-1) = -inf and h = 1, as meant
        return np.asarray(-np.expm1(np.log1p(-pd_12m) / TWELVE_MONTHS), dtype=np.float64)

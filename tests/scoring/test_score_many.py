"""The vectorised decision-time scorer gives exactly, bit for bit, the single-row scores.

The engine compares a PD with the policy's cut-off and records it, so "close" is not enough:
`score_encoded_many` must equal `score_encoded(x, reasons=False)` row by row, NaNs included.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.scoring import CreditModel, FeatureKind

from .conftest import synthetic_frame


def _single(model: CreditModel, X: np.ndarray) -> list[tuple[float, float, float]]:
    out = []
    for i in range(X.shape[0]):
        one = model.score_encoded(X[i], reasons=False)
        out.append((one.pd, one.points, one.scorecard_points))
    return out


def _many(model: CreditModel, X: np.ndarray) -> list[tuple[float, float, float]]:
    return [(r.pd, r.points, r.scorecard_points) for r in model.score_encoded_many(X)]


def test_many_rows_equal_the_single_row_path_exactly(trained: tuple) -> None:
    _, model = trained
    X = model.spec.encode_frame(synthetic_frame(3000, seed=31))
    rng = np.random.default_rng(5)
    X[rng.uniform(size=X.shape) < 0.03] = np.nan  # missing values and unseen categories
    many = _many(model, X)
    assert len(many) == X.shape[0]
    assert many == _single(model, X)  # float equality: not approx
    assert len({pd for pd, _, _ in many}) > 100  # the rows really differ
    assert model.score_encoded_many(X[:0]) == []


def test_agrees_with_the_throughput_path_up_to_rounding(trained: tuple) -> None:
    """An independent check of the values: `score_matrix` sums in another order."""
    _, model = trained
    X = model.spec.encode_frame(synthetic_frame(500, seed=32))
    batch = model.score_matrix(X)
    for i, (pd, points, card) in enumerate(_many(model, X)):
        assert pd == pytest.approx(batch.pd[i], abs=1e-12)
        assert points == pytest.approx(batch.points[i], abs=1e-9)
        assert card == pytest.approx(batch.scorecard_points[i], abs=1e-9)


def _rows(model: CreditModel) -> st.SearchStrategy[np.ndarray]:
    """Encoded rows anywhere in each feature's domain: wild numbers, any category, NaN."""
    columns = []
    for feat in model.spec.features:
        if feat.kind is FeatureKind.NUMERIC:
            numbers = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
            columns.append(st.one_of(numbers, st.just(math.nan)))
        else:
            codes = st.integers(0, len(feat.categories) - 1).map(float)
            columns.append(st.one_of(codes, st.just(math.nan)))
    return st.lists(st.tuples(*columns), min_size=1, max_size=40).map(
        lambda rows: np.array(rows, dtype=np.float64)
    )


def test_arbitrary_matrices_equal_the_single_row_path(trained: tuple) -> None:
    _, model = trained

    @settings(max_examples=60, deadline=None)
    @given(_rows(model))
    def check(X: np.ndarray) -> None:
        assert _many(model, X) == _single(model, X)

    check()


def test_a_column_of_constants_matches_too(trained: tuple) -> None:
    """Whole-column shortcuts (no NaN in a column) must not change any row's arithmetic."""
    _, model = trained
    X = model.spec.encode_frame(synthetic_frame(50, seed=33))
    X[:, 0] = X[0, 0]
    assert _many(model, X) == _single(model, X)


def test_encode_rows_equals_encode_row_for_every_kind_of_value(trained: tuple) -> None:
    _, model = trained
    frame = synthetic_frame(400, seed=34).drop(columns=["defaulted"])
    rows = frame.to_dict("records")
    odd = [None, "", "  ", " 3.5 ", "x", True, 2, math.nan, float("inf"), " B ", "B", 1.0]
    rng = np.random.default_rng(9)
    for row in rows[:200]:
        for name in row:
            if rng.uniform() < 0.2:
                row[name] = odd[int(rng.integers(len(odd)))]
    expected = np.vstack([model.spec.encode_row(row) for row in rows])
    got = model.spec.encode_rows(rows)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.isnan(got).any()
    assert model.spec.encode_rows([]).shape == (0, len(model.spec.features))
